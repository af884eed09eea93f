/**
 * `npm run bench:destinations` — webhook destinations through the real platform (embedded Temporal, chDB, PGlite),
 * fed by Postgres CDC, delivering to a local HTTP endpoint (a real server in this process that answers 200 at once
 * and notes when each change arrived):
 *
 * 1. Deliveries/s, one by one: a backlog of BENCH_DELIVERIES (50,000) changes (transactions of 100: 60 updates, 30 inserts,
 *    10 deletes) is written and recorded in the change log first; then a destination with batch_size 1 is created
 *    replaying from before the backlog (`start_from`), and the time from the create to the last of its changes
 *    arriving gives deliveries/s (also from the first arrival to the last, which leaves out the workflow's start).
 * 2. The same backlog to a destination with batch_size BENCH_BATCH_SIZE (100): changes delivered per second, and
 *    requests per second; then once more with a filter expression (evaluated by the engine) and a json-e template.
 * 3. Change-to-delivery latency at BENCH_LAG_RATE (1,000) changes/s for BENCH_LAG_SECONDS (30): a destination
 *    (batch_size BENCH_LAG_BATCH_SIZE, 100) starting from now; each transaction's COMMIT returning → each of its
 *    changes' first arrival at the endpoint (CDC, the change log and the delivery together); p50 and p99 over every
 *    change.
 *
 * The body is the default one (the change itself, destinations/types.ts ChangeContext); the filter names the table.
 * Every change must arrive (else the bench fails); a redelivery is counted once, and the number of duplicates printed.
 * The first request of each destination is checked with the standardwebhooks package against the secret the create
 * answered. A benchmark, not a test: it prints figures, then one JSON line.
 */
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import type { RunningPlatform } from '../test/support/platform';
import { RecordingEndpoint, type RecordedRequest } from '../test/support/recording-endpoint';
import { BenchParts, createPostgresSource } from './bench-setup';
import { createOrders } from './bench-orders';
import { PER_TXN, pct, waitForMaxId, Workload } from './bench-visibility';

const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 50_000);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 100);
const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 1_000);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 30);
const LAG_BATCH_SIZE = Number(process.env.BENCH_LAG_BATCH_SIZE ?? 100);
const ROWS = 10_000;
const TABLE = 'bench_orders';
const log = (m: string) => process.stderr.write(`[bench:destinations ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Delivered {
  id: string;
  op: string;
  key: Record<string, unknown>;
  row: Record<string, unknown>;
}

/** What one destination's requests brought: each change's first arrival, and how many arrived again. */
class Arrivals {
  readonly first = new Map<string, { at: number; change: Delivered }>();
  requests = 0;
  duplicates = 0;
  firstAt = 0;
  lastAt = 0;
  /** The signing secret once the create answered it; the first request is checked with it as soon as both are there. */
  secret?: string;
  private sample?: RecordedRequest;
  private verified = false;

  private failure?: Error;

  private verify() {
    if (this.verified || this.failure || !this.secret || !this.sample) return;
    try {
      new Webhook(this.secret).verify(this.sample.body, this.sample.headers as Record<string, string>);
      this.verified = true;
    } catch (err) {
      this.failure = new Error(`the first request's signature does not verify: ${(err as Error).message}`);
    }
  }

  take(req: RecordedRequest) {
    this.requests++;
    this.sample ??= req;
    this.verify();
    const parsed = JSON.parse(req.body) as Delivered | Delivered[];
    for (const c of Array.isArray(parsed) ? parsed : [parsed]) {
      if (this.first.has(c.id)) {
        this.duplicates++;
        continue;
      }
      this.first.set(c.id, { at: req.receivedAt, change: c });
      if (this.firstAt === 0) this.firstAt = req.receivedAt;
      this.lastAt = req.receivedAt;
    }
  }

  async waitFor(n: number, timeoutMs: number, what: string) {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let lastChange = Date.now();
    while (this.first.size < n || !this.verified) {
      this.verify();
      if (this.failure) throw this.failure;
      if (this.first.size !== last) [last, lastChange] = [this.first.size, Date.now()];
      if (Date.now() > deadline || Date.now() - lastChange > 120_000) {
        throw new Error(`${what}: ${this.first.size} of ${n} changes arrived (${this.requests} requests)`);
      }
      await sleep(20);
    }
  }
}

async function changeLogCount(platform: RunningPlatform): Promise<number> {
  const r = await platform.api('POST', '/api/query', { sql: `SELECT count() AS n FROM _tributary_changes WHERE \`table\` = '${TABLE}'` });
  if (r.status !== 200) throw new Error(`change log count: ${r.status} ${JSON.stringify(r.body)}`);
  return Number(r.body.rows[0].n);
}

async function waitForChangeLog(platform: RunningPlatform, n: number) {
  const deadline = Date.now() + 600_000;
  while ((await changeLogCount(platform)) < n) {
    if (Date.now() > deadline) throw new Error(`the change log did not reach ${n} changes of ${TABLE}`);
    await sleep(100);
  }
}

