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
