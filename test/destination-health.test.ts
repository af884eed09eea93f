import { advance, charge, DEFAULT_HEALTH_PARAMS, healthParamsFromEnv, initialHealth, maySend, parseHealth, type Health, type HealthParams } from '../destinations/health';

const P: HealthParams = { ...DEFAULT_HEALTH_PARAMS, cooldownMs: 60_000 };
const fail = { failed: true, durationMs: 10 };
const ok = { failed: false, durationMs: 10 };

/** Charges `n` failed attempts one millisecond apart; returns the health and the transitions seen. */
function failures(h: Health, n: number, at: number) {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    const step = charge(h, fail, at + i, P);
    h = step.health;
    if (step.transition) seen.push(`${step.transition.from}->${step.transition.to}`);
  }
  return { h, seen };
}

describe('destination health (token bucket)', () => {
  test('a fresh destination is healthy with a full bucket; successes cost nothing', () => {
    let h = initialHealth(0, P);
    expect(h.state).toBe('healthy');
    for (let i = 0; i < 1000; i++) h = charge(h, ok, i, P).health;
    expect(h.tokens).toBe(P.bucketSize);
    expect(h.state).toBe('healthy');
  });

  test('failures degrade it, then disable it for the cool-down', () => {
    const { h, seen } = failures(initialHealth(0, P), 10, 0);
    expect(seen).toEqual(['healthy->degraded', 'degraded->disabled_temporarily']);
    expect(h.state).toBe('disabled_temporarily');
    expect(maySend(h)).toBe(false);
    expect(h.disabledUntil).toBe(9 + P.cooldownMs);
    expect(h.temporaryDisables).toEqual([9]);
  });

  test('rejected requests (4xx) are not poor performance; slow answers are', () => {
    let h = initialHealth(0, P);
    h = charge(h, { failed: false, durationMs: P.slowMs - 1 }, 1, P).health;
    expect(h.tokens).toBe(P.bucketSize);
    h = charge(h, { failed: false, durationMs: P.slowMs }, 2, P).health;
    expect(h.tokens).toBeCloseTo(P.bucketSize - P.slowCost, 3);
    let state = h.state;
    for (let i = 0; i < 100 && state !== 'disabled_temporarily'; i++) {
      h = charge(h, { failed: false, durationMs: 10 * P.slowMs }, 3 + i, P).health;
      state = h.state;
    }
    expect(state).toBe('disabled_temporarily');
  });

  test('time refills the bucket: a degraded destination left alone becomes healthy again', () => {
    const { h } = failures(initialHealth(0, P), 3, 0);
    expect(h.state).toBe('degraded');
    const soon = advance(h, 1_000, P);
    expect(soon.health.state).toBe('degraded');
    expect(soon.transition).toBeUndefined();
    const later = advance(h, 10 * 60_000, P);
    expect(later.health.state).toBe('healthy');
    expect(later.transition).toMatchObject({ from: 'degraded', to: 'healthy' });
    expect(later.health.tokens).toBe(P.bucketSize);
  });

  test('the cool-down ends by itself: re-enabled as degraded, and the same failures disable it again sooner', () => {
    const first = failures(initialHealth(0, P), 10, 0).h;
    const during = advance(first, first.disabledUntil! - 1, P);
    expect(during.health.state).toBe('disabled_temporarily');
    expect(during.transition).toBeUndefined();
    const after = advance(first, first.disabledUntil!, P);
    expect(after.transition).toMatchObject({ from: 'disabled_temporarily', to: 'degraded' });
    expect(maySend(after.health)).toBe(true);
    const again = failures(after.health, 10, first.disabledUntil! + 1);
    expect(again.seen).toEqual(['degraded->disabled_temporarily']);
    expect(again.h.temporaryDisables).toHaveLength(2);
  });

  test('the third temporary disable within 24 h disables it until the user acts', () => {
    let h = initialHealth(0, P);
    let t = 0;
    const states: string[] = [];
    for (let round = 0; round < 3; round++) {
      const r = failures(h, 10, t);
      h = r.h;
      states.push(h.state);
      t = (h.disabledUntil ?? t) + 1;
      h = advance(h, t, P).health;
    }
    expect(states).toEqual(['disabled_temporarily', 'disabled_temporarily', 'disabled']);
    expect(h.state).toBe('disabled');
    // No amount of time re-enables it.
    const much = advance(h, t + 30 * 24 * 3600_000, P);
    expect(much.health.state).toBe('disabled');
    expect(much.transition).toBeUndefined();
    expect(maySend(much.health)).toBe(false);
  });

  test('temporary disables older than the window do not count', () => {
    let h = initialHealth(0, P);
    let t = 0;
    for (let round = 0; round < 5; round++) {
      h = failures(h, 10, t).h;
      expect(h.state).toBe('disabled_temporarily');
      // The next round starts more than half a day later: only two fall inside any 24 h.
      t += 13 * 3600_000;
      h = advance(h, t, P).health;
    }
  });

  test('a stored health is read back, and garbage falls back to a fresh bucket', () => {
    const h = failures(initialHealth(0, P), 10, 0).h;
    const stored = JSON.parse(JSON.stringify(h));
    const back = parseHealth(stored, 'disabled_temporarily', new Date(h.disabledUntil!), 100, P);
    expect(back).toEqual({ ...h, at: h.at });
    expect(parseHealth('nonsense', 'healthy', null, 5, P)).toEqual(initialHealth(5, P));
    expect(parseHealth({ tokens: 'x', temporaryDisables: [1, 'a'] }, 'degraded', null, 5, P)).toMatchObject({ tokens: P.bucketSize, temporaryDisables: [1] });
  });

  test('the cool-down is a setting', () => {
    expect(healthParamsFromEnv({}).cooldownMs).toBe(600_000);
    expect(healthParamsFromEnv({ TRIBUTARY_DESTINATION_COOLDOWN_MS: '1500' }).cooldownMs).toBe(1500);
  });
});
