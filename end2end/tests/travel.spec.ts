import { test, expect, type APIRequestContext, type Page } from '@playwright/test';
import { openLive, unique, watchForProblems } from './support';
import * as fs from 'node:fs';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** A new symbol name, letters only like a ticker: six random ones, so repeated runs on one server do not collide (26⁶ names). */
function symbolName(prefix: string): string {
  const letters = Array.from({ length: 6 }, () => String.fromCharCode(65 + Math.floor(Math.random() * 26))).join('');
  return `${prefix}${letters}`;
}

async function postTicks(request: APIRequestContext, ticks: object[]) {
  const response = await request.post('/api/ticks', { data: ticks });
  expect(response.status(), await response.text()).toBe(200);
}

/** 300 daily closes ending yesterday, at 14:30 UTC. */
async function backfillDaily(request: APIRequestContext, symbol: string): Promise<number[]> {
  const today = Math.floor(Date.now() / DAY) * DAY;
  const closes = Array.from({ length: 300 }, (_, i) => Math.round((2_500 + 40 * Math.sin(i / 9) + i) * 100) / 100);
  await postTicks(
    request,
    closes.map((price, i) => ({ symbol, price, volume: 1_000, ts: today - (300 - i) * DAY + 14.5 * 60 * MINUTE })),
  );
  return closes;
}

async function chartNote(page: Page): Promise<string> {
  return (await page.getByTestId('chart-note').textContent()) ?? '';
}

test('a 1-year range shows a year of backfilled daily candles, and the export matches the chart', async ({ page, request }) => {
  const problems = watchForProblems(page);
  const symbol = symbolName('Y');
  const closes = await backfillDaily(request, symbol);

  await openLive(page, `/?symbol=${symbol}&interval=1d`);
  await expect(page.getByTestId('chart-note')).toHaveText(/^1[12][0-9] candles$/);
  // Timed in the page: from the click to the chart showing the year
  // (the server function's round trip, decoding and drawing; BENCHMARKS.md).
  const timing = await page.evaluate(
    () =>
      new Promise<{ shown: number; asked: number; answered: number }>((resolve) => {
        const note = document.querySelector('[data-testid="chart-note"]')!;
        const link = [...document.querySelectorAll('a')].find((a) => a.textContent === '1 year')!;
        const started = performance.now();
        new MutationObserver(() => {
          if (note.textContent !== '300 candles') return;
          const shown = performance.now() - started;
          const call = performance
            .getEntriesByType('resource')
            .filter((e) => e.name.includes('/rpc/load_symbol') && e.startTime >= started)
            .pop() as PerformanceResourceTiming | undefined;
          resolve({
            shown,
            asked: call ? call.startTime - started : NaN,
            answered: call ? call.responseEnd - started : NaN,
          });
        }).observe(note, { childList: true, characterData: true, subtree: true });
        link.click();
      }),
  );
  console.log(
    `client: a year of daily candles shown ${timing.shown.toFixed(1)} ms after the click ` +
      `(load_symbol sent at ${timing.asked.toFixed(1)} ms, answered at ${timing.answered.toFixed(1)} ms)`,
  );
  await expect(page).toHaveURL(/range=1y/);
  await expect(page.getByTestId('chart-note')).toHaveText('300 candles');
  await expect(page.getByTestId('last-price')).toHaveText(closes[299].toFixed(2));
  // Candle bodies drawn: one per day.
  const chart = page.getByTestId('price-chart');
  await expect(chart.locator('svg')).toHaveCount(1);

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
  const file = await download.path();
  const lines = fs.readFileSync(file!, 'utf8').replace(/^\uFEFF/, '').trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const close = header.indexOf('close');
  expect(close, `a close column in ${lines[0]}`).toBeGreaterThanOrEqual(0);
  const exported = lines.slice(1).map((line) => Number(line.split(',')[close]));
  expect(exported).toEqual(closes);
  expect(problems).toEqual([]);
});

test('a day of 1 min candles draws in one switch', async ({ page, request }) => {
  const problems = watchForProblems(page);
  const symbol = symbolName('D');
  const start = Math.floor(Date.now() / MINUTE) * MINUTE - 1_440 * MINUTE;
  const prices = Array.from({ length: 1_440 }, (_, i) => Math.round((100 + 5 * Math.sin(i / 30) + i / 100) * 100) / 100);
  await postTicks(
    request,
    prices.map((price, i) => ({ symbol, price, volume: 10, ts: start + i * MINUTE + 1_000 })),
  );
  await openLive(page, `/?symbol=${symbol}&interval=1m`);
  const shown = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const note = document.querySelector('[data-testid="chart-note"]')!;
        const group = document.querySelector('[aria-label="Time range"]')!;
        const link = [...group.querySelectorAll('a')].find((a) => a.textContent === '1 day')!;
        const started = performance.now();
        new MutationObserver(() => {
          if (/^14[34]\d candles$/.test(note.textContent ?? '')) resolve(performance.now() - started);
        }).observe(note, { childList: true, characterData: true, subtree: true });
        link.click();
      }),
  );
  console.log(`client: a day of 1 min candles shown ${shown.toFixed(1)} ms after the click`);
  await expect(page).toHaveURL(/range=1d/);
  await expect(page.getByTestId('last-price')).toHaveText(prices[1_439].toFixed(2));
  expect(problems).toEqual([]);
});

