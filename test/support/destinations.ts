import { eventually } from './cdc';
import type { RunningPlatform } from './platform';
import { connectionPayload, type SourceDb } from './source-db';
import { verifyStandardWebhook, type ReceivedRequest } from './webhook-receiver';

/** A webhook destination created through the API: its id and the signing secret the create answer showed once. */
export interface CreatedDestination {
  id: string;
  secret: string;
}

export async function createDestination(p: RunningPlatform, body: Record<string, unknown>): Promise<CreatedDestination> {
  const res = await p.api('POST', '/api/destinations', { type: 'webhook', method: 'POST', start_from: 'now', ...body });
  if (res.status !== 201) throw new Error(`POST /api/destinations: ${res.status} ${JSON.stringify(res.body)}`);
  const secret = res.body.signing_secret;
  expect(secret).toMatch(/^whsec_/);
  return { id: res.body.id, secret };
}

export async function destinationMetrics(p: RunningPlatform, id: string, interval = '1h') {
  const res = await p.api('GET', `/api/destinations/${id}/metrics?interval=${interval}`);
  if (res.status !== 200) throw new Error(`metrics: ${res.status} ${JSON.stringify(res.body)}\n${res.status >= 500 ? p.output().slice(-3000) : ''}`);
  return res.body as {
    health_state: string;
    totals: Record<'succeeded' | 'failed' | 'filtered' | 'retried' | 'disabled' | 'rejected', number>;
    buckets: Record<string, number | string>[];
    lag: { changes: number; seconds: number | null; oldest_landed_at: string | null };
  };
}

export async function destinationLogs(p: RunningPlatform, id: string, query = '') {
  const res = await p.api('GET', `/api/destinations/${id}/logs?limit=1000${query}`);
  if (res.status !== 200) throw new Error(`logs: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.results as { time: string; level: string; message: string; status: number | null; webhook_id: string; change_ids: string[]; attempt: number }[];
}

/** Waits until the metrics say `n` changes succeeded (they are written about once a second). */
export async function waitForMetric(p: RunningPlatform, id: string, metric: 'succeeded' | 'rejected' | 'disabled' | 'failed' | 'retried' | 'filtered', n: number, timeoutMs = 60_000) {
  return eventually(async () => {
    const m = await destinationMetrics(p, id);
    expect(m.totals[metric]).toBeGreaterThanOrEqual(n);
    return m;
  }, timeoutMs);
}

/** Every request carries a valid Standard Webhooks signature under the destination's secret. */
export function expectSigned(requests: ReceivedRequest[], secret: string) {
  const bad = requests.filter((r) => !verifyStandardWebhook(r, secret));
  expect(bad.map((r) => r.headers)).toEqual([]);
}

/** Items of each request (a batched request's body is an array) with the request's webhook-id. */
export function items(requests: ReceivedRequest[]): { webhookId: string; body: any; request: ReceivedRequest }[] {
  return requests.flatMap((r) => {
    const body = JSON.parse(r.body);
    const webhookId = String(r.headers['webhook-id']);
    return (Array.isArray(body) ? body : [body]).map((b) => ({ webhookId, body: b, request: r }));
  });
}

/** A Postgres source whose `tables` (each keyed by `id`) stream by CDC into `<prefix>_<table>`; returns once it streams. */
export async function createCdcSource(p: RunningPlatform, db: SourceDb, prefix: string, tables: string[]): Promise<string> {
  const res = await p.api('POST', '/api/sources', {
    source_type: 'Postgres',
    prefix,
    payload: {
      ...connectionPayload(db),
      schemas: tables.map((name) => ({ name, should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] })),
    },
  });
  if (res.status !== 201) throw new Error(`POST /api/sources: ${res.status} ${JSON.stringify(res.body)}`);
  await eventually(async () => expect((await p.api('GET', `/api/sources/${res.body.id}`)).body.cdc.status).toBe('Streaming'), 120_000);
  return res.body.id;
}
