import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsCachePersistence } from '../src/adapters/node/fs-cache-persistence.ts';
import { decodeAgentBlob, encodeAgentBlob } from '../src/adapters/safetensors/agent-blob.ts';
import { InternalError, InvalidRequestError, QuotaExceededError } from '../src/domain/errors.ts';
import type { ModelCacheSpec } from '../src/domain/model-cache-spec.ts';

// Spies over rename and writeFile let a test look at the folder at the commit point, or fail
// a step; by default they pass through to the real functions.
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return { ...real, rename: vi.fn(real.rename), writeFile: vi.fn(real.writeFile), rm: vi.fn(real.rm) };
});
const realFs = await vi.importActual<typeof import('node:fs/promises')>('node:fs/promises');

const SPEC: ModelCacheSpec = { modelId: 'm', fingerprint: 'fp-1', nLayers: 1, nKvHeads: 2, headDim: 4, blockTokens: 16, dtype: 'f32' };

function blobFor(agentId: string, tokens: number): Uint8Array {
  const n = tokens * SPEC.nKvHeads * SPEC.headDim;
  const keys = [Float32Array.from({ length: n }, (_, i) => i / 3)];
  const values = [Float32Array.from({ length: n }, (_, i) => -i)];
  return encodeAgentBlob({ agentId, spec: SPEC, tokenIds: Array.from({ length: tokens }, (_, i) => i + 1), snapshot: { tokens, keys, values } });
}

function record(agentId: string, lastUsed: number, tokenCount = 2) {
  return { agentId, modelFingerprint: 'fp-1', tokenCount, lastUsed };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'semantic-fs-'));
});
afterEach(async () => {
  vi.mocked(fsp.rename).mockImplementation(realFs.rename);
  vi.mocked(fsp.writeFile).mockImplementation(realFs.writeFile);
  vi.mocked(fsp.rm).mockImplementation(realFs.rm);
  await rm(dir, { recursive: true, force: true });
});

