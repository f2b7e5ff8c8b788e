import { test, expect } from '@playwright/test';
import { openLive, recordSockets, unique, watchForProblems, type SocketLog } from './support';

// The server runs with PULSE_TEST_HOOKS=true (playwright.config.ts): POST
// /api/debug/drop-connections closes every WebSocket with 1012 and keeps history.

const GAP_POSTS = 5;
const GAP_TICKS = 20;
const GAP_SYMBOL = 'ZGAP';

/** Offsets of `topic`'s events carried by one socket, in arrival order. */
const offsets = (log: SocketLog, topic: string) =>
  log.events.filter((e) => e.topic === topic).map((e) => e.offset);

test('reconnect: status goes Reconnecting… then Live, and what was published meanwhile arrives once, in order', async ({
  page,
  request,
}) => {
  const problems = watchForProblems(page);
  const sockets = recordSockets(page);
  await openLive(page);
  const status = page.getByTestId('connection-status');
  const tag = unique();

  // In the page: record every status the badge shows and, the moment it leaves
  // "Live", publish posts and ticks. Whatever the new socket sends (its
  // `subscribe`) is held until they are acknowledged, so on a slow machine
  // too they land while the page is disconnected and must come back through
  // the replay.
  await page.evaluate(
    ({ tag, posts, ticks, symbol }) => {
      const badge = document.querySelector('[data-testid="connection-status"]')!;
      const seen: string[] = [badge.textContent ?? ''];
      (window as any).__statuses = seen;
      let published = false;
      let gap: Promise<unknown> = Promise.resolve();
      const nativeSend = WebSocket.prototype.send;
      WebSocket.prototype.send = function (this: WebSocket, data: string) {
        if (!published) return nativeSend.call(this, data);
        gap.finally(() => nativeSend.call(this, data));
      };
      gap = (window as any).__gap = new Promise((resolve, reject) => {
        new MutationObserver(() => {
          const text = badge.textContent ?? '';
          if (text !== seen[seen.length - 1]) seen.push(text);
          if (published || text === 'Live') return;
          published = true;
          const now = Date.now();
          const json = (body: unknown) => ({
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          Promise.all([
            fetch(
              '/api/posts',
              json(Array.from({ length: posts }, (_, i) => ({ author: 'e2e-gap', text: `gap ${tag} #${i}` }))),
            ).then((r) => r.json()),
            fetch(
              '/api/ticks',
              json(
                Array.from({ length: ticks }, (_, i) => ({
                  symbol,
                  price: 50 + i * 0.25,
                  volume: 10,
                  ts: now - ticks + i,
                })),
              ),
            ).then((r) => r.status),
          ])
            .then(([created, ticksStatus]) =>
              resolve({ created, ticksStatus, statusWhenPublished: badge.textContent }),
            )
            .catch(reject);
        }).observe(badge, { childList: true, subtree: true, characterData: true });
      });
    },
    { tag, posts: GAP_POSTS, ticks: GAP_TICKS, symbol: GAP_SYMBOL },
  );

  const dropped = await request.post('/api/debug/drop-connections');
  expect(dropped.ok(), 'the server runs with PULSE_TEST_HOOKS=true').toBe(true);
  const gap: any = await page.evaluate(() => (window as any).__gap);
  expect(gap.ticksStatus).toBe(200);
  expect(gap.created).toHaveLength(GAP_POSTS);
  expect(gap.statusWhenPublished, 'published while disconnected').not.toBe('Live');

  // Back to Live on a new socket.
  await expect(status).toHaveText('Live');
  const statuses: string[] = await page.evaluate(() => (window as any).__statuses);
  expect(statuses).toContain('Reconnecting…');
  expect(statuses[statuses.length - 1]).toBe('Live');

  // The page shows every post of the gap exactly once, newest first, and the
  // gap's last tick as the symbol's price (a row it had never seen before).
  const expected = Array.from({ length: GAP_POSTS }, (_, i) => `gap ${tag} #${GAP_POSTS - 1 - i}`);
  await expect(page.locator('.post .post-text', { hasText: `gap ${tag} ` })).toHaveText(expected);
  const ids = gap.created.map((p: any) => String(p.id)).reverse();
  expect(
    await page.locator('.post', { hasText: `gap ${tag} ` }).evaluateAll((els) =>
      els.map((el) => el.getAttribute('data-post-id')),
    ),
  ).toEqual(ids);
  await expect(page.locator(`.watch-row[data-symbol="${GAP_SYMBOL}"] .wl-price`)).toHaveText(
    (50 + (GAP_TICKS - 1) * 0.25).toFixed(2),
  );

  // On the wire: the new socket resumed each topic exactly where the old one
  // stopped, the server recovered it, and offsets run on without a gap or a repeat.
  expect(sockets).toHaveLength(2);
  const [before, after] = sockets;
  expect(before.closed).toBe(true);
  const firstSubscribe = before.sent.find((m) => m.op === 'subscribe');
  const resubscribe = after.sent.find((m) => m.op === 'subscribe');
  expect(resubscribe, 'the new socket subscribes').toBeTruthy();
  for (const topic of ['posts', 'ticks']) {
    const old = offsets(before, topic);
    const lastSeen = old.length ? old[old.length - 1] : firstSubscribe.since[topic].offset;
    expect(resubscribe.since[topic]?.offset, `${topic} resumes from the last offset seen`).toBe(lastSeen);
    const subscribed = after.received.find((m) => m.op === 'subscribed' && m.topic === topic);
    expect(subscribed?.recovered, `${topic} recovered`).toBe(true);
    const resumed = offsets(after, topic);
    expect(resumed.length, `${topic} events after the reconnect`).toBeGreaterThan(0);
    expect(resumed, `${topic} offsets continue without a gap or a repeat`).toEqual(
      resumed.map((_, i) => lastSeen + 1 + i),
    );
  }
  // The gap's posts reached the page through the replay (offset at most the
  // head the server announced when the new socket subscribed).
  const postsHead = after.received.find((m) => m.op === 'subscribed' && m.topic === 'posts').offset;
  const gapPosts = after.events.filter((e) => e.topic === 'posts' && String(e.data.text).startsWith(`gap ${tag} `));
  expect(gapPosts.map((e) => e.data.text)).toEqual([...expected].reverse());
  for (const event of gapPosts) expect(event.offset).toBeLessThanOrEqual(postsHead);
  expect(before.events.some((e) => e.topic === 'posts' && String(e.data.text).includes(tag))).toBe(false);

  expect(problems).toEqual([]);
});
