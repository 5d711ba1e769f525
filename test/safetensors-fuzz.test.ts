/**
 * Property test of the parser on untrusted bytes: mutants of valid files (bit flips, byte
 * overwrites, truncations, extensions, length-prefix edits, JSON-structure edits) must either
 * parse into tensors that lie inside the buffer and tile the data section, or be refused with a
 * CacheCorruptError. Any other outcome is a failure. Seeded, so a failure reproduces.
 */
import { describe, expect, it } from 'vitest';
import { CacheCorruptError } from '../src/domain/errors.ts';
import { mulberry32 } from '../tools/prng.ts';
import {
  DTYPE_BYTES,
  SAFETENSORS_DTYPES,
  parseSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  typedView,
  type SafetensorsDtype,
  type TensorInput,
} from '../src/adapters/safetensors/index.ts';

const ITERATIONS = 12_000;
const SEED = 0x5afe7e45;

type Rand = () => number;


const int = (rand: Rand, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Rand, items: readonly T[]): T => items[int(rand, items.length)];

function validFile(rand: Rand): Uint8Array {
  const tensors: Record<string, TensorInput> = {};
  const count = int(rand, 5);
  for (let i = 0; i < count; i++) {
    const dtype = pick(rand, SAFETENSORS_DTYPES);
    const shape = Array.from({ length: int(rand, 4) }, () => int(rand, 4));
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Uint8Array.from({ length: n * DTYPE_BYTES[dtype] }, () => int(rand, 256));
    tensors[`t${i}.${pick(rand, ['w', 'b', 'k', 'v'])}`] = { dtype, shape, data };
  }
  const metadata = rand() < 0.5 ? undefined : { format: 'semantic', layers: String(int(rand, 40)) };
  return serializeSafetensors(tensors, metadata);
}

function headerLength(bytes: Uint8Array): number {
  if (bytes.length < 8) return 0;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(0, true);
}

function withLength(bytes: Uint8Array, low: number, high = 0): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  view.setUint32(0, low >>> 0, true);
  view.setUint32(4, high >>> 0, true);
  return out;
}

const INTERESTING = [...'{}[]",:0123456789-.e '].map((c) => c.charCodeAt(0)).concat([0x00, 0xff, 0xc3, 0xed, 0x80]);

/** A position biased toward the length prefix and header, where the parser's logic lives. */
function position(rand: Rand, bytes: Uint8Array): number {
  const headerEnd = Math.min(bytes.length, 8 + headerLength(bytes));
  return rand() < 0.8 && headerEnd > 0 ? int(rand, headerEnd) : int(rand, bytes.length);
}

function flipBits(rand: Rand, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  for (let k = 1 + int(rand, 3); k > 0 && out.length > 0; k--) out[position(rand, out)] ^= 1 << int(rand, 8);
  return out;
}

function overwriteByte(rand: Rand, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length > 0) out[position(rand, out)] = rand() < 0.6 ? pick(rand, INTERESTING) : int(rand, 256);
  return out;
}

function truncate(rand: Rand, bytes: Uint8Array): Uint8Array {
  return bytes.slice(0, int(rand, bytes.length));
}

function extend(rand: Rand, bytes: Uint8Array): Uint8Array {
  const extra = Uint8Array.from({ length: 1 + int(rand, 32) }, () => (rand() < 0.5 ? 0 : int(rand, 256)));
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes);
  out.set(extra, bytes.length);
  return out;
}

function editLength(rand: Rand, bytes: Uint8Array): Uint8Array {
  if (bytes.length < 8) return bytes;
  const n = headerLength(bytes);
  switch (int(rand, 5)) {
    case 0:
      return withLength(bytes, n + int(rand, 17) - 8);
    case 1:
      return withLength(bytes, int(rand, 2 ** 32));
    case 2:
      return withLength(bytes, n, 1 + int(rand, 2 ** 32 - 1));
    case 3:
      return withLength(bytes, pick(rand, [0, 1, 2, 0xffffffff, 100 * 1024 * 1024, 100 * 1024 * 1024 + 1]));
    default:
      return withLength(bytes, bytes.length - 8);
  }
}

const WEIRD: readonly unknown[] = [null, true, 'x', '', -1, 0.5, 1e300, -0, 2 ** 53, [], {}, [1, 2], [[1]], { dtype: 'F32' }];

/** Edit one field of one tensor entry (or the metadata) so the JSON stays well formed. */
function mutateHeaderObject(rand: Rand, header: Record<string, unknown>): void {
  const names = Object.keys(header);
  const name = names.length > 0 ? pick(rand, names) : '__metadata__';
  const entry = header[name];
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || name === '__metadata__') {
    header[name] = rand() < 0.5 ? pick(rand, WEIRD) : { k: pick(rand, WEIRD) };
    return;
  }
  const t = entry as Record<string, unknown>;
  const offsets = Array.isArray(t['data_offsets']) ? (t['data_offsets'] as number[]) : [0, 0];
  const shape = Array.isArray(t['shape']) ? (t['shape'] as number[]) : [];
  switch (int(rand, 10)) {
    case 0:
      offsets[int(rand, 2)] += int(rand, 17) - 8;
      break;
    case 1:
      t['data_offsets'] = [offsets[1], offsets[0]];
      break;
    case 2:
      if (shape.length > 0) shape[int(rand, shape.length)] += int(rand, 5) - 2;
      else shape.push(int(rand, 4));
      break;
    case 3:
      if (rand() < 0.5) shape.push(int(rand, 3));
      else shape.pop();
      break;
    case 4:
      t['dtype'] = rand() < 0.8 ? pick(rand, SAFETENSORS_DTYPES) : pick(rand, ['F8_E4M3', 'f32', 'U64', '__proto__', 7]);
      break;
    case 5:
      delete t[pick(rand, ['dtype', 'shape', 'data_offsets'])];
      break;
    case 6:
      t[pick(rand, ['dtype', 'shape', 'data_offsets', 'extra'])] = pick(rand, WEIRD);
      break;
    case 7:
      header[`${name}.copy`] = structuredClone(t);
      break;
    case 8:
      delete header[name];
      break;
    default:
      header['__metadata__'] = pick(rand, [{ a: 'b' }, { a: 1 }, null, 'meta', []]);
  }
}

