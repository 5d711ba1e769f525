/**
 * Property test of the GGUF reader on untrusted bytes: mutants of valid files (bit flips, byte
 * overwrites, forged u64 counts and lengths, truncations, extensions) must either be read into
 * tensors that lie inside the file, aligned and disjoint, or be refused with a ModelFormatError
 * that names its reason. Any other outcome is a failure. Seeded, so a failure reproduces.
 */
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/domain/errors.ts';
import { ggmlType, type GgmlTypeName } from '../src/domain/ggml-types.ts';
import { MemoryRangeSource, readGguf, type GgufFile } from '../src/adapters/gguf/index.ts';
import { mulberry32 } from '../tools/prng.ts';
import { writeGguf, type GgufMetaValue, type GgufTensorInput } from '../tools/gguf-writer.ts';

const ITERATIONS = 10_000;
const SEED = 0x99f0f;
type Rand = () => number;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Rand, items: readonly T[]): T => items[int(rand, items.length)];

const TYPES: readonly GgmlTypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K', 'I8'];

function metaValue(rand: Rand): GgufMetaValue {
  switch (int(rand, 8)) {
    case 0: return { type: 'u32', value: int(rand, 1e6) };
    case 1: return { type: 'f32', value: rand() };
    case 2: return { type: 'string', value: 'tok'.repeat(int(rand, 4)) + (rand() < 0.2 ? 'é' : '') };
    case 3: return { type: 'bool', value: rand() < 0.5 };
    case 4: return { type: 'u64', value: BigInt(int(rand, 1e9)) };
    case 5: return { type: 'array', elem: 'string', value: Array.from({ length: int(rand, 6) }, (_, i) => `t${i}`) };
    case 6: return { type: 'array', elem: pick(rand, ['i32', 'f32', 'u8', 'i64'] as const), value: Array.from({ length: int(rand, 6) }, () => int(rand, 100)) };
    default: return { type: pick(rand, ['i8', 'u16', 'i16', 'f64'] as const), value: int(rand, 100) };
  }
}

function validFile(rand: Rand): Uint8Array {
  const metadata: Record<string, GgufMetaValue> = { 'general.architecture': { type: 'string', value: 'llama' } };
  for (let i = int(rand, 6); i > 0; i--) metadata[`k.${i}`] = metaValue(rand);
  const tensors: GgufTensorInput[] = Array.from({ length: int(rand, 4) }, (_, i) => {
    const type = pick(rand, TYPES);
    const t = ggmlType(type);
    const ne = [t.blockElements * (1 + int(rand, 2)), ...Array.from({ length: int(rand, 3) }, () => 1 + int(rand, 3))];
    const n = ne.reduce((a, b) => a * b, 1);
    return { name: `blk.${i}.w`, ne, type, data: Uint8Array.from({ length: (n / t.blockElements) * t.blockBytes }, () => int(rand, 256)) };
  });
  return writeGguf({ metadata, tensors, version: rand() < 0.2 ? 2 : 3, alignment: rand() < 0.3 ? pick(rand, [8, 16, 64]) : undefined });
}

/** Where the header ends (the parser's logic lives before it); estimated from the first tensor's data. */
function headerEnd(bytes: Uint8Array): number {
  return Math.min(bytes.length, Math.max(24, bytes.length - 600));
}

