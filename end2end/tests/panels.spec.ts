import { test, expect, type Page, type Browser } from '@playwright/test';
import {
  expectPricesAndChartMove,
  openLive,
  recordSockets,
  selectSecondSymbol,
  unique,
  watchForProblems,
  type SocketLog,
} from './support';

async function newPage(browser: Browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { context, page, problems: watchForProblems(page) };
}


test('raw HTML of / holds every panel with data', async ({ request }) => {
  const html = await (await request.get('/')).text();
  const section = (testid: string) => {
    const start = html.indexOf(`data-testid="${testid}"`);
    expect(start, `${testid} panel in the SSR HTML`).toBeGreaterThan(-1);
    return html.slice(start, start + 60_000);
  };
  // Watchlist: rows with prices and a sparkline.
  const watchlist = section('watchlist');
  expect(watchlist).toMatch(/class="wl-price">\d+\.\d{2}</);
  expect(watchlist).toMatch(/<polyline points="[\d., ]{20,}"/);
  // Charts: drawn SVG with text alternatives.
  for (const chart of ['price-chart', 'sentiment-chart', 'engagement-chart']) {
    const body = section(chart);
    expect(body).toContain('<svg');
    expect(body).toContain('role="img"');
    expect(body).toContain('<title>');
  }
  expect(section('price-chart')).not.toContain('no candles yet');
  // Sentiment distribution, feed posts with badges, top posts, presence, status.
  expect(section('sentiment')).toMatch(/class="dist-posts">\d+ posts/);
  const feed = section('feed');
  expect(/<li data-post-id="\d+"[^>]*class="post"/.test(feed), 'a post in the feed').toBe(true);
  expect(/data-testid="post-sentiment"[^>]*>(positive|neutral|negative)</.test(feed), 'a sentiment badge').toBe(true);
  expect(section('top-posts')).toContain('<li');
  expect(section('compose')).toContain('id="compose-text"');
  expect(/data-testid="active-users-count"[^>]*>\d+</.test(html), 'active user count').toBe(true);
  expect(html).toContain('data-testid="connection-status"');
});

test('watchlist and price chart move live; selecting a symbol is in the URL', async ({ page }) => {
  const problems = watchForProblems(page);
  await openLive(page);
  await expectPricesAndChartMove(page);

  // Select another symbol: URL, heading and chart follow; a reload shows the same view.
  const symbol = await selectSecondSymbol(page);
  const chart = page.getByTestId('price-chart');
  await page.getByRole('link', { name: '1 min' }).click();
  await expect(page).toHaveURL(/interval=1m/);
  await expect(chart.locator('svg title')).toContainText(`${symbol} 1m candles`);
  await page.reload();
  await expect(page.locator('.price-panel .symbol')).toHaveText(symbol);
  await expect(chart.locator('svg title')).toContainText(`${symbol} 1m candles`);
  await expect(page.getByTestId('connection-status')).toHaveText('Live');
  expect(problems).toEqual([]);
});

test('active users rise when a second page opens and fall when it closes', async ({ page, browser, request }) => {
  const problems = watchForProblems(page);
  await openLive(page);
  const count = page.getByTestId('active-users-count');
  // Our own session is counted once the server publishes it; the page agrees
  // with the server's own count before anything else opens.
  const server = async () => (await (await request.get('/api/snapshot')).json()).active_users.sessions;
  let base = 0;
  await expect
    .poll(async () => {
      base = Number(await count.textContent());
      return base > 0 && base === (await server());
    })
    .toBe(true);

  const second = await newPage(browser);
  await openLive(second.page);
  // Presence is published at most once a second; a machine still busy with
  // the load test before can take a few more.
  await expect.poll(async () => Number(await count.textContent()), { timeout: 15_000 }).toBe(base + 1);
  await expect(second.page.getByTestId('active-users-count')).toHaveText(String(base + 1));
  expect(second.problems).toEqual([]);
  await second.context.close();
  await expect.poll(async () => Number(await count.textContent()), { timeout: 15_000 }).toBe(base);
  expect(problems).toEqual([]);
});

