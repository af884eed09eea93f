import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import type { DevServer } from '../temporal/dev-server';
import { syncScheduleId } from '../temporal/ids';
import { DEFAULT_QUERY_LIMITS, queryUserProfile } from '../warehouse/query-limits';
import { asSourceUser, eventually, expectTablesEqual, grantCdc } from './support/cdc';
import { startClickHouseHttp, type RunningClickHouseHttp } from './support/clickhouse-http';
import { testEnv } from './support/env';
import { freePort } from './support/ports';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startTestTemporal } from './support/temporal-dev';

/**
 * The scaled deployment, as docker-compose.yml runs it: one `api` process and two `worker` processes, each with
 * a data dir of its own, sharing a Postgres catalog (DATABASE_URL), a Temporal server started apart
 * (TEMPORAL_ADDRESS) and ClickHouse over HTTP (CLICKHOUSE_URL: the test server in front of chDB,
 * test/support/clickhouse-http.ts), in a database of its own (CLICKHOUSE_DATABASE) with users' queries as a
 * readonly server user (CLICKHOUSE_QUERY_USER). Requests that name no database run in one that has no tables.
 */
const ROWS = 40_000;
/** TRIBUTARY_TEST_PROGRESS=file: each step as it happens (jest shows nothing until the file ends). */
const progress = (m: string) => process.env.TRIBUTARY_TEST_PROGRESS && fs.appendFileSync(process.env.TRIBUTARY_TEST_PROGRESS, `${new Date().toISOString()} ${m}\n`);
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
    TRIBUTARY_CDC_FLUSH_MS: '200',
    TRIBUTARY_CDC_STREAM_MS: '4000',
    TRIBUTARY_CDC_LAG_CHECK_MS: '1000',
    TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS: '6000',
    LOG_LEVEL: 'debug',
  });
  const startApi = async () => (api = await startPlatform({ role: 'api', dataDir: apiDir, token, env: env() }));
  // Two workers on one host: each serves its metrics on a port of its own (the default, 9464, fits one).
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
    [temporal, clickhouse] = await Promise.all([
      startTestTemporal(temporalDir),
      startClickHouseHttp({
        dataDir: chDir,
        defaultDatabase: 'nothing_here',
        users: { tributary: { password: 'ch-secret' }, reader: { password: 'reader-secret', settings: queryUserProfile(DEFAULT_QUERY_LIMITS) } },
      }),
    ]);
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
    await db.admin.query(`UPDATE orders SET note = note || ' v2' WHERE id % 3 = 0`);
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
    expect(batchesOf(other, 'scaled_orders')).toBeGreaterThan(otherBefore);
    await orders();
    // Back in the background: the next test needs it only by its end.
    restarting = startWorker(loader).then((w) => void (workers[loader] = w));
  });

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
    const ddl = own.filter((s) => /^\s*(CREATE|ALTER|DROP|RENAME|EXCHANGE|INSERT|TRUNCATE)\b/i.test(s.query));
    expect(ddl.length).toBeGreaterThan(5);
    for (const s of ddl) expect({ query: s.query.slice(0, 200), names: /`tenant_scaled`/.test(s.query) }).toEqual({ query: s.query.slice(0, 200), names: true });
    const tables = await query(api, "SELECT count() AS n FROM system.tables WHERE database = 'nothing_here'");
    expect(Number(tables[0].n)).toBe(0);
  });
});