test('travelling to a past window plays it at 60× in order, as stored, and goes back to live', async ({ page, request }) => {
  const problems = watchForProblems(page);
  const symbol = symbolName('T');
  const tag = unique();
  const t0 = Math.floor((Date.now() - 90 * MINUTE) / MINUTE) * MINUTE;
  const prices = Array.from({ length: 40 }, (_, k) => 50 + k);
  await postTicks(
    request,
    prices.map((price, k) => ({ symbol, price, volume: 10, ts: t0 + k * MINUTE + 10_000 })),
  );
  const posts = prices.map((_, k) => ({ author: 'traveller', text: `travel ${tag} #${k}`, ts: t0 + k * MINUTE + 20_000 }));
  expect((await request.post('/api/posts', { data: posts })).status()).toBe(200);

  // Five minutes in: the fifth minute has just ended.
  await page.goto(`/?symbol=${symbol}&interval=1m&range=1h&at=${t0 + 5 * MINUTE}`);
  const bar = page.getByTestId('time-travel');
  await expect(bar).toHaveAttribute('data-ready', 'true');
  const header = page.getByTestId('last-price');
  const topPost = page.getByTestId('feed').locator('li.post .post-text').first();
  await expect(header).toHaveText('54.00');
  await expect(topPost).toHaveText(`travel ${tag} #4`);
  await expect(page.getByTestId('chart-note')).toHaveText('5 candles');
  await expect(page.getByTestId('active-users')).toContainText('not recorded');

  // Play at 60×: a stored minute per second. Record what the header and the feed show.
  await page.getByTestId('speed-60').click();
  await page.getByTestId('play').click();
  const seen: { price: number; post: string }[] = [];
  await expect
    .poll(
      async () => {
        const price = Number(await header.textContent());
        const post = (await topPost.textContent()) ?? '';
        if (seen.length === 0 || seen[seen.length - 1].price !== price || seen[seen.length - 1].post !== post) {
          seen.push({ price, post });
        }
        return price;
      },
      { timeout: 15_000, intervals: [100] },
    )
    .toBeGreaterThanOrEqual(58);
  await page.getByTestId('play').click(); // pause
  const shownPrices = seen.map((s) => s.price);
  expect(shownPrices, 'prices only move forward').toEqual([...shownPrices].sort((a, b) => a - b));
  for (const { price, post } of seen) {
    const k = price - 50;
    expect(prices).toContain(price);
    // The candle of minute k ends at t0 + (k+1) min, after post k (at +20 s):
    // the feed's top post is k, or k+1 once its time has come.
    expect([`travel ${tag} #${k}`, `travel ${tag} #${k + 1}`]).toContain(post);
  }
  // What was shown is what storage holds.
  const stored = await (await request.get(`/api/candles/${symbol}?interval=1m`)).json();
  expect(stored.map((c: { close: number }) => c.close)).toEqual(prices);
  const clock = Number(await page.getByTestId('travel-clock').getAttribute('datetime'));
  expect(clock).toBeGreaterThan(t0 + 8 * MINUTE);
  expect(Number((await chartNote(page)).split(' ')[0])).toBeGreaterThanOrEqual(9);

  // Back to live: the connection comes up and live prices move again.
  await page.getByTestId('back-to-live').click();
  await expect(page).not.toHaveURL(/at=/);
  await expect(page.getByTestId('connection-status')).toHaveText('Live');
  await expect(page.getByTestId('travel-at')).toBeVisible();
  const watchPrices = page.locator('.wl-price');
  const before = await watchPrices.allTextContents();
  await expect.poll(async () => (await watchPrices.allTextContents()).join(), { timeout: 10_000 }).not.toBe(before.join());
  expect(problems).toEqual([]);
});

test('the travel form puts the dashboard on the moment asked for', async ({ page }) => {
  await openLive(page);
  const at = new Date(Date.now() - 30 * MINUTE);
  const local = at.toISOString().slice(0, 19); // YYYY-MM-DDTHH:MM:SS, UTC
  await page.getByTestId('travel-at').fill(local);
  await page.getByTestId('travel-go').click();
  await expect(page).toHaveURL(/at=/);
  await expect(page.getByTestId('time-travel')).toHaveAttribute('data-ready', 'true');
  const shown = await page.getByTestId('travel-clock').textContent();
  expect(shown).toBe(local.replace('T', ' '));
});
