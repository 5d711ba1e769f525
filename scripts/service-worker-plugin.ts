import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Plugin } from 'vite';

export interface ServiceWorkerOptions {
  /** Folders under public/ to precache whole (the embedded model), and single public files. */
  readonly publicPaths: readonly string[];
  /** Bundle files never fetched by the app at run time (left out of the precache). */
  readonly exclude?: RegExp;
}

function filesUnder(root: string, path: string): string[] {
  const full = join(root, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).flatMap((name) => filesUnder(root, join(path, name)));
}

/**
 * Emits sw.js in the production build: the template scripts/service-worker.js with the list of
 * files to precache (every file of the bundle, the page, and the chosen public files) and a
 * version hashed from their contents, so a new build replaces the old cache.
 */
export function serviceWorker(options: ServiceWorkerOptions): Plugin {
  let publicDir = 'public';
  return {
    name: 'semantic-demo-service-worker',
    apply: 'build',
    enforce: 'post',
    configResolved(config) {
      publicDir = config.publicDir;
    },
    generateBundle(_options, bundle) {
      if (!('index.html' in bundle)) return; // a library build has no app to serve offline
      const hash = createHash('sha256');
      const fromBundle = Object.values(bundle).filter((chunk) => !options.exclude?.test(chunk.fileName)).map((chunk) => {
        hash.update(chunk.fileName).update(chunk.type === 'chunk' ? chunk.code : chunk.source);
        return `/${chunk.fileName}`;
      });
      const fromPublic = options.publicPaths.flatMap((p) => filesUnder(publicDir, p)).map((f) => {
        hash.update(f).update(readFileSync(join(publicDir, f)));
        return `/${relative('.', f).split('\\').join('/')}`;
      });
      const precache = [...new Set([...fromBundle, ...fromPublic])].sort();
      const template = readFileSync(new URL('./service-worker.js', import.meta.url), 'utf8');
      const source = template.replace('__VERSION__', hash.digest('hex').slice(0, 16)).replace('__PRECACHE__', JSON.stringify(precache, null, 2));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}
