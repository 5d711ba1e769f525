import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';

/**
 * The package as users get it: `npm pack` (its prepack builds dist/), the tarball installed into
 * a fresh Vite app in a temporary folder, the app typechecked against the package's .d.ts and
 * built by Vite (which finds the worker through `new Worker(new URL('./runtime.worker.js',
 * import.meta.url))` in dist/), served, and run in headless Chromium: createEngine loads the tiny
 * model that the app ships in its public folder and generates a completion, streamed and whole.
 *
 * Offline install: `npm install --offline <tarball>` unpacks the package from the tarball, and
 * its dependencies are already present in the app's node_modules as links to this repository's
 * installed packages (npm accepts a link whose package.json satisfies the range, so it fetches
 * nothing; Vite follows the links to their real paths, where their own dependencies resolve).
 * Relying on npm's cache instead fails on a machine whose cache lacks any of them.
 */
const ROOT = join(import.meta.dirname, '..');
// ~45 s on the 2-core CI box (pack with its build, install, tsc, vite build, the browser run);
// part of the default suite; SEMANTIC_PACKED_APP=0 skips it (`npm run test:package` runs it alone).
const ENABLED = process.env.SEMANTIC_PACKED_APP !== '0';
const APP_FILES = join(import.meta.dirname, 'packed-app');

function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
}

/** The package's runtime dependencies and the app's build tools, linked from this repository. */
function linkDependencies(app: string): void {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  for (const name of [...Object.keys(pkg.dependencies), 'vite']) {
    const at = join(app, 'node_modules', name);
    mkdirSync(join(at, '..'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', name), at, 'dir');
  }
}

function makeApp(work: string): string {
  const packed = sh('npm', ['pack', '--silent', '--pack-destination', work], ROOT).trim().split('\n').pop() ?? '';
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'packed-app', private: true, type: 'module', devDependencies: { vite: '*' } }));
  cpSync(APP_FILES, app, { recursive: true });
  cpSync(join(ROOT, 'public', 'models', 'tiny-llama'), join(app, 'public', 'models', 'tiny-llama'), { recursive: true });
  linkDependencies(app);
  sh('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', join(work, packed)], app);
  // The consumer's view of the types: the app's main.ts against dist/types through `exports`.
  sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
  sh(process.execPath, [join(app, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], app);
  return join(app, 'dist');
}

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };

/** A static server for the built app (what any host would do with dist/). */
function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': body.byteLength });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` });
  }));
}

test('the packed tarball in a fresh Vite app: createEngine generates a completion in Chromium', async ({ browser }) => {
  test.skip(!ENABLED, 'SEMANTIC_PACKED_APP=0 skips the packed package');
  test.setTimeout(240_000);
  const work = mkdtempSync(join(tmpdir(), 'semantic-packed-'));
  let served: { server: Server; url: string } | null = null;
  try {
    const dist = makeApp(work);
    // The worker is its own built file, not inlined into the page's bundle.
    expect(readdirSync(join(dist, 'assets')).some((f) => /^runtime\.worker-.*\.js$/.test(f))).toBe(true);
    served = await serve(dist);
    const page = await browser.newPage();
    await page.goto(served.url);
    await page.waitForFunction(() => 'outcome' in window, null, { timeout: 180_000 });
    const outcome = (await page.evaluate(() => (window as unknown as { outcome: unknown }).outcome)) as Record<string, unknown>;
    expect(outcome['error']).toBeUndefined();
    expect(outcome['progress']).toBeGreaterThan(0);
    expect(outcome['weightsDone']).toBe(true);
    expect(outcome['completionTokens']).toBeGreaterThan(0);
    expect(typeof outcome['text']).toBe('string');
    // Greedy: the stream and the whole completion are the same text.
    expect(outcome['streamed']).toBe(outcome['text']);
    expect(outcome['typedError']).toBe(true);
    await page.close();
  } finally {
    served?.server.close();
    rmSync(work, { recursive: true, force: true });
  }
});
