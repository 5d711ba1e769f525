import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * The f16 path on a driver that has `shader-f16`: Mesa 25's lavapipe (bookworm-backports).
 * Skipped unless SEMANTIC_LAVAPIPE_ICD names its ICD json (with an absolute library_path):
 *
 *   apt-get download mesa-vulkan-drivers/bookworm-backports   # bookworm-backports in sources
 *   dpkg-deb -x mesa-vulkan-drivers_*.deb /tmp/mesa
 *   # /tmp/mesa/lvp_icd.json: {"ICD": {"api_version": "1.4.305",
 *   #   "library_path": "/tmp/mesa/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"}, "file_format_version": "1.0.0"}
 *   SEMANTIC_LAVAPIPE_ICD=/tmp/mesa/lvp_icd.json npx vitest run test/gpu/lavapipe-f16.test.ts
 *
 * Dawn picks its Vulkan driver when the process loads it, and this test process already runs on
 * SwiftShader, so the check runs in a child Node process with VK_ICD_FILENAMES set to lavapipe
 * (libvulkan.so.1 from LD_LIBRARY_PATH, by default Chromium's folder).
 */
const ICD = process.env.SEMANTIC_LAVAPIPE_ICD;
const ROOT = join(import.meta.dirname, '..', '..');
const CHROMIUM_LIB = '/usr/lib/chromium';

interface ChildReport {
  readonly description: string;
  readonly shaderF16: boolean;
  readonly maxStorageBufferBindingSize: number;
  readonly cpuTokens: number[];
  readonly gpuTokens: number[];
  readonly maxLogitError: number;
  readonly splitTokens: number[];
  readonly splitBitwiseEqual: boolean;
  readonly nativeVsUnpackBitwiseEqual: boolean;
}

// Runs in the child: tsx for the TypeScript sources, the ?raw hook for the WGSL imports.
const CHILD = (root: string): string => `
const { register } = await import('node:module');
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
register(${JSON.stringify(pathToFileURL(join(root, 'bin', 'raw-loader.mjs')).href)});
const at = (p) => ${JSON.stringify(pathToFileURL(root).href)} + '/' + p;
const { nodeGpu } = await import(at('src/adapters/node/dawn.ts'));
const { createGpuContext } = await import(at('src/adapters/webgpu/device.ts'));
const { WebGpuBackend } = await import(at('src/adapters/webgpu/webgpu-backend.ts'));
const { FsModelSource } = await import(at('src/adapters/node/hf-folder.ts'));
const { loadCpuModel } = await import(at('src/adapters/cpu/index.ts'));
const { BlockPool } = await import(at('src/domain/block-pool.ts'));
const { generateBatch } = await import(at('test/gpu/lockstep.ts'));
const dir = ${JSON.stringify(join(root, 'public', 'models', 'tiny-qwen2'))};
const gpu = await createGpuContext({ gpu: nodeGpu() });
const ids = Array.from({ length: 20 }, (_, i) => (3 * 131 + i * 17 + ((i * i) % 7)) % 500);
// The default f16 KV pool rounds K/V to f16; the reference does the same.
const { model } = await loadCpuModel(new FsModelSource(dir), { kvDtype: 'f16' });
const cpu = model.generateGreedy(ids, 17, { eosTokenIds: [] });
const run = async (options, on = gpu) => {
  const backend = await WebGpuBackend.load(on, new FsModelSource(dir), { kvBudgetBytes: 4 << 20, ...options });
  const [r] = await generateBatch(backend, new BlockPool(backend.totalBlocks), [{ promptIds: ids, maxTokens: 17 }], { returnLogits: true });
  backend.dispose();
  return r;
};
const whole = await run({});
const split = await run({ maxBindingBytes: 12000 });
// The same model on a device created without shader-f16: packed-u32 weight and KV loads instead of native f16.
const unpacked = await run({}, await createGpuContext({ gpu: nodeGpu(), allowF16: false }));
let maxLogitError = 0;
whole.logits.forEach((row, i) => row.forEach((v, j) => (maxLogitError = Math.max(maxLogitError, Math.abs(v - cpu.logits[i][j])))));
const bitsOf = (rows) => rows.map((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)).join(',')).join(';');
const report = {
  description: gpu.adapterInfo.description,
  shaderF16: gpu.caps.shaderF16,
  maxStorageBufferBindingSize: gpu.caps.maxStorageBufferBindingSize,
  cpuTokens: cpu.tokens,
  gpuTokens: whole.tokens,
  maxLogitError,
  splitTokens: split.tokens,
  splitBitwiseEqual: bitsOf(split.logits) === bitsOf(whole.logits),
  nativeVsUnpackBitwiseEqual: bitsOf(unpacked.logits) === bitsOf(whole.logits),
};
console.log('REPORT ' + JSON.stringify(report));
process.exit(0);
`;

function runChild(icd: string): Promise<{ code: number | null; out: string }> {
  const env = {
    ...process.env,
    VK_ICD_FILENAMES: icd,
    LD_LIBRARY_PATH: [existsSync(CHROMIUM_LIB) ? CHROMIUM_LIB : '', process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD(ROOT)], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!ICD)('lavapipe (Mesa 25): shader-f16 and the f16-weight path', () => {
  it('reports shader-f16, and tiny-qwen2 (f16 weights) matches the CPU reference there', async () => {
    const { code, out } = await runChild(ICD ?? '');
    const line = out.split('\n').find((l) => l.startsWith('REPORT '));
    expect(line, `child exited ${code}:\n${out}`).toBeDefined();
    const report = JSON.parse((line ?? '').slice('REPORT '.length)) as ChildReport;
    expect(report.description).toMatch(/llvmpipe/);
    expect(report.shaderF16).toBe(true);
    expect(report.gpuTokens).toEqual(report.cpuTokens);
    expect(report.maxLogitError).toBeLessThanOrEqual(1e-3);
    // Split weights (lm_head and the layer matrices in parts) are bitwise the unsplit run here too.
    expect(report.splitTokens).toEqual(report.gpuTokens);
    expect(report.splitBitwiseEqual).toBe(true);
    // shader-f16 loads (native) and unpack2x16float loads widen the same halves: bitwise equal.
    expect(report.nativeVsUnpackBitwiseEqual).toBe(true);
    expect(code).toBe(0);
  }, 180_000);
});