test('compose: preview follows the text, empty posts are refused, posts reach other pages', async ({ page, browser }) => {
  const problems = watchForProblems(page);
  const submits: string[] = [];
  const dataRequests: string[] = [];
  page.on('request', (req) => {
    if (req.url().includes('/rpc/submit_post')) submits.push(req.url());
    if (req.url().includes('/rpc/sentiment_data')) dataRequests.push(req.url());
  });
  await openLive(page);
  const text = page.getByLabel('Post', { exact: true });
  const label = page.getByTestId('preview-label');

  // The analyzer's word lists are not in the WASM; the page asks for them
  // once, when the compose box is first used.
  const wasm = Buffer.from(await (await page.request.get('/pkg/pulse.wasm')).body());
  expect(wasm.length).toBeGreaterThan(100_000);
  expect(wasm.includes('%-)\t-1.5\n')).toBe(false);
  expect(dataRequests).toEqual([]);
  await text.fill('I love this, what a fantastic and amazing rally!');
  await expect(label).toHaveText('positive');
  expect(dataRequests).toHaveLength(1);
  await text.fill('Terrible, awful crash. I hate this horrible loss.');
  await expect(label).toHaveText('negative');
  expect(dataRequests).toHaveLength(1);

  // Empty text: an error next to the field, nothing sent.
  await page.getByLabel('Name').fill('e2e');
  await text.fill('   ');
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  await expect(page.getByTestId('text-error')).toHaveText(/must not be empty/);
  await expect(text).toHaveAttribute('aria-invalid', 'true');
  await page.waitForTimeout(300);
  expect(submits).toEqual([]);

  // A real post appears in a second page with its label; its text stays text.
  const second = await newPage(browser);
  await openLive(second.page);
  const tag = unique();
  const body = `Absolutely love this amazing rally <b>${tag}</b>`;
  await text.fill(body);
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  await expect(page.getByTestId('text-error')).toBeEmpty();
  const post = second.page.locator('.post', { hasText: tag });
  await expect(post).toBeVisible({ timeout: 5_000 });
  await expect(post.locator('.post-text')).toHaveText(body);
  await expect(post.locator('.post-text b')).toHaveCount(0);
  await expect(post.getByTestId('post-sentiment')).toHaveText('positive');
  await expect(page.locator('.post', { hasText: tag })).toBeVisible();
  expect(submits.length).toBe(1);
  expect(second.problems).toEqual([]);
  await second.context.close();
  expect(problems).toEqual([]);
});

test('like increments the count in both pages and a second click undoes it', async ({ page, browser, request }) => {
  const problems = watchForProblems(page);
  const tag = unique();
  const created = await request.post('/api/posts', { data: { author: 'e2e', text: `Like me ${tag}` } });
  expect(created.ok()).toBe(true);
  const { id } = await created.json();
  const mine = recordSockets(page);
  await openLive(page);
  const second = await newPage(browser);
  const theirs = recordSockets(second.page);
  await openLive(second.page);

  // The simulator reacts to recent posts too, so the click is followed by its
  // own engagement event (a +1 like carrying the totals the server answered),
  // and each page ends up showing the newest totals it received.
  const likes = (p: Page) => p.locator('.post', { hasText: tag }).getByTestId('likes');
  await expect(likes(page)).toBeVisible();
  const likeButton = page.locator('.post', { hasText: tag }).getByRole('button', { name: /^Like post by e2e/ });
  await expect(likeButton).toHaveAttribute('aria-pressed', 'false');
  const reacted = page.waitForResponse((r) => r.url().includes('/rpc/react_to_post'));
  await likeButton.click();
  const response = await reacted;
  expect(response.status()).toBe(200);
  // The answer carries the new counts and whether this session now likes it.
  const totals = await response.json();
  expect(totals.likes).toBeGreaterThanOrEqual(1);
  expect(totals.on).toBe(true);
  await expect(likeButton).toHaveAttribute('aria-pressed', 'true');
  const ours = (logs: SocketLog[]) =>
    logs.flatMap((log) => log.events).filter((e) => e.topic === 'engagement' && e.data.post_id === id);
  for (const [p, logs] of [
    [page, mine],
    [second.page, theirs],
  ] as const) {
    await expect
      .poll(() => ours(logs).some((e) => e.data.kind === 'like' && e.data.delta === 1 && e.data.totals.likes === totals.likes))
      .toBe(true);
    await expect
      .poll(async () => {
        const events = ours(logs);
        return Number(await likes(p).textContent()) === events[events.length - 1].data.totals.likes;
      })
      .toBe(true);
  }

  // One like per session: the second click takes it back (delta -1), in both pages.
  const undoing = page.waitForResponse((r) => r.url().includes('/rpc/react_to_post'));
  await likeButton.click();
  const undoResponse = await undoing;
  expect(undoResponse.status()).toBe(200);
  const undone = await undoResponse.json();
  expect(undone.on).toBe(false);
  await expect(likeButton).toHaveAttribute('aria-pressed', 'false');
  for (const logs of [mine, theirs]) {
    await expect
      .poll(() => ours(logs).some((e) => e.data.kind === 'like' && e.data.delta === -1 && e.data.totals.likes === undone.likes))
      .toBe(true);
  }
  expect(second.problems).toEqual([]);
  await second.context.close();
  expect(problems).toEqual([]);
});

for (const [name, width, height] of [
  ['phone', 390, 844],
  ['desktop', 1440, 900],
] as const) {
  test(`full-page screenshot at ${width} px (${name})`, async ({ page }, testInfo) => {
    const problems = watchForProblems(page);
    await page.setViewportSize({ width, height });
    await openLive(page);
    await page.waitForTimeout(1_500);
    // Nothing wider than the viewport: the layout fits the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    const path = testInfo.outputPath(`dashboard-${width}.png`);
    await page.screenshot({ path, fullPage: true });
    await testInfo.attach(`dashboard-${width}`, { path, contentType: 'image/png' });
    expect(problems).toEqual([]);
  });
}
