/**
 * Writes every fixture model folder, `index.json` and `MANIFEST.sha256` under one directory.
 * Separate from the CLI so tests can regenerate into a temporary folder and compare bytes.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainBpe } from './bpe.ts';
import { FIXTURE_FILES, fixtureFiles, indexJson } from './fixture-files.ts';
import { BPE_VOCAB_SIZE, FIXTURES } from './fixture-specs.ts';

export const TOOLS_DIR = dirname(fileURLToPath(import.meta.url));
export const CORPUS_PATH = join(TOOLS_DIR, 'data', 'tinyshakespeare.txt');
export const DEFAULT_OUT_DIR = join(TOOLS_DIR, '..', 'public', 'models');
export const MANIFEST_NAME = 'MANIFEST.sha256';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `sha256sum` format (two spaces), sorted by path, so `sha256sum -c` can check it. */
function manifest(files: ReadonlyMap<string, Uint8Array>): string {
  const paths = [...files.keys()].sort();
  return paths.map((p) => `${sha256(files.get(p) as Uint8Array)}  ${p}\n`).join('');
}

/** Every generated file keyed by its path relative to the output folder ('/'-separated). */
export function buildFixtureTree(): Map<string, Uint8Array> {
  const bpe = trainBpe(readFileSync(CORPUS_PATH, 'utf8'), BPE_VOCAB_SIZE);
  const files = new Map<string, Uint8Array>();
  for (const spec of FIXTURES) {
    const folder = fixtureFiles(spec, bpe);
    for (const name of FIXTURE_FILES) files.set(`${spec.id}/${name}`, folder[name]);
  }
  files.set('index.json', indexJson(FIXTURES));
  files.set(MANIFEST_NAME, new TextEncoder().encode(manifest(files)));
  return files;
}

export function writeFixtureTree(outDir: string, files: ReadonlyMap<string, Uint8Array>): void {
  for (const [path, bytes] of files) {
    const target = join(outDir, ...path.split('/'));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, bytes);
  }
}
