import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../src/domain/errors.ts';
import { MemoryRangeSource, readGguf, readTensorBytes, type GgufFile } from '../src/adapters/gguf/index.ts';
import { FileRangeSource } from '../src/adapters/node/file-range-source.ts';
import { writeGguf, type GgufWriteInput } from '../tools/gguf-writer.ts';

const bytesOf = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

const SAMPLE: GgufWriteInput = {
  alignment: 64,
  metadata: {
    'general.architecture': { type: 'string', value: 'llama' },
    'a.u8': { type: 'u8', value: 200 }, 'a.i8': { type: 'i8', value: -3 },
    'a.u16': { type: 'u16', value: 65000 }, 'a.i16': { type: 'i16', value: -300 },
    'a.u32': { type: 'u32', value: 4e9 }, 'a.i32': { type: 'i32', value: -7 },
    'a.f32': { type: 'f32', value: 0.5 }, 'a.f64': { type: 'f64', value: 1e-300 },
    'a.bool': { type: 'bool', value: true }, 'a.u64': { type: 'u64', value: 2n ** 60n }, 'a.i64': { type: 'i64', value: -5n },
    'a.tokens': { type: 'array', elem: 'string', value: ['<s>', 'é', ''] },
    'a.scores': { type: 'array', elem: 'f32', value: [0.25, -1] },
    'a.types': { type: 'array', elem: 'i32', value: [1, 2, 3] },
    'a.flags': { type: 'array', elem: 'bool', value: [false, true] },
  },
  tensors: [
    { name: 'token_embd.weight', ne: [64, 3], type: 'Q8_0', data: bytesOf(3 * 2 * 34, 1) },
    { name: 'blk.0.attn_norm.weight', ne: [5], type: 'F32', data: bytesOf(20, 2) },
    { name: 'output.weight', ne: [256, 2], type: 'Q4_K', data: bytesOf(2 * 144, 3) },
  ],
};

