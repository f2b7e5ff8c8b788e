import { expect, type Page, type WebSocket } from '@playwright/test';

/** Collects console errors and hydration warnings, page errors, failed and 4xx/5xx requests. */
export function watchForProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    if (msg.type() === 'warning' && /hydrat/i.test(msg.text())) problems.push(`hydration: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => {
    if (!page.isClosed()) problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  return problems;
}

/** Opens the dashboard and waits until it is hydrated and live. */
export async function openLive(page: Page, path = '/') {
  await page.goto(path);
  await expect(page.getByTestId('connection-status')).toHaveText('Live');
}

/** Waits until the watchlist's prices and the price chart have changed (live updates arrive). */
export async function expectPricesAndChartMove(page: Page) {
  const prices = page.locator('.wl-price');
  const before = await prices.allTextContents();
  expect(before.length).toBeGreaterThan(1);
  await expect.poll(async () => (await prices.allTextContents()).join() !== before.join(), { timeout: 5_000 }).toBe(true);
  const chart = page.getByTestId('price-chart');
  const svg = await chart.innerHTML();
  await expect.poll(async () => (await chart.innerHTML()) !== svg, { timeout: 5_000 }).toBe(true);
}

/** Clicks the watchlist's second row; the URL, the heading and the chart follow. Returns its symbol. */
export async function selectSecondSymbol(page: Page) {
  const row = page.locator('.watch-row').nth(1);
  const symbol = (await row.locator('.wl-symbol').textContent())!.trim();
  await row.click();
  await expect(page).toHaveURL(new RegExp(`\\?symbol=${symbol.replace('.', '\\.')}`));
  await expect(page.locator('.price-panel .symbol')).toHaveText(symbol);
  await expect(row).toHaveAttribute('aria-current', 'true');
  await expect(page.getByTestId('price-chart').locator('svg title')).toContainText(symbol);
  return symbol;
}

export const unique = () => `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** One event as the client sees it on the wire (`event` frames and `batch` members). */
export interface WireEvent {
  topic: string;
  offset: number;
  data: any;
}

/** Everything one page WebSocket carried, decoded. */
export interface SocketLog {
  url: string;
  /** Client → server frames (`subscribe`, …). */
  sent: any[];
  /** Server → client frames, as received. */
  received: any[];
  /** Events, flattened out of `event` and `batch` frames, in arrival order. */
  events: WireEvent[];
  closed: boolean;
}

/** Records every `/ws` socket the page opens, in order. */
export function recordSockets(page: Page): SocketLog[] {
  const logs: SocketLog[] = [];
  page.on('websocket', (ws: WebSocket) => {
    if (!new URL(ws.url()).pathname.endsWith('/ws')) return;
    const log: SocketLog = { url: ws.url(), sent: [], received: [], events: [], closed: false };
    logs.push(log);
    ws.on('framesent', (frame) => {
      if (typeof frame.payload === 'string') log.sent.push(JSON.parse(frame.payload));
    });
    ws.on('framereceived', (frame) => {
      if (typeof frame.payload !== 'string') return;
      const message = JSON.parse(frame.payload);
      log.received.push(message);
      if (message.op === 'event') log.events.push(message);
      if (message.op === 'batch') log.events.push(...message.events);
    });
    ws.on('close', () => {
      log.closed = true;
    });
  });
  return logs;
}
