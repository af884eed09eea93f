/**
 * Waiting on an API without looking dead: every wait is cut into short sleeps, each followed by
 * `onWait` (the read's heartbeat), so a long rate-limit back-off never trips the activity's heartbeat timeout.
 */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The longest single sleep between two heartbeats. */
const HEARTBEAT_SLICE_MS = 5_000;

export async function waitOut(ms: number, onWait?: () => void): Promise<void> {
  onWait?.();
  let left = ms;
  while (left > 0) {
    const slice = Math.min(left, HEARTBEAT_SLICE_MS);
    await sleep(slice);
    left -= slice;
    onWait?.();
  }
}

/** Exponential back-off with ±25 % jitter: `baseMs` · 2^attempt, capped at `capMs`. */
export function backoffMs(attempt: number, baseMs = 500, capMs = 20_000): number {
  return Math.min(baseMs * 2 ** attempt, capMs) * (0.75 + Math.random() / 2);
}
