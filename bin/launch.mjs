// Shared launcher of the Node entry points (the CLI, the benchmarks): Dawn finds libvulkan when
// the process starts, so re-run once with Chromium's SwiftShader in the environment (unless
// VK_ICD_FILENAMES is already set), then run TypeScript through tsx with the `?raw` WGSL hook.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { register } from 'node:module';

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

/**
 * Run `entry` (a TypeScript module URL exporting `main(argv): Promise<number>`) from the script
 * at `scriptPath`, passing the command-line arguments through.
 */
export async function launch(scriptPath, entry) {
  const env = vulkanEnv();
  if (env) {
    // Asynchronous, so that SIGTERM / SIGINT sent to this process reach the child (`semantic
    // serve` writes its agents to disk on either) instead of leaving it orphaned.
    const child = spawn(process.execPath, [scriptPath, ...process.argv.slice(2)], { stdio: 'inherit', env });
    for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
    const code = await new Promise((resolve) => child.on('exit', (status) => resolve(status ?? 1)));
    process.exit(code);
  }
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  register('./raw-loader.mjs', import.meta.url);
  const { main } = await import(entry);
  process.exitCode = await main(process.argv.slice(2));
}
