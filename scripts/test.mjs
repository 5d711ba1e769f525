// `npm test`: typecheck, unit tests (Vitest, Node + Dawn), browser tests (Playwright + Chromium).
// Ends with one line "N passed, N failed" summed over all suites, also written to test-results/summary.txt.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ensureChromium, swiftShaderEnv } from './chromium.mjs';

const OUT = 'test-results';
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });

const chromium = ensureChromium();
const env = swiftShaderEnv({ ...process.env, CHROMIUM_PATH: chromium });
const bin = (name) => `node_modules/.bin/${name}`;

function run(label, cmd, args, extraEnv = {}) {
  console.log(`\n[semantic] ${label}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...env, ...extraEnv } });
  return r.status ?? 1;
}

function readJson(path) {
  try {
    return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : null;
  } catch {
    return null;
  }
}

const results = [];

const tscStatus = run('typecheck', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
results.push({ suite: 'typecheck', passed: tscStatus === 0 ? 1 : 0, failed: tscStatus === 0 ? 0 : 1 });

const vitestJson = `${OUT}/vitest.json`;
const vitestStatus = run('unit tests', bin('vitest'), [
  'run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`,
]);
const v = readJson(vitestJson);
results.push(
  v
    ? { suite: 'vitest', passed: v.numPassedTests, failed: v.numFailedTests + (vitestStatus !== 0 && v.numFailedTests === 0 ? 1 : 0) }
    : { suite: 'vitest', passed: 0, failed: 1 },
);

const pwJson = `${OUT}/playwright.json`;
const pwStatus = run('browser tests', bin('playwright'), ['test', '--reporter=list,json'], {
  PLAYWRIGHT_JSON_OUTPUT_NAME: pwJson,
});
const p = readJson(pwJson);
results.push(
  p
    ? { suite: 'playwright', passed: p.stats.expected + p.stats.flaky, failed: p.stats.unexpected + (pwStatus !== 0 && p.stats.unexpected === 0 ? 1 : 0) }
    : { suite: 'playwright', passed: 0, failed: 1 },
);

console.log('');
for (const r of results) console.log(`[semantic] ${r.suite}: ${r.passed} passed, ${r.failed} failed`);
const passed = results.reduce((s, r) => s + r.passed, 0);
const failed = results.reduce((s, r) => s + r.failed, 0);
const line = `${passed} passed, ${failed} failed`;
writeFileSync(`${OUT}/summary.txt`, `${line}\n`);
console.log(line);
process.exit(failed === 0 ? 0 : 1);
