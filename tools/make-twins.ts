/**
 * Writes random-weight twins of real models (real shapes, fewer layers, bf16) for tests and
 * benchmarks. Never committed: tests call `writeTwin` into a temporary folder themselves.
 *   npx tsx tools/make-twins.ts --out DIR [--layers N] [id ...]
 * ids: smollm2-135m, qwen2.5-0.5b, llama3.2-1b, qwen3-0.6b (default: all).
 */
import { TWINS, twinSpec } from './twin-specs.ts';
import { TWIN_LAYERS, writeTwin } from './twins.ts';

function parse(argv: readonly string[]): { out: string; layers: number; ids: string[] } {
  let out = '';
  let layers = TWIN_LAYERS;
  const ids: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i] ?? '';
    else if (argv[i] === '--layers') layers = Number(argv[++i]);
    else ids.push(argv[i]);
  }
  if (!out) throw new Error('--out DIR is required');
  if (!Number.isInteger(layers) || layers < 1) throw new Error('--layers must be a positive integer');
  return { out, layers, ids: ids.length > 0 ? ids : TWINS.map((t) => t.id) };
}

const { out, layers, ids } = parse(process.argv.slice(2));
for (const id of ids) {
  const started = performance.now();
  const twin = writeTwin(twinSpec(id), out, layers);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${twin.dir}: ${layers} layers, ${(twin.fileBytes / 1e6).toFixed(1)} MB in ${seconds} s`);
}
