import { test, expect } from '@playwright/test';
import { openLive } from './support';

// A CPU profile of the price chart's switch to a year of daily candles
// (BENCHMARKS.md, "History: drawing long ranges"). Only on demand:
// PULSE_PROFILE=1 npx playwright test profile.spec.ts
const DAY = 86_400_000;

test('profile: where the switch to a year of daily candles spends its time', async ({ page, request }) => {
  test.skip(!process.env.PULSE_PROFILE, 'set PULSE_PROFILE=1 to profile');
  const symbol = 'PROFA';
  const today = Math.floor(Date.now() / DAY) * DAY;
  const ticks = Array.from({ length: 300 }, (_, i) => ({ symbol, price: 2500 + i, volume: 1000, ts: today - (300 - i) * DAY + 52_200_000 }));
  expect((await request.post('/api/ticks', { data: ticks })).status()).toBe(200);
  await openLive(page, `/?symbol=${symbol}&interval=1d`);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  await page.getByRole('link', { name: '1 year' }).click();
  await expect(page.getByTestId('chart-note')).toHaveText('300 candles');
  const { profile } = await cdp.send('Profiler.stop');
  const self = new Map<string, number>();
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples?.forEach((id, i) => {
    const frame = nodes.get(id)!.callFrame;
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').pop()}`;
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas?.[i] ?? 0) / 1000);
  });
  for (const [name, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${ms.toFixed(1).padStart(8)} ms self  ${name}`);
  }
});
