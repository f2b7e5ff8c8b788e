import { test, expect, type Browser, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expectPricesAndChartMove, recordSockets, selectSecondSymbol, unique, watchForProblems } from './support';

// The static dashboard: `trunk build --release` wrote ../dist, which a plain
// static server (static-server.mjs, playwright.config.ts) serves on its own
// port; the Pulse server under test lists that origin in --allowed-origins.
const PULSE = `http://127.0.0.1:${process.env.PULSE_E2E_PORT ?? 3100}`;
const STATIC = `http://127.0.0.1:${process.env.PULSE_E2E_STATIC_PORT ?? 3102}`;
const DIST = process.env.PULSE_E2E_DIST ?? path.join(__dirname, '..', '..', 'dist');

test.beforeAll(() => {
  expect(fs.existsSync(path.join(DIST, 'index.html')), `${DIST}/index.html: run \`trunk build --release\` first`).toBe(
    true,
  );
});

/** Serves `config` as the bundle's config.json, as an operator would write it. */
async function withConfig(page: Page, config: unknown) {
  await page.route(`${STATIC}/config.json`, (route) => route.fulfill({ json: config }));
}

/** Opens the bundle and waits until it is live. */
async function openStatic(page: Page, query = '') {
  await page.goto(`${STATIC}/${query}`);
  await expect(page.getByTestId('connection-status')).toHaveText('Live');
}

async function newStaticPage(browser: Browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  return { context, page, problems: watchForProblems(page) };
}

