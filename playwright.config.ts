import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS } from './scripts/chromium.mjs';

// Browser tests run in Debian's Chromium (found or installed by scripts/chromium.mjs, which sets
// CHROMIUM_PATH), never in a Playwright-downloaded browser: this machine cannot download one.
const PORT = Number(process.env.E2E_PORT ?? 5199);

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  timeout: 120_000,
  workers: 2,
  reporter: 'list',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    browserName: 'chromium',
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: [...CHROMIUM_ARGS] },
  },
  webServer: {
    command: `node_modules/.bin/vite --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}/models/index.json`,
    reuseExistingServer: false,
    timeout: 120_000,
  },
});
