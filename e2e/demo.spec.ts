import { expect, test } from '@playwright/test';

/** The demo page: loads the embedded model in the worker and lets an agent talk. */
test('the demo loads the trained embedded model and an agent answers, reporting its memory', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('#status')).toContainText('ready: shakespeare-llama', { timeout: 60_000 });
  const romeo = page.locator('agent-panel').first();
  await romeo.locator('input[type=text]').fill('But soft, what light');
  await romeo.locator('button', { hasText: 'Send' }).click();
  await expect(romeo.locator('.meta').last()).toContainText('TTFT', { timeout: 60_000 });
  await expect(romeo.locator('.meta').first()).toContainText('memory: hot');
  await page.screenshot({ path: 'test-results/demo.png', fullPage: true });
});
