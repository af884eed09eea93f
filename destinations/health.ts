import type { HealthState } from './types';

/**
 * A destination's health, as PostHog's HogWatcher keeps it: a token bucket that failed attempts and slow
 * responses draw from and time refills. Pure functions over a plain object the catalog stores (destinations.health
 * jsonb, with the state and `disabled_until` in their own columns too).
 *
 *   healthy ──(tokens below `degradedBelow`)──▶ degraded ──(bucket empty)──▶ disabled_temporarily
 *      ▲                                           │ ▲                               │
 *      └──────────(refilled above it)──────────────┘ └──(cool-down over: re-enabled)─┘
 *   the `maxTemporaryDisables`-th temporary disable within `windowMs` ──▶ disabled (until the user edits the
 *   destination and enables it again: the API resets the health to `initialHealth`).
 *
 * A rejected request (a 4xx other than 408/429) costs nothing: receivers use them to answer (a 409 for a record
 * that exists), so they are not poor performance.
 */
export interface HealthParams {
  bucketSize: number;
  /** Tokens back per second, up to the bucket's size. */
  refillPerSecond: number;
  /** Cost of an attempt that failed (a 5xx, 408, 429, a network error or time-out, a 3xx, a template error). */
  failureCost: number;
  /** Cost of an answer that took `slowMs` or longer (on top of a failure's cost). */
  slowCost: number;
  slowMs: number;
  /** Below this many tokens the destination is degraded. */
  degradedBelow: number;
  /** How long a temporary disable lasts. */
  cooldownMs: number;
  /** This many temporary disables within `windowMs` disable the destination until the user acts. */
  maxTemporaryDisables: number;
  windowMs: number;
}

/** The defaults: ten failed attempts in a row empty a full bucket; it refills completely in ten minutes. */
export const DEFAULT_HEALTH_PARAMS: HealthParams = {
  bucketSize: 100,
  refillPerSecond: 100 / 600,
  failureCost: 10,
  slowCost: 5,
  slowMs: 3_000,
  degradedBelow: 80,
  cooldownMs: 600_000,
  maxTemporaryDisables: 3,
  windowMs: 24 * 3600_000,
};

/** What is stored. Times are epoch milliseconds. */
export interface Health {
  state: HealthState;
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  /** disabled_temporarily: when it ends. */
  disabledUntil: number | null;
  /** When the recent temporary disables began (those within the window). */
  temporaryDisables: number[];
}

export interface HealthTransition {
  from: HealthState;
  to: HealthState;
  reason: string;
}

export interface HealthStep {
  health: Health;
  /** Set when the state changed. */
  transition?: HealthTransition;
}

/** What one attempt cost. */
export interface AttemptCharge {
  /** The attempt failed in a way that is poor performance. */
  failed: boolean;
  durationMs: number;
}

export function initialHealth(now: number, params: HealthParams = DEFAULT_HEALTH_PARAMS): Health {
  return { state: 'healthy', tokens: params.bucketSize, at: now, disabledUntil: null, temporaryDisables: [] };
}

/** Reads a stored health object back, falling back to a fresh bucket for what is missing or malformed. */
export function parseHealth(stored: unknown, state: HealthState, disabledUntil: Date | null, now: number, params: HealthParams = DEFAULT_HEALTH_PARAMS): Health {
  const s = (stored && typeof stored === 'object' ? stored : {}) as Partial<Health>;
  const fresh = initialHealth(now, params);
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  return {
    state,
    tokens: Math.min(params.bucketSize, num(s.tokens, fresh.tokens)),
    at: Math.min(now, num(s.at, now)),
    disabledUntil: disabledUntil ? disabledUntil.getTime() : state === 'disabled_temporarily' ? num(s.disabledUntil, now) : null,
    temporaryDisables: Array.isArray(s.temporaryDisables) ? s.temporaryDisables.filter((t): t is number => typeof t === 'number') : [],
  };
}

