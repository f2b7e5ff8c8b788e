import { test, expect } from '@playwright/test';
import { openLive, unique, watchForProblems } from './support';

test('the feed reaches past its live window into stored history', async ({ page, request }) => {
  const problems = watchForProblems(page);
  const tag = unique();
  // 60 posts: more than the 40 the feed shows live.
  const posts = Array.from({ length: 60 }, (_, i) => ({ author: 'historian', text: `history ${tag} #${i}` }));
  const created = await request.post('/api/posts', { data: posts });
  expect(created.status()).toBe(200);
  const ids: number[] = (await created.json()).map((p: { id: number }) => p.id);

  await openLive(page);
  const feed = page.getByTestId('feed');
  const items = feed.locator('li.post');
  await expect(items).toHaveCount(40);
  await expect(feed.locator(`li[data-post-id="${ids[0]}"]`)).toHaveCount(0);

  await feed.getByTestId('older-posts').click();
  await expect(items).toHaveCount(60);
  await feed.getByTestId('older-posts').click();
  await expect(feed.locator(`li[data-post-id="${ids[0]}"]`)).toHaveCount(1);
  await expect(feed.locator(`li[data-post-id="${ids[0]}"] .post-text`)).toHaveText(`history ${tag} #0`);

  // The same server function over plain HTTP: older than a given id, newest first.
  const older = await request.post('/rpc/older_posts', { form: { before: String(ids[10]) } });
  expect(older.status()).toBe(200);
  const page1: { id: number }[] = await older.json();
  expect(page1.length).toBe(20);
  expect(page1.slice(0, 10).map((p) => p.id)).toEqual(ids.slice(0, 10).reverse());
  expect(page1.every((p) => p.id < ids[10])).toBe(true);
  expect(problems).toEqual([]);
});

test('candle history comes from the same query as the HTTP API', async ({ request }) => {
  const form = { symbol: 'AAPL', interval: '1s' };
  const viaServerFn = await request.post('/rpc/candles', { form });
  expect(viaServerFn.status()).toBe(200);
  const candles: { start: number; close: number }[] = await viaServerFn.json();
  expect(candles.length).toBeGreaterThan(10);
  const starts = candles.map((c) => c.start);
  expect([...starts].sort((a, b) => a - b)).toEqual(starts);
  // Both read storage: the HTTP API returns the same candles for that range.
  const range = `from=${starts[0]}&to=${starts[starts.length - 1]}`;
  const viaApi = await (await request.get(`/api/candles/AAPL?interval=1s&${range}`)).json();
  expect(viaApi.slice(0, 5)).toEqual(candles.slice(0, 5));
  const bad = await request.post('/rpc/candles', { form: { symbol: 'not a symbol', interval: '1s' } });
  expect(bad.status()).toBe(400);
  expect(await bad.text()).toContain('invalid symbol');
});