function mutateJson(rand: Rand, bytes: Uint8Array): Uint8Array {
  const n = headerLength(bytes);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  for (let k = 1 + int(rand, 2); k > 0; k--) mutateHeaderObject(rand, header);
  let json = JSON.stringify(header);
  if (rand() < 0.5) json += ' '.repeat(int(rand, 8));
  const h = new TextEncoder().encode(json);
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const BYTE_MUTATORS = [flipBits, overwriteByte, truncate, extend, editLength];

function mutate(rand: Rand, base: Uint8Array): Uint8Array {
  // Structure edits first, while the header is still JSON; byte-level damage on top.
  let bytes = rand() < 0.4 ? mutateJson(rand, base) : base;
  const rounds = bytes === base ? 1 + int(rand, 3) : int(rand, 2);
  for (let k = 0; k < rounds; k++) bytes = pick(rand, BYTE_MUTATORS)(rand, bytes);
  return bytes;
}

/** Re-home the bytes at a random offset of a larger buffer, so byteOffset is exercised too. */
function placed(rand: Rand, bytes: Uint8Array): Uint8Array | ArrayBuffer {
  if (rand() < 0.2) return bytes.slice().buffer;
  const pad = int(rand, 8);
  const host = new Uint8Array(pad + bytes.length + int(rand, 8));
  host.set(bytes, pad);
  return host.subarray(pad, pad + bytes.length);
}

/** Everything an accepted file must satisfy; returns a description of the first breach. */
function checkAccepted(input: Uint8Array, file: ReturnType<typeof parseSafetensors>): string | undefined {
  const dataStart = input.byteOffset + 8 + headerLength(input);
  const fileEnd = input.byteOffset + input.byteLength;
  let total = 0;
  for (const [name, t] of file.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.buffer !== input.buffer) return `${name}: not a view of the input`;
    if (t.data.byteOffset < dataStart || t.data.byteOffset + t.data.byteLength > fileEnd) return `${name}: outside the data section`;
    if (t.data.byteLength !== n * DTYPE_BYTES[t.dtype as SafetensorsDtype]) return `${name}: wrong byte length`;
    total += t.data.byteLength;
    if (typedView(t).length !== n) return `${name}: wrong element count`;
    if (t.dtype !== 'BOOL' && tensorToFloat32(t).length !== n) return `${name}: wrong float count`;
  }
  if (total !== fileEnd - dataStart) return 'tensors do not tile the data section';
  for (const v of Object.values(file.metadata)) if (typeof v !== 'string') return 'non-string metadata';
  return undefined;
}

describe('parseSafetensors fuzz', () => {
  it(`survives ${ITERATIONS} mutated inputs with only CacheCorruptError`, () => {
    const rand = mulberry32(SEED);
    const bases = Array.from({ length: 32 }, () => validFile(rand));
    const reasons = new Map<string, number>();
    const failures: string[] = [];
    let accepted = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const input = placed(rand, mutate(rand, pick(rand, bases)));
      const u8 = input instanceof Uint8Array ? input : new Uint8Array(input);
      try {
        const file = parseSafetensors(input);
        accepted++;
        const breach = checkAccepted(u8, file);
        if (breach) failures.push(`#${i} accepted but ${breach}`);
      } catch (error) {
        const reason = error instanceof CacheCorruptError ? String(error.details?.['reason']) : undefined;
        if (reason === undefined || reason === 'unexpected') {
          failures.push(`#${i} threw ${String(error)} (cause ${String((error as Error).cause)})`);
        } else {
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
      }
    }
    const rejected = ITERATIONS - accepted - failures.length;
    const histogram = [...reasons].sort((a, b) => b[1] - a[1]).map(([r, c]) => `${r}=${c}`);
    console.log(`safetensors fuzz: ${ITERATIONS} inputs, ${accepted} accepted, ${rejected} rejected (${histogram.join(' ')})`);
    expect(failures.slice(0, 10)).toEqual([]);
    expect(accepted).toBeGreaterThan(ITERATIONS / 50);
    // The mutators reach deep into the validation, not just the length prefix.
    expect(reasons.size).toBeGreaterThanOrEqual(15);
  });

  it('accepts every unmutated base file', () => {
    const rand = mulberry32(SEED + 1);
    for (let i = 0; i < 64; i++) {
      const bytes = validFile(rand);
      expect(checkAccepted(bytes, parseSafetensors(bytes))).toBeUndefined();
    }
  });
});