describe('readGguf', () => {
  it('reads every metadata type, tensor infos, alignment and offsets', async () => {
    const bytes = writeGguf(SAMPLE);
    // A tiny first read forces the prefix to grow several times.
    const file = await readGguf(new MemoryRangeSource(bytes), { initialReadBytes: 16 });
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(64);
    const m = file.metadata;
    expect([m.get('a.u8'), m.get('a.i8'), m.get('a.u16'), m.get('a.i16'), m.get('a.u32'), m.get('a.i32')]).toEqual([200, -3, 65000, -300, 4e9, -7]);
    expect([m.get('a.f32'), m.get('a.f64'), m.get('a.bool'), m.get('a.u64'), m.get('a.i64')]).toEqual([0.5, 1e-300, true, 2n ** 60n, -5n]);
    expect(m.get('a.tokens')).toEqual(['<s>', 'é', '']);
    expect(m.get('a.scores')).toEqual(new Float32Array([0.25, -1]));
    expect(m.get('a.types')).toEqual(new Int32Array([1, 2, 3]));
    expect(m.get('a.flags')).toEqual([false, true]);
    expect(file.dataOffset % 64).toBe(0);
    expect(file.tensors.map((t) => [t.name, t.type.name, t.shape, t.byteLength])).toEqual([
      ['token_embd.weight', 'Q8_0', [3, 64], 204],
      ['blk.0.attn_norm.weight', 'F32', [5], 20],
      ['output.weight', 'Q4_K', [2, 256], 288],
    ]);
    for (const [i, t] of file.tensors.entries()) {
      expect((t.offset - file.dataOffset) % 64).toBe(0);
      expect(await readTensorBytes(new MemoryRangeSource(bytes), t)).toEqual(SAMPLE.tensors[i].data);
    }
  });

  it('reads from disk through a file handle, the same as from memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gguf-'));
    try {
      const bytes = writeGguf({ ...SAMPLE, version: 2 });
      writeFileSync(join(dir, 'm.gguf'), bytes);
      const source = await FileRangeSource.open(join(dir, 'm.gguf'));
      let file: GgufFile;
      try {
        file = await readGguf(source, { initialReadBytes: 100 });
        expect(await readTensorBytes(source, file.tensors[2])).toEqual(SAMPLE.tensors[2].data);
      } finally {
        await source.close();
      }
      expect(file.version).toBe(2);
      expect(file.tensors).toEqual((await readGguf(new MemoryRangeSource(bytes))).tensors);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const reasonOf = async (bytes: Uint8Array, maxHeaderBytes?: number): Promise<unknown> => {
    try {
      await readGguf(new MemoryRangeSource(bytes), { maxHeaderBytes });
      return 'accepted';
    } catch (e) {
      expect(e).toBeInstanceOf(ModelFormatError);
      return (e as ModelFormatError).details?.['reason'];
    }
  };
  const tensorFile = (t: GgufWriteInput['tensors'][number], alignment?: number): Uint8Array => writeGguf({ metadata: {}, tensors: [t], alignment });

  it('names the reason of each refusal', async () => {
    const good = writeGguf(SAMPLE);
    const patched = (at: number, v: number): Uint8Array => { const b = good.slice(); new DataView(b.buffer).setUint32(at, v, true); return b; };
    expect(await reasonOf(good.slice(0, 3))).toBe('truncated');
    expect(await reasonOf(patched(0, 0x46554748))).toBe('bad-magic');
    expect(await reasonOf(patched(4, 1))).toBe('unsupported-version');
    expect(await reasonOf(patched(16, 0xffffff))).toBe('count-too-large');
    // The last tensor (288 bytes) is followed by 32 bytes of padding to the 64-byte alignment.
    expect(await reasonOf(good.slice(0, good.length - 33))).toBe('tensor-out-of-bounds');
    expect(await reasonOf(good.slice(0, good.length - 32))).toBe('accepted');
    expect(await reasonOf(good, 64)).toBe('header-too-large');
    const q = { name: 'w', ne: [48, 2], type: 'Q8_0' as const, data: new Uint8Array(0) };
    expect(() => tensorFile(q)).toThrow(RangeError);
    expect(await reasonOf(writeGguf({ metadata: { 'general.alignment': { type: 'u32', value: 48 } }, tensors: [] }))).toBe('invalid-alignment');
    expect(await reasonOf(writeGguf({ metadata: { x: { type: 'string', value: 'a' } }, tensors: [] }))).toBe('accepted');
  });

  it('refuses partial blocks, duplicates, bad bools, misaligned and overlapping tensors', async () => {
    const base = tensorFile({ name: 'w', ne: [64, 1], type: 'Q8_0', data: new Uint8Array(68) });
    const view = new DataView(base.buffer);
    // Header: 4 magic, 4 version, 8 + 8 counts, then the tensor info: 8 + 1 name, 4 n_dims, 8 + 8 ne, 4 type, 8 offset.
    const ne0At = 24 + 9 + 4;
    const typeAt = ne0At + 16;
    const offsetAt = typeAt + 4;
    const edit = (at: number, v: number, big = false): Uint8Array => {
      const b = base.slice();
      const d = new DataView(b.buffer);
      if (big) d.setBigUint64(at, BigInt(v), true); else d.setUint32(at, v, true);
      return b;
    };
    expect(view.getUint32(typeAt, true)).toBe(8);
    expect(await reasonOf(edit(ne0At, 48, true))).toBe('partial-block');
    expect(await reasonOf(edit(typeAt, 19))).toBe('unknown-tensor-type');
    expect(await reasonOf(edit(offsetAt, 4, true))).toBe('misaligned-offset');
    expect(await reasonOf(edit(24 + 9, 5))).toBe('invalid-dims');
    const two = writeGguf({ metadata: {}, tensors: [
      { name: 'a', ne: [32], type: 'F32', data: new Uint8Array(128) },
      { name: 'b', ne: [32], type: 'F32', data: new Uint8Array(128) },
    ] });
    const dup = two.slice();
    dup[two.indexOf(98, 24)] = 97; // tensor name 'b' -> 'a'
    expect(await reasonOf(dup)).toBe('duplicate-tensor');
    const overlap = two.slice();
    const bInfo = two.indexOf(98, 24) + 1 + 4 + 8 + 4;
    new DataView(overlap.buffer).setBigUint64(bInfo, 0n, true);
    expect(await reasonOf(overlap)).toBe('overlapping-tensors');
    const bools = writeGguf({ metadata: { f: { type: 'bool', value: true } }, tensors: [] });
    bools[24 + 9 + 4] = 2; // after the header, key 'f' and its type
    expect(await reasonOf(bools)).toBe('invalid-bool');
    const keys = writeGguf({ metadata: { ab: { type: 'u8', value: 1 }, ac: { type: 'u8', value: 1 } }, tensors: [] });
    keys[keys.lastIndexOf(99)] = 98;
    expect(await reasonOf(keys)).toBe('duplicate-key');
    const utf = writeGguf({ metadata: { k: { type: 'string', value: 'é' } }, tensors: [] });
    utf[24 + 9 + 4 + 8 + 1] = 0xff; // the second byte of 'é'
    expect(await reasonOf(utf)).toBe('invalid-utf8');
  });
});
