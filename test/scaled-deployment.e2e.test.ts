import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import Stripe from 'stripe';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import type { DevServer } from '../temporal/dev-server';
import { syncScheduleId } from '../temporal/ids';
import { DEFAULT_QUERY_LIMITS, queryUserProfile } from '../warehouse/query-limits';
import { asSourceUser, eventually, expectTablesEqual, grantCdc } from './support/cdc';
import { startClickHouseHttp, type RunningClickHouseHttp } from './support/clickhouse-http';
import { testEnv } from './support/env';
import { freePort } from './support/ports';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { putObject, type S3Target } from './support/s3-objects';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startStripeFake, type StripeFake } from './support/stripe-fake';
import { startTestTemporal } from './support/temporal-dev';
import { ensureVersitygw, startVersitygw, type Versitygw } from './support/versitygw';

/**
 * The scaled deployment, as docker-compose.yml runs it: one `api` process and two `worker` processes, each with
 * a data dir of its own, sharing a Postgres catalog (DATABASE_URL), a Temporal server started apart
 * (TEMPORAL_ADDRESS) and ClickHouse over HTTP (CLICKHOUSE_URL: the test server in front of chDB,
 * test/support/clickhouse-http.ts), in a database of its own (CLICKHOUSE_DATABASE) with users' queries as a
 * readonly server user (CLICKHOUSE_QUERY_USER). Requests that name no database run in one that has no tables.
 * The sources: a Postgres database (full refresh, incremental, CDC), the Stripe fake (test/support/stripe-fake.ts) for
 * a webhook table fed signed events through the API, and a real S3 server (versitygw) for a Files source with a
 * linked and an imported table.
 */
const ROWS = 40_000;
/** TRIBUTARY_TEST_PROGRESS=file: each step as it happens (jest shows nothing until the file ends). */
const progress = (m: string) => process.env.TRIBUTARY_TEST_PROGRESS && fs.appendFileSync(process.env.TRIBUTARY_TEST_PROGRESS, `${new Date().toISOString()} ${m}\n`);
const S3_ACCESS = 'scaled-access';
const S3_SECRET = 'scaled-s3-secret-canary-4e1d';
const BUCKET = 'lake';
const HOUR_AGO = Math.floor(Date.now() / 1000) - 3600;
/** `n` rows of a CSV file whose ids start at `from`, each tagged with `tag`. */
const csv = (from: number, n: number, tag: string) => 'id,tag,amount\n' + Array.from({ length: n }, (_, i) => `${from + i},${tag},${(from + i) % 7}.5`).join('\n') + '\n';
const COLS = [
  { pg: 'id', ch: 'id' },
  { pg: 'note', ch: 'note' },
  { pg: '(amount * 100)::bigint', ch: 'toInt64(amount * 100)' },
];