const INTERESTING_U64: readonly bigint[] = [0n, 1n, 2n, 3n, 4n, 5n, 9n, 12n, 13n, 31n, 32n, 255n, 256n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

function flipBits(rand: Rand, b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (let k = 1 + int(rand, 3); k > 0 && out.length > 0; k--) out[int(rand, headerEnd(out))] ^= 1 << int(rand, 8);
  return out;
}
function overwriteByte(rand: Rand, b: Uint8Array): Uint8Array {
  const out = b.slice();
  if (out.length > 0) out[int(rand, headerEnd(out))] = pick(rand, [0, 1, 2, 8, 9, 12, 13, 0x7f, 0x80, 0xff, int(rand, 256)]);
  return out;
}
/** A forged u64 somewhere in the header: counts, string lengths, dims and offsets are u64s. */
function forgeU64(rand: Rand, b: Uint8Array): Uint8Array {
  if (b.length < 32) return b;
  const out = b.slice();
  const at = Math.min(out.length - 8, rand() < 0.3 ? pick(rand, [8, 16]) : int(rand, headerEnd(out)));
  new DataView(out.buffer).setBigUint64(at, pick(rand, INTERESTING_U64), true);
  return out;
}
function forgeU32(rand: Rand, b: Uint8Array): Uint8Array {
  if (b.length < 8) return b;
  const out = b.slice();
  const at = Math.min(out.length - 4, int(rand, headerEnd(out)));
  new DataView(out.buffer).setUint32(at, pick(rand, [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 14, 19, 30, 31, 64, 2 ** 31]), true);
  return out;
}
const truncate = (rand: Rand, b: Uint8Array): Uint8Array => b.slice(0, int(rand, b.length));
function extend(rand: Rand, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + 1 + int(rand, 64));
  out.set(b);
  return out;
}

const MUTATORS = [flipBits, overwriteByte, forgeU64, forgeU32, forgeU64, truncate, extend];

function mutate(rand: Rand, base: Uint8Array): Uint8Array {
  let bytes = base;
  for (let k = 1 + int(rand, 2); k > 0; k--) bytes = pick(rand, MUTATORS)(rand, bytes);
  return bytes;
}

function checkAccepted(size: number, file: GgufFile): string | undefined {
  const sorted = [...file.tensors].sort((a, b) => a.offset - b.offset);
  let end = file.dataOffset;
  for (const t of sorted) {
    if (t.offset < end) return `${t.name}: overlaps or precedes the data section`;
    if ((t.offset - file.dataOffset) % file.alignment !== 0) return `${t.name}: misaligned`;
    if (t.offset + t.byteLength > size) return `${t.name}: past the end`;
    if (t.byteLength !== (t.elements / t.type.blockElements) * t.type.blockBytes) return `${t.name}: wrong length`;
    if (t.ne[0] % t.type.blockElements !== 0) return `${t.name}: partial block`;
    end = t.offset + t.byteLength;
  }
  if (file.dataOffset < file.headerBytes || file.dataOffset % file.alignment !== 0) return 'bad data offset';
  return undefined;
}

describe('readGguf fuzz', () => {
  it(`survives ${ITERATIONS} mutated files with only ModelFormatError`, async () => {
    const rand = mulberry32(SEED);
    const bases = Array.from({ length: 48 }, () => validFile(rand));
    const reasons = new Map<string, number>();
    const failures: string[] = [];
    let accepted = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const bytes = mutate(rand, pick(rand, bases));
      try {
        const file = await readGguf(new MemoryRangeSource(bytes), { initialReadBytes: 8 + int(rand, 400), maxHeaderBytes: 1 << 16 });
        accepted++;
        const breach = checkAccepted(bytes.length, file);
        if (breach) failures.push(`#${i} accepted but ${breach}`);
      } catch (error) {
        const reason = error instanceof ModelFormatError ? String(error.details?.['reason']) : undefined;
        if (reason === undefined || reason === 'unexpected') failures.push(`#${i} threw ${String(error)} (cause ${String((error as Error).cause)})`);
        else reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
      }
    }
    const histogram = [...reasons].sort((a, b) => b[1] - a[1]).map(([r, c]) => `${r}=${c}`);
    console.log(`gguf fuzz: ${ITERATIONS} files, ${accepted} accepted (${histogram.join(' ')})`);
    expect(failures.slice(0, 10)).toEqual([]);
    expect(accepted).toBeGreaterThan(ITERATIONS / 50);
    // The mutants reach deep into the validation, not just the magic and version.
    expect(reasons.size).toBeGreaterThanOrEqual(12);
  });

  it('reads every unmutated base file', async () => {
    const rand = mulberry32(SEED + 1);
    for (let i = 0; i < 64; i++) {
      const bytes = validFile(rand);
      expect(checkAccepted(bytes.length, await readGguf(new MemoryRangeSource(bytes), { initialReadBytes: 8 }))).toBeUndefined();
    }
  });
});
