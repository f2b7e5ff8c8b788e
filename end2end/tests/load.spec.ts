import { test, expect } from '@playwright/test';
import { openLive, recordSockets, watchForProblems } from './support';

// 1,000 ticks/s for 10 s into one page showing that symbol (watchlist row and
// price chart). The page must keep up: the last tick sent is what it shows
// soon after publishing stops. Frame times and long tasks are recorded and
// printed (figures in BENCHMARKS.md, "Dashboard"), not asserted.

const SYMBOL = 'ZLOAD'; // not simulated: only this test moves it
const RATE = 1_000; // ticks per second
const SECONDS = 10;
const BATCH = 100; // ticks per request: 10 requests/s, well under the ingest rate limit
const CATCH_UP_MS = 3_000;

interface FrameStats {
  frames: number;
  p50: number;
  p99: number;
  max: number;
  over50: number;
  longTasks: number;
  longTaskMs: number;
  longestTask: number;
}

test('load: 1,000 ticks/s for 10 s keep the page responsive and current', async ({ page, request }, testInfo) => {
  test.setTimeout(90_000);
  const problems = watchForProblems(page);
  const sockets = recordSockets(page);

  // Make the symbol known, then open the page with it selected.
  let price = 100;
  const first = await request.post('/api/ticks', {
    data: { symbol: SYMBOL, price, volume: 1, ts: Date.now() },
  });
  expect(first.status()).toBe(200);
  await openLive(page, `/?symbol=${SYMBOL}`);
  await expect(page.locator('.price-panel .symbol')).toHaveText(SYMBOL);
  const shown = page.locator(`.watch-row[data-symbol="${SYMBOL}"] .wl-price`);

  // Frame recorder: requestAnimationFrame intervals and long tasks (> 50 ms).
  await page.evaluate(() => {
    const w = window as any;
    w.__perf = { deltas: [] as number[], longTasks: [] as number[], recording: false };
    let last = performance.now();
    const frame = (now: number) => {
      if (w.__perf.recording) w.__perf.deltas.push(now - last);
      last = now;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    new PerformanceObserver((list) => {
      if (!w.__perf.recording) return;
      for (const entry of list.getEntries()) w.__perf.longTasks.push(entry.duration);
    }).observe({ type: 'longtask' });
  });
  const stats = async (): Promise<FrameStats> =>
    page.evaluate(() => {
      const w = window as any;
      const d = [...w.__perf.deltas].sort((a: number, b: number) => a - b);
      const at = (q: number) => d[Math.min(d.length - 1, Math.floor(q * d.length))] ?? 0;
      const tasks: number[] = w.__perf.longTasks;
      return {
        frames: d.length,
        p50: at(0.5),
        p99: at(0.99),
        max: d[d.length - 1] ?? 0,
        over50: d.filter((x: number) => x > 50).length,
        longTasks: tasks.length,
        longTaskMs: tasks.reduce((a, b) => a + b, 0),
        longestTask: Math.max(0, ...tasks),
      };
    });
  const record = (on: boolean) =>
    page.evaluate((on) => {
      const w = window as any;
      w.__perf.recording = on;
      if (on) {
        w.__perf.deltas = [];
        w.__perf.longTasks = [];
      }
    }, on);

  // Main-thread time (Chromium's counters, seconds): task, script, layout, style.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const busy = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x: { name: string; value: number }) => [x.name, x.value]));
    return {
      at: Date.now(),
      task: m.TaskDuration,
      script: m.ScriptDuration,
      layout: m.LayoutDuration,
      style: m.RecalcStyleDuration,
    };
  };
  const share = (a: Awaited<ReturnType<typeof busy>>, b: Awaited<ReturnType<typeof busy>>) => {
    const wall = (b.at - a.at) / 1_000;
    const pct = (x: number) => Math.round((x / wall) * 1_000) / 10;
    return {
      task: pct(b.task - a.task),
      script: pct(b.script - a.script),
      layout: pct(b.layout - a.layout),
      style: pct(b.style - a.style),
    };
  };

  // Baseline: the same page with only the simulator's feed.
  await record(true);
  const idleFrom = await busy();
  await page.waitForTimeout(3_000);
  const idleBusy = share(idleFrom, await busy());
  await record(false);
  const idle = await stats();

  // Load: one request of BATCH ticks every 100 ms, on a fixed schedule (not
  // waiting for answers); timestamps 1 ms apart, all in the past.
  await record(true);
  const loadFrom = await busy();
  const batches = (RATE * SECONDS) / BATCH;
  const start = Date.now();
  // Stamped as they are due: the server refuses ticks more than 5 s behind the
  // symbol's newest one (or ahead of its clock), as the market engine cannot use them.
  const base = start;
  const sends: Promise<number>[] = [];
  let lastPrice = price;
  let seq = 0;
  for (let b = 0; b < batches; b++) {
    const due = start + (b * 1_000 * BATCH) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const ticks = [];
    for (let i = 0; i < BATCH; i++, seq++) {
      price = Math.max(1, price + (((seq * 7919) % 201) - 100) / 1_000);
      lastPrice = Math.round(price * 100) / 100;
      ticks.push({ symbol: SYMBOL, price: lastPrice, volume: 1 + (seq % 50), ts: base + seq });
    }
    sends.push(request.post('/api/ticks', { data: ticks }).then((r) => r.status()));
  }
  const statuses = await Promise.all(sends);
  const sentAt = Date.now();
  const loadBusy = share(loadFrom, await busy());
  const publishMs = sentAt - start;
  expect(statuses.filter((s) => s !== 200), 'every batch accepted').toEqual([]);

  // The page shows the last tick sent, within a few seconds.
  await expect(shown).toHaveText(lastPrice.toFixed(2), { timeout: CATCH_UP_MS });
  const caughtUpMs = Date.now() - sentAt;
  await expect(page.locator('.price-panel .last-price')).toHaveText(lastPrice.toFixed(2));
  await record(false);
  const loaded = await stats();
  await expect(page.getByTestId('connection-status')).toHaveText('Live');

  // What reached the page: the server conflates ticks only for a consumer over its budget.
  const received = sockets
    .flatMap((s) => s.events)
    .filter((e) => e.topic === 'ticks' && e.data.symbol === SYMBOL).length;
  const conflated = sockets
    .flatMap((s) => s.received)
    .filter((m) => m.op === 'conflated')
    .reduce((sum, m) => sum + m.skipped, 0);
  const frames = sockets.flatMap((s) => s.received).length;

  const report = {
    received,
    conflated,
    wsFrames: frames,
    ticks: RATE * SECONDS,
    publishMs,
    achievedRate: Math.round((RATE * SECONDS * 1_000) / publishMs),
    caughtUpMs,
    idle,
    loaded,
    idleBusy,
    loadBusy,
  };
  const round = (s: FrameStats) =>
    `frames ${s.frames}, interval p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, ` +
    `${s.over50} over 50 ms; long tasks ${s.longTasks} (${s.longTaskMs.toFixed(0)} ms, longest ${s.longestTask.toFixed(0)} ms)`;
  console.log(
    `load: ${report.ticks} ticks in ${publishMs} ms (${report.achievedRate}/s), page current ${caughtUpMs} ms after the last send\n` +
      `  received ${received} of the ticks (${conflated} conflated away by the server), ${frames} WebSocket frames in all\n` +
      `  idle (3 s): ${round(idle)}\n  load:       ${round(loaded)}\n` +
      `  main thread busy (% of wall time): idle ${JSON.stringify(idleBusy)}, load ${JSON.stringify(loadBusy)}`,
  );
  await testInfo.attach('frame-stats.json', {
    body: JSON.stringify(report, null, 2),
    contentType: 'application/json',
  });
  expect(problems).toEqual([]);
});