/** Creates a webhook destination to the endpoint; its id and the signing secret the create answered (once). */
/** A filter expression every change passes (a delete's row holds the key) and a json-e template, as a user would write. */
const RENDERED = {
  expression: 'id > 0',
  body: { id: { $eval: 'id' }, text: 'Order ${row.id}: ${op}', amount: { $if: "'amount' in row", then: { $eval: 'row.amount' }, else: null } },
};

async function createDestination(platform: RunningPlatform, url: string, name: string, batchSize: number, startFrom: string, rendered = false) {
  const res = await platform.api('POST', '/api/destinations', {
    name,
    type: 'webhook',
    url,
    method: 'POST',
    filters: { tables: [TABLE], ...(rendered ? { expression: RENDERED.expression } : {}) },
    ...(rendered ? { body: RENDERED.body } : {}),
    batch_size: batchSize,
    timeout_ms: 10_000,
    enabled: true,
    start_from: startFrom,
  });
  if (res.status !== 201) throw new Error(`create destination ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  const secret = res.body.signing_secret as string | undefined;
  if (!secret?.startsWith('whsec_')) throw new Error(`the create answer shows no whsec_ signing secret: ${JSON.stringify(res.body)}`);
  return { id: res.body.id as string, secret };
}

/** One destination on its own path of the endpoint; answers 200 and notes arrivals. */
function route(endpoint: RecordingEndpoint, arrivals: Map<string, Arrivals>, name: string): { url: string; arrivals: Arrivals } {
  const a = new Arrivals();
  arrivals.set(`/${name}`, a);
  return { url: `${endpoint.url}/${name}`, arrivals: a };
}

async function backlogPhase(platform: RunningPlatform, endpoint: RecordingEndpoint, arrivals: Map<string, Arrivals>, name: string, batchSize: number, from: string, n: number, rendered = false) {
  const { url, arrivals: a } = route(endpoint, arrivals, name);
  const created = performance.timeOrigin + performance.now();
  const d = await createDestination(platform, url, name, batchSize, from, rendered);
  a.secret = d.secret;
  await a.waitFor(n, 1_800_000, name);
  const del = await platform.api('DELETE', `/api/destinations/${d.id}`);
  if (del.status >= 300) {
    await sleep(1000); // the platform's log of it, written asynchronously
    throw new Error(`delete destination ${name}: ${del.status} ${JSON.stringify(del.body)}\n${platform.output().slice(-6000)}`);
  }
  const total = (a.lastAt - created) / 1000;
  const steady = (a.lastAt - a.firstAt) / 1000;
  return {
    changes: a.first.size,
    requests: a.requests,
    duplicates: a.duplicates,
    seconds_create_to_last: Number(total.toFixed(2)),
    seconds_first_to_last: Number(steady.toFixed(2)),
    deliveries_per_s: Math.round(a.first.size / total),
    deliveries_per_s_steady: Math.round(a.first.size / Math.max(steady, 0.001)),
    requests_per_s: Math.round(a.requests / total),
  };
}

async function main(parts: BenchParts) {
  const { url: pgUrl, db } = await parts.postgres();
  await createOrders(db, ROWS);
  const endpoint = await RecordingEndpoint.start();
  parts.onClose(() => endpoint.stop());
  const arrivals = new Map<string, Arrivals>();
  endpoint.respond = (req, res: http.ServerResponse) => {
    const a = arrivals.get(req.path);
    if (a) a.take(req);
    endpoint.requests.length = 0; // the arrivals keep what the bench needs
    res.writeHead(a ? 200 : 404, { 'content-type': 'application/json' });
    res.end(a ? '{"ok":true}' : '{"error":"no such destination path"}');
  };

  // The endpoint is on 127.0.0.1: allowed by the setting a self-hosted user would set for an internal service.
  const platform = await parts.platform('bench-destinations', { TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1' });
  const source = await createPostgresSource(platform, pgUrl, 'bench', [{ name: 'orders', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }]);
  const sourceId = source.id;
  while ((await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc?.status !== 'Streaming') await sleep(200);
  await waitForMaxId(platform, TABLE, ROWS);
  log(`snapshot of ${ROWS.toLocaleString('en-US')} rows done, streaming`);

  // 1 + 2: one backlog, replayed by two destinations in turn.
  const before = await changeLogCount(platform);
  await sleep(1100); // what landed before (the snapshot) is clearly older than `from`; the backlog all lands after it
  const from = new Date().toISOString();
  const work = new Workload(ROWS);
  const txns = Math.ceil(DELIVERIES / PER_TXN);
  for (let i = 0; i < txns; i++) await db.query(work.txn().sql);
  const n = txns * PER_TXN;
  await waitForChangeLog(platform, before + n);
  log(`backlog: ${n.toLocaleString('en-US')} changes in the change log`);
  const single = await backlogPhase(platform, endpoint, arrivals, 'one-by-one', 1, from, n);
  log(`one by one: ${single.deliveries_per_s} deliveries/s (${single.seconds_create_to_last} s)`);
  const batched = await backlogPhase(platform, endpoint, arrivals, 'batched', BATCH_SIZE, from, n);
  log(`batched (${BATCH_SIZE}): ${batched.deliveries_per_s} deliveries/s (${batched.seconds_create_to_last} s, ${batched.requests} requests)`);
  const filtered = await backlogPhase(platform, endpoint, arrivals, 'batched-filtered', BATCH_SIZE, from, n, true);
  log(`batched (${BATCH_SIZE}) with a filter expression and a template: ${filtered.deliveries_per_s} deliveries/s (${filtered.seconds_create_to_last} s)`);

  // 3: a paced writer; each change's commit time against its first arrival.
  const { url: lagUrl, arrivals: lag } = route(endpoint, arrivals, 'latency');
  const d = await createDestination(platform, lagUrl, 'latency', LAG_BATCH_SIZE, 'now');
  lag.secret = d.secret;
  await sleep(2000); // the delivery is running and at the log's end before the clock starts
  const committedAt: number[] = [];
  const deletedBy = new Map<string, number>();
  const perSecond = LAG_RATE / PER_TXN;
  const start = performance.now();
  const total = Math.round(LAG_SECONDS * perSecond);
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    const t = work.txn(`lag${i}`);
    await db.query(t.sql);
    committedAt.push(nowMs());
    for (let k = 0; k < 10; k++) deletedBy.set(String(t.firstDeleted + k), i);
  }
  const achieved = (total * PER_TXN) / ((performance.now() - start) / 1000);
  await lag.waitFor(total * PER_TXN, 600_000, 'latency');
  const lags: number[] = [];
  for (const { at, change } of lag.first.values()) {
    const txn = change.op === 'delete' ? deletedBy.get(String(change.key.id)) : Number(String(change.row?.status ?? '').replace(/^lag/, ''));
    if (txn === undefined || !Number.isInteger(txn) || committedAt[txn] === undefined) throw new Error(`a delivered change of no known transaction: ${JSON.stringify(change)}`);
    lags.push(at - committedAt[txn]);
  }
  await platform.api('DELETE', `/api/destinations/${d.id}`);

  const result = {
    backlog_changes: n,
    one_by_one: single,
    batched: { batch_size: BATCH_SIZE, ...batched },
    batched_with_expression_and_template: { batch_size: BATCH_SIZE, ...RENDERED, ...filtered },
    latency: {
      rate_changes_per_s: Math.round(achieved),
      seconds: LAG_SECONDS,
      batch_size: LAG_BATCH_SIZE,
      changes: lags.length,
      duplicates: lag.duplicates,
      requests: lag.requests,
      p50_ms: Math.round(pct(lags, 50)),
      p99_ms: Math.round(pct(lags, 99)),
      max_ms: Math.round(Math.max(...lags)),
    },
    targets: { batched_at_least_2000_per_s: batched.deliveries_per_s >= 2000, p99_at_most_2s: pct(lags, 99) <= 2000 },
  };
  const f = (x: number) => x.toLocaleString('en-US');
  process.stdout.write(
    [
      `Destinations benchmark — Postgres CDC (orders, ${f(ROWS)} initial rows; 60% updates / 30% inserts / 10% deletes) → webhook → a local HTTP endpoint answering 200`,
      `  one by one (batch_size 1), a backlog of ${f(n)} changes: ${f(single.deliveries_per_s)} deliveries/s create → last (${single.seconds_create_to_last} s); ${f(single.deliveries_per_s_steady)}/s first → last; ${single.duplicates} duplicates`,
      `  batched (batch_size ${BATCH_SIZE}), the same backlog:        ${f(batched.deliveries_per_s)} deliveries/s create → last (${batched.seconds_create_to_last} s, ${f(batched.requests)} requests, ${f(batched.requests_per_s)} requests/s); ${f(batched.deliveries_per_s_steady)}/s first → last   (target ≥ 2,000)`,
      `  batched, with the filter expression \`${RENDERED.expression}\` evaluated by the engine and a json-e template: ${f(filtered.deliveries_per_s)} deliveries/s create → last (${filtered.seconds_create_to_last} s); ${f(filtered.deliveries_per_s_steady)}/s first → last`,
      `  commit → delivered at ${f(result.latency.rate_changes_per_s)} changes/s for ${LAG_SECONDS} s (batch_size ${LAG_BATCH_SIZE}): p50 ${result.latency.p50_ms} ms, p99 ${result.latency.p99_ms} ms, max ${result.latency.max_ms} ms   (target p99 ≤ 2 s; ${f(lags.length)} changes, ${lag.duplicates} duplicates)`,
      JSON.stringify(result),
    ].join('\n') + '\n',
  );
}

BenchParts.run(log, main);
