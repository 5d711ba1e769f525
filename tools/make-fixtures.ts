/**
 * Regenerates the tiny test models under public/models (or `--out DIR`):
 *   npx tsx tools/make-fixtures.ts [--out DIR]
 * The output is byte-for-byte deterministic; public/models/MANIFEST.sha256 lists its hashes.
 */
import { DEFAULT_OUT_DIR, buildFixtureTree, writeFixtureTree } from './generate-fixtures.ts';

function outDir(argv: readonly string[]): string {
  const at = argv.indexOf('--out');
  if (at < 0) return DEFAULT_OUT_DIR;
  const dir = argv[at + 1];
  if (!dir) throw new Error('--out needs a directory');
  return dir;
}

const started = performance.now();
const target = outDir(process.argv.slice(2));
const files = buildFixtureTree();
writeFixtureTree(target, files);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(`wrote ${files.size} files to ${target} in ${seconds} s`);
