// `npm run build:lib`: the package's dist/ — ESM JavaScript, .d.ts types, and the worker as a
// file of its own that the client starts with the literal
//   new Worker(new URL('./runtime.worker.js', import.meta.url), { type: 'module' })
// which Vite, webpack 5 and Parcel recognise: a consumer's bundler follows it and bundles the
// worker (and its imports) as a worker asset.
//
// Why rolldown directly and not `vite build --lib`: Vite's library mode inlines workers and
// assets as base64 data URLs, and bundles the worker's dependencies into it. A library should
// leave its dependencies (comlink, idb, @huggingface/transformers) as bare imports for the
// consumer's bundler to resolve and deduplicate. Rolldown is the bundler Vite itself runs.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = resolvePath(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
const external = Object.keys(pkg.dependencies ?? {});
const DEV_WORKER = "new URL('../../worker/runtime.worker.ts', import.meta.url)";
const BUILT_WORKER = "new URL('./runtime.worker.js', import.meta.url)";

/** `import wgsl from './x.wgsl?raw'` becomes the file's text, as Vite and bin/raw-loader.mjs do. */
const rawText = {
  name: 'semantic-raw-text',
  resolveId(source, importer) {
    if (!source.endsWith('?raw') || !importer) return null;
    return `${resolvePath(dirname(importer), source.slice(0, -4))}?raw`;
  },
  load(id) {
    if (!id.endsWith('?raw')) return null;
    return `export default ${JSON.stringify(readFileSync(id.slice(0, -4), 'utf8'))};`;
  },
};

/** The client starts the worker from source in development; in dist it sits beside the client. */
const workerUrl = {
  name: 'semantic-worker-url',
  transform(code, id) {
    if (!id.endsWith('src/client/worker-start.ts')) return null;
    if (!code.includes(DEV_WORKER)) throw new Error(`${id} no longer starts the worker with ${DEV_WORKER}`);
    return code.split(DEV_WORKER).join(BUILT_WORKER);
  },
};

rmSync(`${root}/dist`, { recursive: true, force: true });
await build({
  cwd: root,
  input: { index: 'src/client/index.ts', 'runtime.worker': 'worker/runtime.worker.ts' },
  platform: 'browser',
  external: (id) => external.some((dep) => id === dep || id.startsWith(`${dep}/`)),
  plugins: [rawText, workerUrl],
  // The worker-URL rewrite keeps every line and column but the path's; the maps stay good enough.
  onLog: (level, log, next) => (log.code === 'SOURCEMAP_BROKEN' ? undefined : next(level, log)),
  output: {
    dir: 'dist',
    format: 'esm',
    // Every chunk in dist/ itself, so the worker URL relative to the client's chunk holds.
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    sourcemap: true,
  },
});

// Declarations of the public entry (the client API, its errors and types).
execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.build.json`], { stdio: 'inherit' });
// The sources import with `.ts` extensions; the declarations point at their `.d.ts` siblings
// by `.js`, which every TypeScript module resolution accepts.
for (const file of readdirSync(`${root}/dist/types`, { recursive: true, withFileTypes: true })) {
  if (!file.isFile() || !file.name.endsWith('.d.ts')) continue;
  const path = `${file.parentPath}/${file.name}`;
  writeFileSync(path, readFileSync(path, 'utf8').replace(/(from\s+'\.{1,2}\/[^']*)\.ts'/g, "$1.js'").replace(/(import\('\.{1,2}\/[^']*)\.ts'\)/g, "$1.js')"));
}
console.log('[semantic] dist/: index.js, runtime.worker.js, types/');