/** The tokens time has given back since `at`. */
export function refill(h: Health, now: number, params: HealthParams = DEFAULT_HEALTH_PARAMS): Health {
  if (now <= h.at) return h;
  const tokens = Math.min(params.bucketSize, h.tokens + ((now - h.at) / 1000) * params.refillPerSecond);
  return { ...h, tokens, at: now };
}

/** The state the tokens put an enabled destination in. */
function stateOf(tokens: number, params: HealthParams): HealthState {
  if (tokens < 1) return 'disabled_temporarily';
  return tokens < params.degradedBelow ? 'degraded' : 'healthy';
}

/**
 * Brings the health up to `now`: refills, ends a cool-down that is over (re-enabled, degraded: a bucket at the
 * degraded line, so a destination still failing is quickly disabled again), and lets a refilled bucket be healthy.
 */
export function advance(h: Health, now: number, params: HealthParams = DEFAULT_HEALTH_PARAMS): HealthStep {
  if (h.state === 'disabled') return { health: h };
  if (h.state === 'disabled_temporarily') {
    if (h.disabledUntil !== null && now < h.disabledUntil) return { health: { ...h, at: now } };
    const health: Health = { ...h, state: 'degraded', tokens: Math.max(1, params.degradedBelow - 1), at: now, disabledUntil: null };
    return { health, transition: { from: h.state, to: health.state, reason: 'the cool-down is over: delivery resumes' } };
  }
  const refilled = refill(h, now, params);
  const state = stateOf(refilled.tokens, params);
  if (state === h.state || state === 'disabled_temporarily') return { health: refilled };
  return { health: { ...refilled, state }, transition: { from: h.state, to: state, reason: 'enough time without failures' } };
}

/** Charges one attempt's outcome; an emptied bucket disables for the cool-down, or for good after too many. */
export function charge(h: Health, attempt: AttemptCharge, now: number, params: HealthParams = DEFAULT_HEALTH_PARAMS): HealthStep {
  const base = advance(h, now, params);
  const cur = base.health;
  // A cool-down or a disable is not charged again (nothing should be sent then anyway).
  if (cur.state === 'disabled' || cur.state === 'disabled_temporarily') return base;
  const cost = (attempt.failed ? params.failureCost : 0) + (attempt.durationMs >= params.slowMs ? params.slowCost : 0);
  if (cost === 0) return base;
  const tokens = Math.max(0, cur.tokens - cost);
  const state = stateOf(tokens, params);
  const why = attempt.failed ? 'failed requests' : 'slow responses';
  if (state === 'disabled_temporarily') {
    const recent = [...cur.temporaryDisables.filter((t) => now - t < params.windowMs), now];
    if (recent.length >= params.maxTemporaryDisables) {
      const health: Health = { ...cur, state: 'disabled', tokens, disabledUntil: null, temporaryDisables: recent };
      return {
        health,
        transition: {
          from: cur.state,
          to: 'disabled',
          reason: `${why}: disabled ${recent.length} times within ${Math.round(params.windowMs / 3600_000)} h; edit the destination and enable it again`,
        },
      };
    }
    const health: Health = { ...cur, state, tokens, disabledUntil: now + params.cooldownMs, temporaryDisables: recent };
    return { health, transition: { from: cur.state, to: state, reason: `${why}: disabled for ${Math.round(params.cooldownMs / 1000)} s` } };
  }
  const health: Health = { ...cur, tokens, state };
  if (state === cur.state) return { health, transition: base.transition };
  return { health, transition: { from: cur.state, to: state, reason: why } };
}

/** Whether a destination in this health may send now. */
export const maySend = (h: Health) => h.state === 'healthy' || h.state === 'degraded';

/** The health parameters from the environment (TRIBUTARY_DESTINATION_COOLDOWN_MS). */
export function healthParamsFromEnv(env: NodeJS.ProcessEnv = process.env): HealthParams {
  const cooldown = Number(env.TRIBUTARY_DESTINATION_COOLDOWN_MS);
  return { ...DEFAULT_HEALTH_PARAMS, cooldownMs: Number.isFinite(cooldown) && cooldown > 0 ? cooldown : DEFAULT_HEALTH_PARAMS.cooldownMs };
}
