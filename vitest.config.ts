import { existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Dawn (npm "webgpu") loads libvulkan.so.1 when the test process starts; Chromium ships one next
// to its SwiftShader driver. Test files run in forked processes, which inherit this environment.
const CHROMIUM_LIB = '/usr/lib/chromium';
if (!process.env.VK_ICD_FILENAMES && existsSync(`${CHROMIUM_LIB}/vk_swiftshader_icd.json`)) {
  process.env.VK_ICD_FILENAMES = `${CHROMIUM_LIB}/vk_swiftshader_icd.json`;
  process.env.LD_LIBRARY_PATH = [CHROMIUM_LIB, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two at a time on the 2-core CI box: many files wait on spawned CLI processes or the GPU queue.
    maxWorkers: 2,
  },
});
