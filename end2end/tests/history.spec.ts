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

  // A post that goes live while the older page is in flight must not push
  // anything out of the feed: the loaded page has to join up with no hole.
  let lateArrived: (id: number) => void = () => {};
  const lateIdPromise = new Promise<number>((resolve) => (lateArrived = resolve));
  await page.route('**/rpc/older_posts', async (route) => {
    const late = await request.post('/api/posts', { data: { author: 'latecomer', text: `late ${tag}` } });
    const id: number = (await late.json()).id;
    await expect(feed.locator(`li[data-post-id="${id}"]`)).toHaveCount(1);
    lateArrived(id);
    await route.continue();
  });
  const olderButton = feed.getByTestId('older-posts');
  await olderButton.click();
  const lateId = await lateIdPromise;
  await expect(feed.locator(`li[data-post-id="${lateId}"]`)).toHaveCount(1);
  await expect(items).not.toHaveCount(40);
  await expect(olderButton).toBeEnabled();
  await page.unroute('**/rpc/older_posts');
  const shownIds = () => items.evaluateAll((lis) => lis.map((li) => Number(li.getAttribute('data-post-id'))));
  // Our posts on the page are always one contiguous run ending at the newest
  // one: nothing from the middle is ever missing.
  const expectNoHole = async () => {
    const ours = (await shownIds()).filter((id) => ids.includes(id));
    expect(ours.length).toBeGreaterThan(40);
    expect(ours).toEqual(ids.slice(ids.length - ours.length).reverse());
  };
  await expectNoHole();

  // Further pages continue below the oldest post until the first one is reached.
  for (let click = 0; click < 3 && !(await shownIds()).includes(ids[0]); click++) {
    const before = await items.count();
    await olderButton.click();
    await expect.poll(() => items.count()).toBeGreaterThanOrEqual(before + 10);
    await expect(olderButton).toBeEnabled();
  }
  // Live posts that arrived meanwhile pushed none of the loaded ones out.
  expect((await shownIds()).filter((id) => ids.includes(id))).toEqual([...ids].reverse());
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
