import { test, expect, type Page } from '@playwright/test';

/** Collects console errors, page errors, failed and 4xx/5xx requests. */
function watchForProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) =>
    problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`),
  );
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  return problems;
}

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
