#!/usr/bin/env node
// `semantic` CLI launcher: makes sure Dawn can find a Vulkan driver (Chromium's SwiftShader, or
// the one VK_ICD_FILENAMES names), then runs the TypeScript CLI through tsx and a ?raw hook.
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

// libvulkan is located by the dynamic loader at process start, so the environment must be set
// before Node starts: re-run ourselves once with it.
const env = vulkanEnv();
if (env) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}

const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
register('./raw-loader.mjs', import.meta.url);
const { main } = await import('../cli/semantic.ts');
process.exitCode = await main(process.argv.slice(2));
