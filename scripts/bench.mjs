#!/usr/bin/env node
// `npm run bench`: the benchmark suite (bench/main.ts) on real WebGPU in Node (Dawn).
// Same launch as bin/semantic.mjs: Dawn finds libvulkan when the process starts, so re-run
// ourselves once with Chromium's SwiftShader in the environment (unless VK_ICD_FILENAMES is
// already set), then run the TypeScript through tsx with the `?raw` hook for WGSL imports.
// Arguments pass through to bench/main.ts (e.g. `npm run bench -- --only=memory,quant`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

const CHROMIUM_LIB = '/usr/lib/chromium';

function vulkanEnv() {
  if (process.env.VK_ICD_FILENAMES || process.env.SEMANTIC_VK_READY === '1') return null;
  if (!existsSync(`${CHROMIUM_LIB}/vk_swiftshader_icd.json`)) return null;
  return {
    ...process.env,
    SEMANTIC_VK_READY: '1',
    VK_ICD_FILENAMES: `${CHROMIUM_LIB}/vk_swiftshader_icd.json`,
    LD_LIBRARY_PATH: [CHROMIUM_LIB, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
  };
}

const env = vulkanEnv();
if (env) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}

const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
register('../bin/raw-loader.mjs', import.meta.url);
const { main } = await import('../bench/main.ts');
process.exitCode = await main(process.argv.slice(2));