describe('FsCachePersistence', () => {
  it('saves, loads, lists, checks and deletes', async () => {
    const p = await FsCachePersistence.open({ dir: join(dir, 'nested', 'kv') });
    expect(await p.load('a')).toBeNull();
    expect(await p.exists('a')).toBe(false);
    expect(await p.listCachedAgents()).toEqual([]);
    const blob = blobFor('a', 2);
    await p.save('a', blob, record('a', 10));
    await p.save('b', blobFor('b', 3), record('b', 5, 3));
    expect(await p.load('a')).toEqual(blob);
    expect(await p.exists('a')).toBe(true);
    const list = (await p.listCachedAgents()).sort((x, y) => x.agentId.localeCompare(y.agentId));
    expect(list).toEqual([
      { agentId: 'a', modelFingerprint: 'fp-1', tokenCount: 2, bytes: blob.byteLength, lastUsed: 10, tier: 'cold' },
      { agentId: 'b', modelFingerprint: 'fp-1', tokenCount: 3, bytes: blobFor('b', 3).byteLength, lastUsed: 5, tier: 'cold' },
    ]);
    expect((await p.oldestAgents(1)).map((r) => r.agentId)).toEqual(['b']);
    expect(await p.delete('a')).toBe(true);
    expect(await p.delete('a')).toBe(false);
    expect(await p.load('a')).toBeNull();
    expect((await p.listCachedAgents()).map((r) => r.agentId)).toEqual(['b']);
    expect((await readdir(p.dir)).sort()).toEqual(['b.json', 'b.safetensors']);
  });

  it('writes the same bytes that encodeAgentBlob produced, and they decode back', async () => {
    const p = await FsCachePersistence.open({ dir });
    const blob = blobFor('agent:1@x', 4);
    await p.save('agent:1@x', blob, record('agent:1@x', 1, 4));
    expect(new Uint8Array(await readFile(join(dir, 'agent:1@x.safetensors')))).toEqual(blob);
    const decoded = decodeAgentBlob((await p.load('agent:1@x')) as Uint8Array, SPEC);
    expect(decoded.tokenIds).toEqual([1, 2, 3, 4]);
    expect(decoded.agentId).toBe('agent:1@x');
  });

  it('keeps the old blob in place until the rename, and replaces it after', async () => {
    const p = await FsCachePersistence.open({ dir });
    const oldBlob = blobFor('a', 2);
    const newBlob = blobFor('a', 5);
    await p.save('a', oldBlob, record('a', 1));
    const seen: Uint8Array[] = [];
    vi.mocked(fsp.rename).mockImplementation(async (from, to) => {
      if (String(to).endsWith('a.safetensors')) seen.push(new Uint8Array(await readFile(to)));
      return realFs.rename(from, to);
    });
    await p.save('a', newBlob, record('a', 2, 5));
    expect(seen).toEqual([oldBlob]);
    expect(await p.load('a')).toEqual(newBlob);
    expect((await p.listCachedAgents())[0]).toMatchObject({ tokenCount: 5, lastUsed: 2 });
  });

  it('keeps the old pair and leaves no temp file when the blob rename fails', async () => {
    const p = await FsCachePersistence.open({ dir });
    const oldBlob = blobFor('a', 2);
    await p.save('a', oldBlob, record('a', 1));
    vi.mocked(fsp.rename).mockImplementationOnce(async () => {
      throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    });
    const error: unknown = await p.save('a', blobFor('a', 5), record('a', 2, 5)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).details).toMatchObject({ agentId: 'a', code: 'EIO' });
    expect(await p.load('a')).toEqual(oldBlob);
    expect((await p.listCachedAgents())[0]).toMatchObject({ tokenCount: 2, lastUsed: 1 });
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.safetensors']);
  });

  it('trusts the blob when a crash left the old record beside a new blob', async () => {
    const p = await FsCachePersistence.open({ dir });
    await p.save('a', blobFor('a', 2), record('a', 1, 2));
    // The record rename "never happens": the process died right after the blob's commit.
    vi.mocked(fsp.rename).mockImplementation(async (from, to) => {
      if (String(to).endsWith('.json')) throw Object.assign(new Error('killed'), { code: 'EINTR' });
      return realFs.rename(from, to);
    });
    const newBlob = blobFor('a', 6);
    await p.save('a', newBlob, record('a', 99, 6));
    const [listed] = await p.listCachedAgents();
    expect(listed).toMatchObject({ agentId: 'a', tokenCount: 6, bytes: newBlob.byteLength, modelFingerprint: 'fp-1' });
    // The stale record on disk still describes the old blob; the listing went to the blob.
    expect(JSON.parse(await readFile(join(dir, 'a.json'), 'utf8'))).toMatchObject({ tokenCount: 2, lastUsed: 1 });
    expect(listed?.lastUsed).toBeGreaterThan(Date.now() - 60_000);
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.safetensors']);
  });

  it('derives the record from the blob when the json is missing or garbage, and skips unreadable blobs', async () => {
    const p = await FsCachePersistence.open({ dir });
    await p.save('a', blobFor('a', 3), record('a', 1, 3));
    await p.save('b', blobFor('b', 4), record('b', 1, 4));
    await rm(join(dir, 'a.json'));
    await writeFile(join(dir, 'b.json'), '{"agentId": 1');
    await writeFile(join(dir, 'junk.safetensors'), 'not a blob');
    await writeFile(join(dir, 'bad name!.safetensors'), 'ignored');
    const list = (await p.listCachedAgents()).sort((x, y) => x.agentId.localeCompare(y.agentId));
    expect(list.map((r) => [r.agentId, r.tokenCount, r.modelFingerprint])).toEqual([
      ['a', 3, 'fp-1'],
      ['b', 4, 'fp-1'],
    ]);
  });

  it('ignores leftover temp files and cleans stale ones (and orphan records) on open', async () => {
    const p = await FsCachePersistence.open({ dir });
    await p.save('a', blobFor('a', 2), record('a', 1));
    const stale = join(dir, 'a.safetensors.tmp-0123456789abcdef');
    const fresh = join(dir, 'b.json.tmp-fedcba9876543210');
    await writeFile(stale, 'half a blob');
    await writeFile(fresh, '{}');
    // A record of ours whose blob is gone (crash during delete) goes; a foreign json stays.
    await p.save('gone', blobFor('gone', 1), record('gone', 1, 1));
    await rm(join(dir, 'gone.safetensors'));
    await writeFile(join(dir, 'config.json'), '{}');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(stale, old, old);
    expect((await p.listCachedAgents()).map((r) => r.agentId)).toEqual(['a']);
    expect(await p.exists('a.safetensors')).toBe(false);
    expect(await p.exists('gone')).toBe(false);
    await FsCachePersistence.open({ dir });
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.safetensors', 'b.json.tmp-fedcba9876543210', 'config.json']);
    await FsCachePersistence.open({ dir, staleTempMs: 0 });
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.safetensors', 'config.json']);
  });

  it('maps ENOSPC and EDQUOT to QuotaExceededError and keeps the old blob', async () => {
    const p = await FsCachePersistence.open({ dir });
    const oldBlob = blobFor('a', 2);
    await p.save('a', oldBlob, record('a', 1));
    for (const code of ['ENOSPC', 'EDQUOT']) {
      vi.mocked(fsp.writeFile).mockImplementationOnce(async () => {
        throw Object.assign(new Error(`${code}: no space`), { code });
      });
      const error: unknown = await p.save('a', new Uint8Array(4096), record('a', 2)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(QuotaExceededError);
      expect((error as QuotaExceededError).details).toEqual({ agentId: 'a', bytes: 4096 });
    }
    expect(await p.load('a')).toEqual(oldBlob);
    expect((await readdir(dir)).sort()).toEqual(['a.json', 'a.safetensors']);
  });

  it('serialises concurrent saves of one agent so record and blob agree', async () => {
    const p = await FsCachePersistence.open({ dir });
    const blobs = [2, 3, 4, 5].map((t) => blobFor('a', t));
    await Promise.all(blobs.map((b, i) => p.save('a', b, record('a', i, i + 2))));
    expect(await p.load('a')).toEqual(blobs[3]);
    expect((await p.listCachedAgents())[0]).toMatchObject({ tokenCount: 5, lastUsed: 3 });
  });

  it('refuses bad ids and inconsistent records', async () => {
    const p = await FsCachePersistence.open({ dir });
    await expect(p.save('../etc/passwd', blobFor('a', 1), record('../etc/passwd', 1))).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.load('a/b')).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.save('a', blobFor('a', 1), record('b', 1))).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.save('a', blobFor('a', 1), { ...record('a', 1), modelFingerprint: '' })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(p.oldestAgents(-1)).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('treats a missing folder as empty', async () => {
    const p = new FsCachePersistence({ dir: join(dir, 'never-created') });
    expect(await p.listCachedAgents()).toEqual([]);
    expect(await p.load('a')).toBeNull();
    expect(await p.delete('a')).toBe(false);
  });

  it('keys blobs by agent and model: two models\' agents live side by side; legacy root blobs are adopted', async () => {
    const legacy = await FsCachePersistence.open({ dir });
    const old = blobFor('a', 2);
    await legacy.save('a', old, record('a', 1));
    const one = await FsCachePersistence.open({ dir, modelFingerprint: 'fp-1' });
    // The legacy blob of model fp-1 moved into its scope.
    expect(await one.load('a')).toEqual(old);
    expect(await legacy.load('a')).toBeNull();
    const two = await one.forModel('fp-2');
    const other = Uint8Array.of(1, 2, 3);
    await two.save('a', other, { ...record('a', 2), modelFingerprint: 'fp-2' });
    expect(await one.load('a')).toEqual(old);
    expect(await two.load('a')).toEqual(other);
    expect((await one.listCachedAgents()).map((r) => r.modelFingerprint)).toEqual(['fp-1']);
    const all = (await one.listAllCachedAgents()).map((r) => `${r.agentId}@${r.modelFingerprint}`).sort();
    expect(all).toEqual(['a@fp-1', 'a@fp-2']);
    // A scope refuses another model's blob; deleting in one scope leaves the other.
    await expect(one.save('a', other, { ...record('a', 3), modelFingerprint: 'fp-2' })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(await two.delete('a')).toBe(true);
    expect(await one.load('a')).toEqual(old);
    await expect(FsCachePersistence.open({ dir, modelFingerprint: '../up' })).rejects.toBeInstanceOf(InvalidRequestError);
  });
});


/** A segment: a whole agent blob of positions [from, to), tokens numbered as blobFor's. */
function segmentFor(agentId: string, from: number, to: number): Uint8Array {
  const n = (to - from) * SPEC.nKvHeads * SPEC.headDim;
  const keys = [Float32Array.from({ length: n }, (_, i) => from + i / 3)];
  const values = [Float32Array.from({ length: n }, (_, i) => -from - i)];
  return encodeAgentBlob({ agentId, spec: SPEC, tokenIds: Array.from({ length: to - from }, (_, i) => from + i + 1), snapshot: { tokens: to - from, keys, values } });
}

const starts = async (p: FsCachePersistence, id: string) => ((await p.loadSegments(id)) ?? []).map((s) => s.start);
const segFiles = async (p: FsCachePersistence) => (await readdir(p.dir)).filter((n) => n.endsWith('.kvseg')).length;

describe('FsCachePersistence segments', () => {
  it('appends segments, keeps those before the new start, lists the whole, and a save or delete supersedes them', async () => {
    const p = await FsCachePersistence.open({ dir, modelFingerprint: 'fp-1' });
    expect(await p.loadSegments('a')).toBeNull();
    await expect(p.appendSegment('a', { start: 16, bytes: segmentFor('a', 16, 20) }, record('a', 1, 20))).rejects.toBeInstanceOf(InvalidRequestError);
    const base = blobFor('a', 20);
    await p.save('a', base, record('a', 1, 20));
    const s1 = segmentFor('a', 16, 30);
    await p.appendSegment('a', { start: 16, bytes: s1 }, record('a', 2, 30));
    const s2 = segmentFor('a', 16, 40); // the same start again: replaces s1
    await p.appendSegment('a', { start: 16, bytes: s2 }, record('a', 3, 40));
    await p.appendSegment('a', { start: 32, bytes: segmentFor('a', 32, 50) }, record('a', 4, 50));
    const segs = await p.loadSegments('a');
    expect(segs?.map((s) => s.start)).toEqual([0, 16, 32]);
    expect(segs?.[0].bytes).toEqual(base);
    expect(segs?.[1].bytes).toEqual(s2);
    expect(await segFiles(p)).toBe(2); // s1's file went when it was dropped
    // A start beyond what is stored would leave a gap: refused, nothing changes.
    await expect(p.appendSegment('a', { start: 64, bytes: segmentFor('a', 64, 70) }, record('a', 5, 70))).rejects.toBeInstanceOf(InvalidRequestError);
    const [listed] = await p.listCachedAgents();
    expect(listed).toMatchObject({ agentId: 'a', tokenCount: 50, lastUsed: 4, bytes: base.byteLength + s2.byteLength + segmentFor('a', 32, 50).byteLength });
    // Old callers of load get the first segment: a valid, shorter cache.
    expect(decodeAgentBlob((await p.load('a')) as Uint8Array, SPEC).tokenIds.length).toBe(20);
    // A whole save wins at its rename, and its segments are removed.
    await p.save('a', blobFor('a', 55), record('a', 6, 55));
    expect(await starts(p, 'a')).toEqual([0]);
    expect(await segFiles(p)).toBe(0);
    expect((await p.listCachedAgents())[0].tokenCount).toBe(55);
    await p.appendSegment('a', { start: 48, bytes: segmentFor('a', 48, 60) }, record('a', 7, 60));
    expect(await p.delete('a')).toBe(true);
    expect(await readdir(p.dir)).toEqual([]);
  });

  it('a crash between the segment file and the manifest rename leaves the previous state readable; cleanup removes the orphan', async () => {
    const p = await FsCachePersistence.open({ dir });
    await p.save('a', blobFor('a', 20), record('a', 1, 20));
    await p.appendSegment('a', { start: 16, bytes: segmentFor('a', 16, 30) }, record('a', 2, 30));
    // "Crash": the manifest never gets renamed, and nothing after it runs (no rm either).
    vi.mocked(fsp.rm).mockImplementation(async () => undefined);
    vi.mocked(fsp.rename).mockImplementation(async (from, to) => {
      if (String(to).endsWith('.kvman')) throw Object.assign(new Error('killed'), { code: 'EIO' });
      return realFs.rename(from, to);
    });
    await expect(p.appendSegment('a', { start: 16, bytes: segmentFor('a', 16, 45) }, record('a', 3, 45))).rejects.toBeInstanceOf(InternalError);
    vi.mocked(fsp.rm).mockImplementation(realFs.rm);
    vi.mocked(fsp.rename).mockImplementation(realFs.rename);
    expect(await segFiles(p)).toBe(2); // the committed one and the orphan
    const after = await FsCachePersistence.open({ dir, staleTempMs: 0 });
    expect(await starts(after, 'a')).toEqual([0, 16]);
    const segs = (await after.loadSegments('a')) ?? [];
    expect(decodeAgentBlob(segs[1].bytes, SPEC).tokenIds.length).toBe(14);
    expect((await after.listCachedAgents())[0].tokenCount).toBe(30);
    expect(await segFiles(after)).toBe(1);
    expect((await readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('a copied folder keeps its segments (the manifest names the base by content, not inode)', async () => {
    const p = await FsCachePersistence.open({ dir: join(dir, 'src') });
    await p.save('a', blobFor('a', 20), record('a', 1, 20));
    await p.appendSegment('a', { start: 16, bytes: segmentFor('a', 16, 30) }, record('a', 2, 30));
    await fsp.cp(join(dir, 'src'), join(dir, 'copy'), { recursive: true });
    const copy = await FsCachePersistence.open({ dir: join(dir, 'copy'), staleTempMs: 0 });
    expect(await starts(copy, 'a')).toEqual([0, 16]);
    expect((await copy.listCachedAgents())[0].tokenCount).toBe(30);
  });

  it('at the manifest rename the new state is committed', async () => {
    const p = await FsCachePersistence.open({ dir });
    await p.save('a', blobFor('a', 20), record('a', 1, 20));
    let seen: number[] = [];
    vi.mocked(fsp.rename).mockImplementation(async (from, to) => {
      await realFs.rename(from, to);
      if (String(to).endsWith('.kvman')) seen = (await new FsCachePersistence({ dir }).listCachedAgents()).map((r) => r.tokenCount);
    });
    await p.appendSegment('a', { start: 16, bytes: segmentFor('a', 16, 33) }, record('a', 2, 33));
    expect(seen).toEqual([33]);
  });
});