test('static bundle: config.json names the server; every panel fills and the charts move', async ({ page }) => {
  const problems = watchForProblems(page);
  const sockets = recordSockets(page);
  const calls: string[] = [];
  page.on('request', (req) => {
    if (req.url().includes('/rpc/')) calls.push(req.url());
  });
  await withConfig(page, { server: PULSE });
  const document = await page.goto(`${STATIC}/`);
  // The document is the bundle's, not a server-rendered page.
  const html = await document!.text();
  expect(html).not.toContain('data-testid="watchlist"');
  expect(html).toMatch(/\.wasm/);
  await expect(page.getByTestId('connection-status')).toHaveText('Live');

  // Snapshot over HTTP from the configured server, stream over its /ws.
  expect(calls.some((url) => url.startsWith(`${PULSE}/rpc/load_dashboard`))).toBe(true);
  expect(calls.every((url) => url.startsWith(PULSE))).toBe(true);
  expect(sockets[0].url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:${new URL(PULSE).port}/ws\\?session=`));

  // Panels filled, as in the server-rendered page.
  await expect(page.locator('.watch-row').first()).toBeVisible();
  await expect(page.locator('.wl-price').first()).toHaveText(/^\d+\.\d{2}$/);
  for (const chart of ['price-chart', 'sentiment-chart', 'engagement-chart']) {
    await expect(page.getByTestId(chart).locator('svg[role="img"]')).toHaveCount(1);
    await expect(page.getByTestId(chart).locator('svg title')).not.toHaveText('');
  }
  await expect(page.getByTestId('price-chart')).not.toContainText('no candles yet');
  await expect(page.getByTestId('sentiment').locator('.dist-posts').first()).toHaveText(/\d+ posts/);
  await expect(page.getByTestId('feed').locator('.post').first()).toBeVisible();
  await expect(page.getByTestId('post-sentiment').first()).toHaveText(/^(positive|neutral|negative)$/);
  await expect(page.getByTestId('top-posts').locator('li').first()).toBeVisible();
  await expect(page.getByTestId('active-users-count')).toHaveText(/^\d+$/);
  await expect(page.locator('.last-price')).toHaveText(/^\d+\.\d{2}$/);
  // Styled by the bundle's own CSS.
  expect(await page.locator('.topbar').evaluate((el) => getComputedStyle(el).display)).not.toBe('inline');

  // Live: prices and the price chart move; selecting a symbol loads it
  // through the server function and puts it in the URL.
  await expectPricesAndChartMove(page);
  await selectSecondSymbol(page);
  expect(problems).toEqual([]);
});

test('static bundle: compose preview, and a post reaches a second page (?server=)', async ({ page, browser }) => {
  const problems = watchForProblems(page);
  const dataRequests: string[] = [];
  page.on('request', (req) => {
    if (req.url().includes('/rpc/sentiment_data')) dataRequests.push(req.url());
  });
  // ?server= overrides config.json (here: none is fetched at all).
  await openStatic(page, `?server=${encodeURIComponent(PULSE)}`);
  const text = page.getByLabel('Post', { exact: true });
  const label = page.getByTestId('preview-label');
  await text.fill('I love this, what a fantastic and amazing rally!');
  await expect(label).toHaveText('positive');
  await text.fill('Terrible, awful crash. I hate this horrible loss.');
  await expect(label).toHaveText('negative');
  expect(dataRequests).toHaveLength(1);
  expect(dataRequests[0].startsWith(`${PULSE}/rpc/sentiment_data`)).toBe(true);

  const second = await newStaticPage(browser);
  await withConfig(second.page, { server: PULSE });
  await openStatic(second.page);
  const tag = unique();
  const body = `Absolutely love this amazing rally <b>${tag}</b>`;
  await page.getByLabel('Name').fill('e2e-static');
  await text.fill(body);
  await page.getByRole('button', { name: 'Post', exact: true }).click();
  await expect(page.getByTestId('text-error')).toBeEmpty();
  const post = second.page.locator('.post', { hasText: tag });
  await expect(post).toBeVisible({ timeout: 5_000 });
  await expect(post.locator('.post-text')).toHaveText(body);
  await expect(post.locator('.post-text b')).toHaveCount(0);
  await expect(post.getByTestId('post-sentiment')).toHaveText('positive');
  await expect(page.locator('.post', { hasText: tag })).toBeVisible();
  expect(second.problems).toEqual([]);
  await second.context.close();
  expect(problems).toEqual([]);
});

test('static bundle: like carries the session cookie, so a second click undoes it', async ({ page, request }) => {
  const problems = watchForProblems(page);
  const tag = unique();
  const created = await request.post('/api/posts', { data: { author: 'e2e', text: `Like me statically ${tag}` } });
  expect(created.ok()).toBe(true);
  await withConfig(page, { server: PULSE });
  await openStatic(page);
  const likeButton = page.locator('.post', { hasText: tag }).getByRole('button', { name: /^Like post by e2e/ });
  await expect(likeButton).toHaveAttribute('aria-pressed', 'false');
  for (const on of [true, false]) {
    const reacted = page.waitForResponse((r) => r.url().startsWith(`${PULSE}/rpc/react_to_post`));
    await likeButton.click();
    const response = await reacted;
    expect(response.status()).toBe(200);
    expect((await response.json()).on).toBe(on);
    await expect(likeButton).toHaveAttribute('aria-pressed', String(on));
  }
  expect(problems).toEqual([]);
});

test('static bundle: reconnects after the server drops connections and resumes without a gap', async ({
  page,
  request,
}) => {
  const problems = watchForProblems(page);
  const sockets = recordSockets(page);
  await withConfig(page, { server: PULSE });
  await openStatic(page);
  await page.evaluate(() => {
    const badge = document.querySelector('[data-testid="connection-status"]')!;
    const seen: string[] = [badge.textContent ?? ''];
    (window as any).__statuses = seen;
    new MutationObserver(() => {
      const text = badge.textContent ?? '';
      if (text !== seen[seen.length - 1]) seen.push(text);
    }).observe(badge, { childList: true, subtree: true, characterData: true });
  });
  const dropped = await request.post('/api/debug/drop-connections');
  expect(dropped.ok(), 'the server runs with PULSE_TEST_HOOKS=true').toBe(true);
  await expect.poll(() => sockets.length >= 1 && sockets[0].closed).toBe(true);
  // Published around the reconnect: it arrives (replayed or live) once.
  const tag = unique();
  const created = await request.post('/api/posts', { data: { author: 'e2e-static', text: `after the drop ${tag}` } });
  expect(created.ok()).toBe(true);

  await expect(page.getByTestId('connection-status')).toHaveText('Live');
  const statuses: string[] = await page.evaluate(() => (window as any).__statuses);
  expect(statuses).toContain('Reconnecting…');
  await expect(page.locator('.post', { hasText: tag })).toHaveCount(1);

  expect(sockets.length).toBeGreaterThanOrEqual(2);
  const [before, after] = sockets;
  const posts = before.events.filter((e) => e.topic === 'posts').map((e) => e.offset);
  const firstSubscribe = before.sent.find((m) => m.op === 'subscribe');
  const lastSeen = posts.length ? posts[posts.length - 1] : firstSubscribe.since.posts.offset;
  const resubscribe = after.sent.find((m) => m.op === 'subscribe');
  expect(resubscribe.since.posts.offset, 'posts resume from the last offset seen').toBe(lastSeen);
  const subscribed = after.received.find((m) => m.op === 'subscribed' && m.topic === 'posts');
  expect(subscribed?.recovered).toBe(true);
  const resumed = after.events.filter((e) => e.topic === 'posts').map((e) => e.offset);
  expect(resumed).toEqual(resumed.map((_, i) => lastSeen + 1 + i));
  expect(problems).toEqual([]);
});

test('static bundle: without a reachable server it says so, retries, and fills once the server answers', async ({
  page,
}) => {
  let attempts = 0;
  // The server is "down" for the first three loads (the request never arrives).
  await page.route(`${PULSE}/rpc/load_dashboard`, (route) => {
    attempts += 1;
    return attempts <= 3 ? route.abort('connectionrefused') : route.continue();
  });
  await withConfig(page, { server: PULSE });
  await page.goto(`${STATIC}/`);
  await expect(page.getByTestId('load-error')).toContainText(/Could not load the dashboard.*Retrying/);
  await expect(page.getByTestId('connection-status')).toHaveText('Live', { timeout: 20_000 });
  expect(attempts).toBeGreaterThanOrEqual(4);
  await expect(page.locator('.watch-row').first()).toBeVisible();
  await expect(page.getByTestId('load-error')).toHaveCount(0);
});

test('static bundle: a config.json that is not a server URL is reported, not guessed', async ({ page }) => {
  await withConfig(page, { server: 'pulse.example.com' });
  await page.goto(`${STATIC}/`);
  await expect(page.getByTestId('config-error')).toContainText('must start with http:// or https://');
});
