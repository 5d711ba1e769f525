/**
 * Writes the validation split (the last 10% of tools/data/tinyshakespeare.txt by characters,
 * the cut tools/train/prepare.ts trains with) to tools/train/out/val.txt, without retraining
 * the tokenizer, for `semantic eval --text tools/train/out/val.txt`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const text = readFileSync(join(ROOT, 'tools', 'data', 'tinyshakespeare.txt'), 'utf8');
const out = join(ROOT, 'tools', 'train', 'out');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'val.txt'), text.slice(Math.floor(text.length * 0.9)));
console.log(join(out, 'val.txt'));
