import { Pacer } from '../connectors/kit/pacer';

/** Blocks the event loop for `ms`, as a busy thread (a large batch rendered, a GC) does. */
function busy(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

describe('Pacer', () => {
  test('callers woken late together are let go one interval apart, never more than rps in a second', async () => {
    const rps = 40;
    const pacer = new Pacer(rps);
    const granted: number[] = [];
    // Ten callers in line at 40/s: their slots would fall every 25 ms; the loop is then busy for 200 ms.
    const calls = Array.from({ length: 10 }, () => pacer.slot().then(() => void granted.push(Date.now())));
    await new Promise((r) => setTimeout(r, 30));
    busy(200);
    await Promise.all(calls);
    granted.sort((a, b) => a - b);
    const gaps = granted.slice(1).map((t, i) => t - granted[i]);
    // Timers may fire a millisecond early or late; never a burst of calls at once after the stall.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000 / rps - 2);
  });

  test('calls go in the order they asked, at the pace, and a caller alone is let go at once', async () => {
    const pacer = new Pacer(100);
    const t0 = Date.now();
    await pacer.slot();
    expect(Date.now() - t0).toBeLessThan(5);
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map((i) => pacer.slot().then(() => void order.push(i))));
    expect(order).toEqual([0, 1, 2, 3]);
    // Four more calls after the first at 100/s: at least ~40 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(38);
  });
});