describe('scaled deployment: api + two workers, Postgres catalog, Temporal and ClickHouse over the network', () => {
  let db: SourceDb;
  let temporal: DevServer;
  let clickhouse: RunningClickHouseHttp;
  let catalogUrl: string;
  let catalogDb: string;
  const dirs: string[] = [];
  let api: RunningPlatform;
  let workers: RunningPlatform[] = [];
  let apiDir: string;
  let workerDirs: string[];
  let sourceId: string;
  let restarting: Promise<void> | undefined;
  let ids: Record<string, string>;
  let stripe: StripeFake;
  let gw: Versitygw;
  let s3: S3Target;
  const token = 'scaled-token-' + Math.random().toString(36).slice(2);
  const secretKey = 'cd'.repeat(32);

  const env = () => ({
    TEMPORAL_ADDRESS: temporal.address,
    CLICKHOUSE_URL: clickhouse.url,
    CLICKHOUSE_USER: 'tributary',
    CLICKHOUSE_PASSWORD: 'ch-secret',
    CLICKHOUSE_DATABASE: 'tenant_scaled',
    CLICKHOUSE_QUERY_USER: 'reader',
    CLICKHOUSE_QUERY_PASSWORD: 'reader-secret',
    DATABASE_URL: catalogUrl,
    TRIBUTARY_SECRET_KEY: secretKey,
    TRIBUTARY_BATCH_BYTES: String(16 * 1024),
    TRIBUTARY_HEARTBEAT_THROTTLE_MS: '100',
    // A killed worker's load is taken for dead after 4 s, and retried on the other.
    TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '4000',
    // Likewise a killed worker's CDC stream (default 20 s): the restarts below wait for the mirror to come back.
    TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS: '5000',
    TRIBUTARY_CDC_FLUSH_MS: '200',
    TRIBUTARY_CDC_STREAM_MS: '4000',
    TRIBUTARY_CDC_LAG_CHECK_MS: '1000',
    TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS: '6000',
    TRIBUTARY_STRIPE_API_URL: stripe.url,
    TRIBUTARY_STRIPE_TEST_RPS: '100',
    TRIBUTARY_STRIPE_SETTLE_SECONDS: '1',
    TRIBUTARY_FILES_ALLOW_PRIVATE: '1', // versitygw listens on 127.0.0.1
    LOG_LEVEL: 'debug',
  });
  const startApi = async () => (api = await startPlatform({ role: 'api', dataDir: apiDir, token, env: env() }));
  // Two workers on one host, as compose runs them (TRIBUTARY_METRICS_PORT set): each on a port of its own, since a
  // shared one would fit only the first.
  const startWorker = async (i: number) => startPlatform({ role: 'worker', dataDir: workerDirs[i], token, env: { ...env(), TRIBUTARY_METRICS_PORT: String(await freePort()) } });
  const orders = (timeoutMs?: number) => expectTablesEqual(db, api, 'orders', 'scaled_orders', COLS, timeoutMs);
  const events = (timeoutMs?: number) => expectTablesEqual(db, api, 'events', 'scaled_events', COLS, timeoutMs);
  const items = (timeoutMs?: number) => expectTablesEqual(db, api, 'items', 'scaled_items', COLS, timeoutMs);
  const finished = async (schemaId: string) => (await api.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results.filter((j: { status: string }) => j.status !== 'Running').length;
  const batchesOf = (p: RunningPlatform, table: string) => [...p.output().matchAll(new RegExp(`"table":"${table}","batch":(\\d+)`, 'g'))].length;

  beforeAll(async () => {
    db = await createSourceDb('scaled');
    await grantCdc(db);
    await asSourceUser(
      db,
      `CREATE TABLE orders (id bigint PRIMARY KEY, note text, amount numeric(12,2));
       INSERT INTO orders SELECT g, 'order ' || g || ' ' || repeat('x', 60), g % 1000 + 0.5 FROM generate_series(1, ${ROWS}) g;
       CREATE TABLE events (id bigint PRIMARY KEY, note text, amount numeric(12,2), updated_at timestamptz NOT NULL);
       INSERT INTO events SELECT g, 'event ' || g, g, TIMESTAMPTZ '2025-01-01 00:00:00+00' + g * INTERVAL '1 second' FROM generate_series(1, 3000) g;
       CREATE TABLE items (id bigint PRIMARY KEY, note text, amount numeric(12,2));
       INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 1500) g;`,
    );
    const base = new URL(testEnv().databaseUrl);
    catalogDb = `tributary_catalog_${Math.random().toString(36).slice(2, 8)}`;
    const root = new pg.Client({ connectionString: base.toString() });
    await root.connect();
    await root.query(`CREATE DATABASE ${catalogDb}`);
    await root.end();
    base.pathname = `/${catalogDb}`;
    catalogUrl = base.toString();

    progress('source and catalog databases ready');
    const temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    const chDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-ch-'));
    dirs.push(temporalDir, chDir);
    [temporal, clickhouse, stripe, gw] = await Promise.all([
      startTestTemporal(temporalDir),
      startClickHouseHttp({
        dataDir: chDir,
        defaultDatabase: 'nothing_here',
        users: { tributary: { password: 'ch-secret' }, reader: { password: 'reader-secret', settings: queryUserProfile(DEFAULT_QUERY_LIMITS) } },
      }),
      startStripeFake(),
      ensureVersitygw().then((bin) => startVersitygw(bin, { access: S3_ACCESS, secret: S3_SECRET, buckets: [BUCKET] })),
    ]);
    s3 = { endpoint: gw.endpoint, access: S3_ACCESS, secret: S3_SECRET };
    dirs.push(gw.dir);
    apiDir = makeDataDir('scaled-api');
    workerDirs = [makeDataDir('scaled-w1'), makeDataDir('scaled-w2')];
    dirs.push(apiDir, ...workerDirs);
    progress('temporal and clickhouse up');
    // The API first: it migrates the catalog; the workers then start together.
    await startApi();
    progress('api up');
    workers = await Promise.all([startWorker(0), startWorker(1)]);
    progress('workers up');
  }, 240_000);

  beforeEach(() => progress(`test: ${expect.getState().currentTestName}`));

  afterAll(async () => {
    progress('afterAll');
    if (process.env.TRIBUTARY_TEST_DUMP) fs.writeFileSync(process.env.TRIBUTARY_TEST_DUMP, [api, ...workers].map((p) => p?.output() ?? '').join('\n=====\n'));
    await Promise.all([api?.kill(), ...workers.map((w) => w?.kill())]);
    await temporal?.stop();
    await clickhouse?.stop();
    await stripe?.stop();
    await gw?.stop();
    await db?.drop();
    const root = new pg.Client({ connectionString: testEnv().databaseUrl });
    await root.connect();
    await root.query(`DROP DATABASE IF EXISTS ${catalogDb} WITH (FORCE)`);
    await root.end();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('/health reports every part remote', async () => {
    const health = await api.api('GET', '/health');
    expect(health.status).toBe(200);
    expect(JSON.stringify(health.body)).toMatch(/remote/);
    expect(JSON.stringify(health.body)).not.toMatch(/embedded/);
  });

  test('setup flow: wizard, db-schema, create; full refresh, incremental and CDC land equal to the source on both workers', async () => {
    expect(Object.keys((await api.api('GET', '/api/source-types')).body)).toContain('Postgres');
    const listed = await api.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db) });
    expect(listed.status).toBe(200);
    expect(listed.body.map((t: { table: string }) => t.table).sort()).toEqual(['events', 'items', 'orders']);
    const res = await api.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'scaled',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' },
          { name: 'events', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime', sync_frequency: '24hour' },
          { name: 'items', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] },
        ],
      },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    ids = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    await waitForJobs(api, ids.orders, 1, 120_000);
    await waitForJobs(api, ids.events, 1, 120_000);
    await orders();
    await events();
    await items(90_000);
    // Users' queries go as the server's readonly user, in the tenant's database.
    const asReader = clickhouse.statements().filter((s) => s.user === 'reader');
    expect(asReader.length).toBeGreaterThan(0);
    expect(new Set(asReader.map((s) => s.database))).toEqual(new Set(['tenant_scaled']));
  });

  test('incremental: changed and new rows arrive on the next run', async () => {
    await db.admin.query(`UPDATE events SET note = 'changed', amount = amount + 1, updated_at = now() WHERE id % 100 = 0;
                          INSERT INTO events SELECT g, 'late ' || g, g, now() FROM generate_series(3001, 3500) g`);
    const before = await finished(ids.events);
    expect((await api.api('POST', `/api/schemas/${ids.events}/sync`)).status).toBe(202);
    expect((await waitForJobs(api, ids.events, before + 1, 120_000)).status).toBe('Completed');
    await events();
  });

  test('CDC: inserts, updates and deletes stream through', async () => {
    await db.admin.query(`INSERT INTO items SELECT g, 'new ' || g, g FROM generate_series(1501, 1800) g;
                          UPDATE items SET note = 'upd' WHERE id % 7 = 0; DELETE FROM items WHERE id % 11 = 0`);
    await items(60_000);
  });

  test('Stripe webhook table: a polling first load, then signed events posted to the API land equal to what was sent; a forged one changes nothing', async () => {
    for (let i = 0; i < 5; i++) stripe.create('customer', { name: `Existing ${i}`, email: `existing${i}@example.com` }, { created: HOUR_AGO + i });
    const schemas = STRIPE_TABLES.map((t) => (t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'webhook', sync_frequency: '24hour' } : { name: t.name, should_sync: false }));
    const res = await api.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'hooks', payload: { stripe_secret_key: stripe.key, schemas } });
    expect(res.status).toBe(201);
    const hooksId = res.body.id;
    const customerSchema = res.body.schemas.find((s: { name: string }) => s.name === 'Customer').id;
    expect((await waitForJobs(api, customerSchema, 1, 120_000)).status).toBe('Completed');
    const reg = await api.api('POST', `/api/sources/${hooksId}/webhook`);
    expect(reg.body).toMatchObject({ success: true, error: null });
    const secret = stripe.webhookSecrets.get([...stripe.webhookEndpoints.keys()][0])!;
    const customers = async () => Object.fromEntries((await query(api, 'SELECT id, name, email FROM hooks_customer FINAL')).map((r) => [r.id, { name: r.name, email: r.email }]));
    const sent = () => Object.fromEntries(stripe.objects('customer').map((c) => [c.id, { name: c.name ?? null, email: c.email ?? null }]));
    expect(await customers()).toEqual(sent());

    // Signed as Stripe signs, posted to the API process; the worker that takes the webhook workflow applies them.
    const deliver = async (event: Record<string, unknown>, signingSecret = secret) => {
      const payload = JSON.stringify(event);
      const r = await fetch(`${api.url}/webhooks/stripe/${hooksId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: signingSecret }) },
        body: payload,
      });
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    const t = Math.floor(Date.now() / 1000);
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      stripe.create('customer', { name: `New ${i}`, email: `new${i}@example.com` }, { created: t + i });
      events.push(stripe.events().at(-1)!);
    }
    const [first, second] = stripe.objects('customer').filter((c) => String(c.name).startsWith('Existing'));
    stripe.update('customer', first.id, { name: 'Existing, renamed' }, { at: t + 5 });
    events.push(stripe.events().at(-1)!);
    stripe.remove('customer', second.id, { at: t + 6 });
    events.push(stripe.events().at(-1)!);
    const forged = await deliver({ ...events[0], id: 'evt_forged' }, 'whsec_not_the_secret');
    expect([forged.status, forged.body.error]).toEqual([400, 'invalid_signature']);
    for (const e of events) expect(await deliver(e)).toEqual({ status: 200, body: { received: true, duplicate: false } });
    await eventually(async () => expect(await customers()).toEqual(sent()), 60_000);
    const raw = (await query(api, 'SELECT id FROM hooks_webhook_events FINAL ORDER BY id')).map((r) => r.id);
    expect([...raw].sort()).toEqual(events.map((e) => e.id).sort());
  });

  test('Files: a linked table read through the API on every query, and an imported table a worker loads, each equal to the files', async () => {
    await putObject(s3, BUCKET, 'live/part-1.csv', csv(1, 30, 'l1'));
    await putObject(s3, BUCKET, 'live/part-2.csv', csv(100, 20, 'l2'));
    await putObject(s3, BUCKET, 'copied/part-1.csv', csv(1, 40, 'c1'));
    await putObject(s3, BUCKET, 'copied/part-2.csv', csv(1000, 25, 'c2'));
    const res = await api.api('POST', '/api/sources', {
      source_type: 'Files',
      prefix: 'lake',
      payload: {
        provider: 's3_compatible',
        endpoint: gw.endpoint,
        bucket: BUCKET,
        access_key_id: S3_ACCESS,
        secret_access_key: S3_SECRET,
        tables: [
          { name: 'live', path: 'live/*.csv', format: 'csv_with_header' },
          { name: 'copied', path: 'copied/*.csv', format: 'csv_with_header' },
        ],
        schemas: [
          { name: 'live', should_sync: true, sync_type: 'linked' },
          { name: 'copied', should_sync: true, sync_type: 'append', sync_frequency: '24hour' },
        ],
      },
    });
    expect([res.status, res.status === 201 ? '' : JSON.stringify(res.body)]).toEqual([201, '']);
    const copied = res.body.schemas.find((s: { name: string }) => s.name === 'copied').id;
    const rowsOf = (text: string) => text.trim().split('\n').slice(1).map((l) => l.split(',')).map(([id, tag]) => ({ id: Number(id), tag }));
    const expected = (...files: string[]) => files.flatMap(rowsOf).sort((a, b) => a.id - b.id || a.tag.localeCompare(b.tag));
    const read = async (table: string) => (await query(api, `SELECT toInt64(id) AS id, tag FROM ${table} ORDER BY id, tag`)).map((r) => ({ id: Number(r.id), tag: r.tag }));

    // Linked: the engine reads the bucket at each query, so a file uploaded now is in the next answer.
    expect(await read('lake_live')).toEqual(expected(csv(1, 30, 'l1'), csv(100, 20, 'l2')));
    await putObject(s3, BUCKET, 'live/part-3.csv', csv(500, 5, 'l3'));
    expect(await read('lake_live')).toEqual(expected(csv(1, 30, 'l1'), csv(100, 20, 'l2'), csv(500, 5, 'l3')));

    // Imported: copied by the engine on a worker's run; a new file arrives with the next run.
    expect((await waitForJobs(api, copied, 1, 120_000)).status).toBe('Completed');
    expect(await read('lake_copied')).toEqual(expected(csv(1, 40, 'c1'), csv(1000, 25, 'c2')));
    await putObject(s3, BUCKET, 'copied/part-3.csv', csv(2000, 10, 'c3'));
    const before = await finished(copied);
    expect((await api.api('POST', `/api/schemas/${copied}/sync`)).status).toBe(202);
    const second = await waitForJobs(api, copied, before + 1, 120_000);
    expect([second.status, Number(second.rows_synced)]).toEqual(['Completed', 10]);
    expect(await read('lake_copied')).toEqual(expected(csv(1, 40, 'c1'), csv(1000, 25, 'c2'), csv(2000, 10, 'c3')));
    // The keys reach the server only inside its named collection: no statement logged by the test server holds them
    // but the collection's own (CREATE/ALTER NAMED COLLECTION), and no process's log does.
    const withSecret = clickhouse.statements().filter((s) => s.query.includes(S3_SECRET));
    expect(withSecret.filter((s) => !/^\s*(CREATE|ALTER) NAMED COLLECTION\b/i.test(s.query))).toEqual([]);
    for (const p of [api, ...workers]) expect(p.output()).not.toContain(S3_SECRET);
  });

  test('both workers took work', async () => {
    // Every run's batches are logged by the worker that loaded them.
    // Temporal hands a task to whichever worker polls first, so a few runs may all land on one: run the events
    // table again (at most 8 times) until each worker has loaded something.
    const loads = () => workers.map((w) => (w.output().match(/"batch loaded"|'batch loaded'|batch loaded/g) ?? []).length);
    for (let i = 0; i < 8 && !loads().every((n) => n > 0); i++) {
      const before = await finished(ids.events);
      expect((await api.api('POST', `/api/schemas/${ids.events}/sync`)).status).toBe(202);
      expect((await waitForJobs(api, ids.events, before + 1, 120_000)).status).toBe('Completed');
    }
    expect(loads().every((n) => n > 0)).toBe(true);
  });

  test('a worker SIGKILLed mid-load: the other finishes the run, the table equals the source', async () => {
    // The kill lands at the loader's first logged batch; on a quiet machine its log can arrive after the whole load
    // (40k rows in ~1 s), and then the other worker only publishes. Such a round proves nothing about taking a load
    // over, so it runs again (with the loader restarted) until the other worker has loaded batches of the run.
    for (let round = 1; ; round++) {
      await db.admin.query(`UPDATE orders SET note = note || ' v${round + 1}' WHERE id % 3 = 0`);
      const before = await finished(ids.orders);
      const seen = workers.map((w) => batchesOf(w, 'scaled_orders'));
      expect((await api.api('POST', `/api/schemas/${ids.orders}/sync`)).status).toBe(202);
      // The worker that has the load: the one logging new batches of it.
      const loader = await eventually(async () => {
        const i = workers.findIndex((w, k) => batchesOf(w, 'scaled_orders') - seen[k] >= 1);
        if (i < 0) throw new Error('no worker has loaded a batch of scaled_orders yet');
        return i;
      }, 120_000);
      await workers[loader].kill();
      const other = workers[1 - loader];
      const otherBefore = batchesOf(other, 'scaled_orders');
      const job = await waitForJobs(api, ids.orders, before + 1, 180_000);
      expect(job.status).toBe('Completed');
      await orders();
      const tookOver = batchesOf(other, 'scaled_orders') > otherBefore;
      progress(`kill round ${round}: the other worker ${tookOver ? 'loaded the rest' : 'only published (the load had ended before the kill)'}`);
      if (tookOver || round === 5) {
        expect(tookOver).toBe(true);
        // Back in the background: the next test needs it only by its end.
        restarting = startWorker(loader).then((w) => void (workers[loader] = w));
        return;
      }
      workers[loader] = await startWorker(loader);
    }
  }, 600_000);

  test('the API restarted while a sync runs: the run finishes, CDC keeps streaming', async () => {
    await db.admin.query(`UPDATE orders SET amount = amount + 1 WHERE id % 5 = 0`);
    const before = await finished(ids.orders);
    expect((await api.api('POST', `/api/schemas/${ids.orders}/sync`)).status).toBe(202);
    await api.kill();
    await db.admin.query(`INSERT INTO items SELECT g, 'while api down ' || g, g FROM generate_series(1801, 1900) g`);
    await startApi();
    expect((await waitForJobs(api, ids.orders, before + 1, 180_000)).status).toBe('Completed');
    await orders();
    await items(60_000);
    await restarting;
  });

  test('api and both workers killed and restarted together: schedules (one lost meanwhile) and the CDC mirror come back', async () => {
    await Promise.all([api.kill(), ...workers.map((w) => w.kill())]);
    // Temporal loses one schedule while everything is down; the API's start puts it back from the catalog.
    const temporalClient = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    try {
      await temporalClient.schedule.getHandle(syncScheduleId(ids.events)).delete();
      await db.admin.query(`INSERT INTO items SELECT g, 'while all down ' || g, g FROM generate_series(1901, 2000) g; UPDATE items SET amount = 0 WHERE id < 50`);
      await startApi();
      workers = await Promise.all([startWorker(0), startWorker(1)]);
      await eventually(async () => {
        // (CDC tables have no schedule: their changes stream through the source's mirror.)
        for (const name of ['orders', 'events']) await temporalClient.schedule.getHandle(syncScheduleId(ids[name])).describe();
      }, 30_000);
    } finally {
      await temporalClient.connection.close();
    }
    await items(90_000);
    await db.admin.query(`DELETE FROM items WHERE id > 1950`);
    await items(60_000);
  });

  test('multi-tenant: every statement named its database; none ran in the default one', async () => {
    const statements = clickhouse.statements();
    expect(statements.length).toBeGreaterThan(50);
    // Tributary's own statements go without a `database` parameter: a table they did not qualify would be looked
    // up in `nothing_here` and fail (UNKNOWN_TABLE); none did, and nothing was created there.
    const own = statements.filter((s) => s.user === 'tributary');
    expect(own.filter((s) => s.error === 60 || s.error === 81)).toEqual([]);
    // Named collections (a Files source's keys) are the server's, in no database: each is named by its source's id.
    const collections = own.filter((s) => /^\s*(CREATE|ALTER|DROP) NAMED COLLECTION\b/i.test(s.query));
    expect(collections.length).toBeGreaterThan(0);
    for (const s of collections) expect(s.query).toMatch(/NAMED COLLECTION (IF (NOT )?EXISTS )?`?tributary_files_/);
    const ddl = own.filter((s) => /^\s*(CREATE|ALTER|DROP|RENAME|EXCHANGE|INSERT|TRUNCATE)\b/i.test(s.query) && !collections.includes(s));
    expect(ddl.length).toBeGreaterThan(5);
    // The tenant's database, or its own database of linked tables (`_tributary_linked_tenant_scaled`).
    const names = (q: string) => /`(_tributary_linked_)?tenant_scaled`/.test(q);
    for (const s of ddl) expect({ query: s.query.slice(0, 200), names: names(s.query) }).toEqual({ query: s.query.slice(0, 200), names: true });
    const tables = await query(api, "SELECT count() AS n FROM system.tables WHERE database = 'nothing_here'");
    expect(Number(tables[0].n)).toBe(0);
  });
});
