import type { HttpOutcome } from './http-request';

/**
 * What an attempt's outcome means for the delivery (seed 002, PostHog's rules):
 * - 'success': 2xx;
 * - 'retry': 408, 429, 5xx and network errors (a timeout, a refused connection): tried again, up to MAX_ATTEMPTS;
 * - 'rejected': any other 4xx — the endpoint understood and said no (a 409 "already exists" can be the answer it
 *   means): logged, not retried, and not counted as poor performance;
 * - 'failure': 3xx (redirects are not followed), 1xx, any other status, and an address the outgoing-network policy
 *   refuses (retrying cannot help).
 */
export type OutcomeClass = 'success' | 'retry' | 'rejected' | 'failure';

/** Attempts per request, the first included. */
export const MAX_ATTEMPTS = 3;
/** The backoff before the n-th retry is drawn from [0, min(RETRY_CAP_MS, RETRY_BASE_MS * 2^(n-1))). */
export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 30_000;
/** A Retry-After is honoured up to this long. */
export const RETRY_AFTER_CAP_MS = 120_000;

export function classifyOutcome(o: HttpOutcome): OutcomeClass {
  if (o.kind === 'network_error') return o.refused ? 'failure' : 'retry';
  const s = o.status;
  if (s >= 200 && s < 300) return 'success';
  if (s === 408 || s === 429 || (s >= 500 && s < 600)) return 'retry';
  if (s >= 400 && s < 500) return 'rejected';
  return 'failure';
}

/** A Retry-After header's delay in ms (delta-seconds or an HTTP date, against `nowMs`), or undefined if absent or unreadable. */
export function retryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined; // a bare or negative number is not a date
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * How long to wait before the next attempt, after `attempt` attempts (1 after the first) ended in `outcome`:
 * the response's Retry-After when it has one (seconds or an HTTP date; capped at RETRY_AFTER_CAP_MS), else
 * exponential backoff with full jitter, `rand()` in [0, 1) drawing from [0, min(RETRY_CAP_MS, RETRY_BASE_MS·2^(attempt−1))).
 */
export function retryDelayMs(attempt: number, outcome: HttpOutcome, rand: () => number = Math.random, nowMs: number = Date.now()): number {
  if (outcome.kind === 'response') {
    const header = Object.entries(outcome.headers).find(([k]) => k.toLowerCase() === 'retry-after')?.[1];
    const after = retryAfterMs(header, nowMs);
    if (after !== undefined) return Math.min(after, RETRY_AFTER_CAP_MS);
  }
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1));
  return Math.floor(rand() * ceiling);
}
