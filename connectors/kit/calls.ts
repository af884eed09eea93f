import type { Pacer } from './pacer';
import { backoffMs, waitOut } from './waiting';

/**
 * One API call, paced and patient. What a failure means is the connector's to say (`classify`); what to do
 * about it is the kit's:
 *
 * - `rate_limited`: waited out — `retryAfterMs` when the API says how long, else an exponential back-off —
 *   and retried for as long as it takes: a sync never fails on a rate limit.
 * - `transient` (5xx, a reset connection, a timeout): retried with back-off up to `transientAttempts` times,
 *   then thrown; the activity's own retries take it from there, resuming from the last position.
 * - `fatal`: thrown at once (a bad key, a refused permission: no retry can fix it).
 *
 * Every wait heartbeats through `onWait`.
 */
export type FailureKind = { kind: 'rate_limited'; retryAfterMs?: number } | { kind: 'transient' } | { kind: 'fatal' };

export interface CallOptions {
  pacer?: Pacer;
  classify(err: unknown): FailureKind;
  onWait?: () => void;
  /** Attempts for transient failures before giving up (default 6: about 30 s of back-off). */
  transientAttempts?: number;
  /** Longest wait for one rate-limit back-off without Retry-After (default: maxBackoffMs, else 60 s). */
  rateLimitCapMs?: number;
  /** Longest back-off the kit picks itself, rate limit or transient (default 60 s / 20 s); never shortens a Retry-After. */
  maxBackoffMs?: number;
}

/**
 * Failures `callWithRetries` already retried as often as it was allowed to. A caller that retries on its own (keyset
 * paging resuming a page broken off mid-stream) throws these at once, so the two layers' attempts never multiply.
 */
const exhausted = new WeakSet<object>();

export function retriesExhausted(err: unknown): boolean {
  return typeof err === 'object' && err !== null && exhausted.has(err);
}

export async function callWithRetries<T>(fn: () => Promise<T>, opts: CallOptions): Promise<T> {
  const transientAttempts = opts.transientAttempts ?? 6;
  let limited = 0;
  let transient = 0;
  for (;;) {
    await opts.pacer?.slot();
    try {
      return await fn();
    } catch (err) {
      const failure = opts.classify(err);
      if (failure.kind === 'rate_limited') {
        const wait = failure.retryAfterMs !== undefined ? Math.min(failure.retryAfterMs, 60_000) : backoffMs(limited, 1_000, opts.rateLimitCapMs ?? opts.maxBackoffMs ?? 60_000);
        limited++;
        await waitOut(wait, opts.onWait);
        continue;
      }
      if (failure.kind === 'transient' && transient < transientAttempts) {
        await waitOut(backoffMs(transient, 500, opts.maxBackoffMs ?? 20_000), opts.onWait);
        transient++;
        continue;
      }
      if (failure.kind === 'transient' && typeof err === 'object' && err !== null) exhausted.add(err);
      throw err;
    }
  }
}
