import { test, expect } from '@playwright/test';
import { watchForProblems } from './support';

test('server-rendered HTML already contains the price chart', async ({ request }) => {
  const response = await request.get('/');
  expect(response.status()).toBe(200);
  const html = await response.text();
  // The raw response, before any script runs: a drawn chart with a data line.
  const chart = html.match(/<div[^>]*data-testid="price-chart"[^>]*>([\s\S]*?)<\/div>/);
  expect(chart, 'price chart container in the SSR HTML').not.toBeNull();
  expect(chart![1]).toContain('<svg');
  expect(chart![1]).toContain('role="img"');
  expect(chart![1].toUpperCase()).toContain('#2563EB'); // the price line
  expect(chart![1]).not.toContain('no prices yet');
});

test('dashboard hydrates, goes live and the chart moves', async ({ page }, testInfo) => {
  const problems = watchForProblems(page);
  await page.goto('/');
  const status = page.getByTestId('connection-status');
  await expect(status).toHaveText('Live');
  await expect(status).toHaveClass(/status-live/);

  const chart = page.getByTestId('price-chart');
  const before = await chart.innerHTML();
  await expect
    .poll(async () => (await chart.innerHTML()) !== before, { timeout: 5_000 })
    .toBe(true);
  await expect(page.locator('.last-price')).toHaveText(/^\d+\.\d{2}$/);

  await page.screenshot({ path: testInfo.outputPath('dashboard.png'), fullPage: true });
  await testInfo.attach('dashboard', {
    path: testInfo.outputPath('dashboard.png'),
    contentType: 'image/png',
  });
  expect(problems).toEqual([]);
});
