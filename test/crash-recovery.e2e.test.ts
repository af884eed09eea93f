import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../platform/logger';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { syncScheduleId } from '../temporal/ids';
import { testEnv } from './support/env';
import { freePort } from './support/ports';
import { isRunning, makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * SIGKILL the worker process in the middle of a multi-batch run, start a new one: Temporal retries
 * the activity on it and the warehouse ends equal to the source — no row lost, none duplicated.
 * Temporal runs apart from the killed process (as in production), so only the worker dies.
 * The kill point is deterministic: after the N-th batch the worker logs as loaded (incremental and append:
 * and at least 300 ms into the load, so heartbeats have reached Temporal).
 */
const ROWS = 60_000;
const BATCH_BYTES = 64 * 1024; // ~600 rows a batch: a run is ~100 batches
const APPENDED = 200_000;

describe('crash recovery: SIGKILL of the worker mid-run', () => {
  let db: SourceDb;
  let temporal: DevServer;
  let temporalDir: string;
  let temporalPorts: { port: number; uiPort: number };
  const startTemporal = () =>
    startDevServer({ cliPath: testEnv().temporalCliPath, dataDir: temporalDir, ...temporalPorts, namespace: 'default', log: createLogger('warn') });
  let dataDir: string;
  let platform: RunningPlatform;
  let token: string;

  // Heartbeats reach Temporal every 100 ms (not every second), so a worker killed 300 ms into a load has sent several.
  const env = () => ({ TEMPORAL_ADDRESS: temporal.address, TRIBUTARY_BATCH_BYTES: String(BATCH_BYTES), TRIBUTARY_HEARTBEAT_THROTTLE_MS: '100',
    // A killed worker's load is taken for dead after 5 s rather than the 30 s default, so each kill costs seconds.
    TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '5000', LOG_LEVEL: 'debug' });

  /** Waits until the worker has logged `n` loaded batches of `table` in this process's life, then kills it. */
  async function killAfterBatch(table: string, n: number) {
    const deadline = Date.now() + 120_000;
    const pattern = new RegExp(`"table":"${table}","batch":(\\d+)`, 'g');
    for (;;) {
      const batches = [...platform.output().matchAll(pattern)].map((m) => Number(m[1]));
      if (batches.length >= n) break;
      if (Date.now() > deadline) throw new Error(`no ${n} batches of ${table} within 120 s:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await platform.kill();
    platform = await startPlatform({ dataDir, token, env: env() });
  }

  /**
   * Kills the worker once this process has loaded at least `n` batches of `table` over at least 300 ms: by then
   * several heartbeats (sent every 100 ms here) have reached Temporal, so the next worker has a position to
   * resume from. Polling Temporal for the heartbeat itself is too slow for loads this fast.
   */
  async function killMidRun(table: string, n: number): Promise<void> {
    const deadline = Date.now() + 120_000;
    const pattern = new RegExp(`"time":(\\d+),[^\\n]*"table":"${table}","batch":(\\d+)`, 'g');
    for (;;) {
      const seen = [...platform.output().matchAll(pattern)];
      if (seen.length >= n && Date.now() - Number(seen[0][1]) >= 300) break;
      if (Date.now() > deadline) throw new Error(`no ${n} batches of ${table} over 300 ms within 120 s:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await platform.kill();
    platform = await startPlatform({ dataDir, token, env: env() });
  }

  /**
   * Incremental and append: killed mid-run at each of `killPoints`. Each new worker picks the run up where the
   * heartbeats left it: its first batch continues the count (a restart from the catalog's cursor would load
   * batch 1 again).
   */
  async function triggerKillAndResume(schemaId: string, table: string, killPoints: number[]) {
    const expectedJobs = (await finishedJobs(schemaId)) + 1;
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    const firstBatch = () => Number(new RegExp(`"table":"${table}","batch":(\\d+)`).exec(platform.output())?.[1]);
    for (const n of killPoints) await killMidRun(table, n);
    const job = await waitForJobs(platform, schemaId, expectedJobs, 240_000);
    expect(job.status).toBe('Completed');
    expect(firstBatch()).toBeGreaterThan(1);
    return job;
  }

  /** "Sync now", then wait until this run has logged its `n`-th batch of `table`. */
  async function syncUntilBatch(schemaId: string, table: string, n: number) {
    const before = platform.output().length;
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    const deadline = Date.now() + 120_000;
    while (!new RegExp(`"table":"${table}","batch":${n}\\b`).test(platform.output().slice(before))) {
      if (Date.now() > deadline) throw new Error(`the run did not reach batch ${n} of ${table}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  const finishedJobs = async (schemaId: string) =>
    (await platform.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results.filter((j: { status: string }) => j.status !== 'Running').length;

  async function triggerAndKill(schemaId: string, table: string, killPoints: number[]) {
    const expectedJobs = (await finishedJobs(schemaId)) + 1;
    const res = await platform.api('POST', `/api/schemas/${schemaId}/sync`);
    expect(res.status).toBe(202);
    for (const n of killPoints) await killAfterBatch(table, n);
    const job = await waitForJobs(platform, schemaId, expectedJobs, 240_000);
    expect(job.status).toBe('Completed');
    return job;
  }

  /** Whole-table fingerprints on both sides: row count, sums, and a hash of every note in id order. */
  async function assertEqual(sourceTable: string, warehouseTable: string, final = true) {
    const src = (
      await db.admin.query(
        `SELECT count(*)::text AS n, sum(id)::text AS ids, sum(amount)::float8 AS amounts, md5(string_agg(note, ',' ORDER BY id)) AS notes FROM ${sourceTable}`,
      )
    ).rows[0];
    const wh = (
      await query(
        platform,
        `SELECT toString(count()) AS n, toString(sum(id)) AS ids, toFloat64(sum(amount)) AS amounts,
                lower(hex(MD5(arrayStringConcat(arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((id, note)))), ',')))) AS notes
           FROM ${warehouseTable} ${final ? 'FINAL' : ''}`,
      )
    )[0];
    expect({ ...wh, amounts: Number(wh.amounts) }).toEqual({ ...src, amounts: Number(src.amounts) });
  }

  beforeAll(async () => {
    db = await createSourceDb('crash');
    await db.admin.query(`
      CREATE TABLE orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2), note text);
      INSERT INTO orders SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 millisecond', g % 1000 + 0.25,
                                 'order ' || g || ' ' || repeat('x', 40) FROM generate_series(1, ${ROWS}) g;
      CREATE TABLE orders_log (LIKE orders);
      INSERT INTO orders_log SELECT * FROM orders;
      CREATE TABLE orders_inc (LIKE orders INCLUDING ALL);
      INSERT INTO orders_inc SELECT * FROM orders;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporalPorts = { port: await freePort(), uiPort: await freePort() };
    temporal = await startTemporal();
    dataDir = makeDataDir('crash');
    platform = await startPlatform({ dataDir, env: env() });
    token = platform.token;
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'crash',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' },
          { name: 'orders_log', should_sync: true, sync_type: 'append', incremental_field: 'id', incremental_field_type: 'integer', sync_frequency: 'never' },
          { name: 'orders_inc', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime', sync_frequency: 'never' },
        ],
      },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    const ids = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    // Let the first runs (triggered on create) finish, uninterrupted.
    await waitForJobs(platform, ids.orders, 1, 240_000);
    await waitForJobs(platform, ids.orders_log, 1, 240_000);
    await waitForJobs(platform, ids.orders_inc, 1, 240_000);
    schemaIds = ids;
  }, 600_000);

  let schemaIds: Record<string, string>;
  let sourceId: string;

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await db?.drop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a running load shows its progress (rows, batches) in its heartbeat details', async () => {
    const { Client, Connection } = await import('@temporalio/client');
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    try {
      // A load long enough (hundreds of batches, several seconds) to be watched while it runs.
      await db.admin.query(`CREATE TABLE big_orders AS SELECT * FROM orders; INSERT INTO big_orders SELECT id + g * ${ROWS}, updated_at, amount, note FROM orders, generate_series(1, 7) g;
                            ALTER TABLE big_orders ADD PRIMARY KEY (id); GRANT SELECT ON big_orders TO ${db.user}`);
      const added = await platform.api('POST', `/api/sources/${sourceId}/refresh-schemas`);
      const big = added.body.added.find((s: { name: string }) => s.name === 'big_orders');
      expect(big).toBeDefined();
      const res = await platform.api('PATCH', `/api/schemas/${big.id}`, { should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' });
      expect(res.status).toBe(200);
      // The schedule knows the run it started at once (the visibility list lags); the activity's
      // pending state carries the heartbeat details the Temporal UI shows.
      const schedule = client.schedule.getHandle(syncScheduleId(big.id));
      const seen: { phase: string; rows: number; batches: number }[] = [];
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && !seen.some((d) => d.rows > 0)) {
        try {
          for (const action of (await schedule.describe()).info.runningActions) {
            const desc = await client.workflow.getHandle(action.workflow.workflowId, action.workflow.firstExecutionRunId).describe();
            for (const a of desc.raw.pendingActivities ?? []) {
              const payload = a.heartbeatDetails?.payloads?.[0]?.data;
              if (payload) seen.push(JSON.parse(Buffer.from(payload).toString('utf8')));
            }
          }
        } catch {
          // a busy dev server may time a describe out: look again
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(seen.find((d) => d.rows > 0)).toMatchObject({ phase: 'loading', rows: expect.any(Number), batches: expect.any(Number) });
      const job = await waitForJobs(platform, big.id, 1, 240_000);
      expect(job).toMatchObject({ status: 'Completed', rows_synced: ROWS * 8 });
    } finally {
      await client.connection.close();
    }
  }, 300_000);

  test('full refresh: killed twice, the table is swapped in complete', async () => {
    await db.admin.query(`UPDATE orders SET note = note || ' v2' WHERE id % 7 = 0; DELETE FROM orders WHERE id % 11 = 0`);
    const job = await triggerAndKill(schemaIds.orders, 'crash_orders', [5, 30]);
    expect(job.rows_synced).toBe(Number((await db.admin.query('SELECT count(*) FROM orders')).rows[0].count));
    await assertEqual('orders', 'crash_orders');
  }, 600_000);

  test('incremental: killed twice mid-run, resumes each time from the heartbeated cursor; FINAL equals the source', async () => {
    // Every row changed and 200,000 new: ~175 batches, so each kill point leaves a long run after it.
    await db.admin.query(`UPDATE orders_inc SET note = note || ' changed', amount = amount + 1, updated_at = TIMESTAMPTZ '2025-01-01 00:00:00+00' + id * INTERVAL '1 microsecond'`);
    await db.admin.query(`INSERT INTO orders_inc SELECT g, TIMESTAMPTZ '2025-06-01 00:00:00+00', 2.5, 'new ' || g FROM generate_series(${ROWS + 1}, ${ROWS + 200000}) g`);
    await triggerKillAndResume(schemaIds.orders_inc, 'crash_orders_inc', [8, 8]);
    await assertEqual('orders_inc', 'crash_orders_inc');
  }, 600_000);

  test('append: killed twice mid-run, resumes from the heartbeated cursor; batches repeated by the retry are deduplicated', async () => {
    // ~140 batches, so each kill point leaves a long run after it.
    await db.admin.query(`INSERT INTO orders_log SELECT g, TIMESTAMPTZ '2025-01-01 00:00:00+00', 1.5, 'late ' || g FROM generate_series(${ROWS + 1}, ${ROWS + APPENDED}) g`);
    await triggerKillAndResume(schemaIds.orders_log, 'crash_orders_log', [8, 8]);
    // Every id exactly once: the ROWS rows of the first run and the new ones.
    const counts = await query(platform, `SELECT toString(count()) AS n, toString(uniqExact(id)) AS u FROM crash_orders_log`);
    expect(counts[0]).toEqual({ n: String(ROWS + APPENDED), u: String(ROWS + APPENDED) });
  }, 600_000);

  test('runs of equal cursor values (1,000 rows a second): killed inside a run, append loses no row and incremental repeats none', async () => {
    // 64 KiB batches are ~600 rows: nearly every batch ends inside a run, where a resume "past the cursor value" skipped the rest of the run.
    for (const t of ['runs_log', 'runs_inc']) {
      await db.admin.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2), note text);
        INSERT INTO ${t} SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + (g / 1000) * INTERVAL '1 second', g % 1000 + 0.25, 'run ' || g || ' ' || repeat('x', 40)
          FROM generate_series(1, ${ROWS}) g;
        GRANT SELECT ON ${t} TO ${db.user}`);
    }
    const added = (await platform.api('POST', `/api/sources/${sourceId}/refresh-schemas`)).body.added as { name: string; id: string }[];
    for (const [t, sync_type] of [['runs_log', 'append'], ['runs_inc', 'incremental']] as const) {
      const schema = added.find((s) => s.name === t)!;
      const table = `crash_${t}`;
      // Enabling it starts its first run: killed some batches in.
      const res = await platform.api('PATCH', `/api/schemas/${schema.id}`, {
        should_sync: true, sync_type, incremental_field: 'updated_at', incremental_field_type: 'datetime', sync_frequency: 'never',
      });
      expect(res.status).toBe(200);
      await killMidRun(table, 6);
      const job = await waitForJobs(platform, schema.id, 1, 240_000);
      expect(job.status).toBe('Completed');
      // The last worker continued the run (its first batch is not batch 1), it did not start over.
      expect(Number(new RegExp(`"table":"${table}","batch":(\\d+)`).exec(platform.output())?.[1])).toBeGreaterThan(1);
      // Every row exactly once even before FINAL: a resume reproduces the batches the killed worker had
      // inserted (their deduplication tokens drop the repeats) and skips none.
      const counts = await query(platform, `SELECT toString(count()) AS n, toString(uniqExact(id)) AS u FROM ${table}`);
      expect(counts[0]).toEqual({ n: String(ROWS), u: String(ROWS) });
      await assertEqual(t, table, sync_type !== 'append');
    }
  }, 600_000);

  test('a Temporal server restart mid-run: the run carries on and completes correctly', async () => {
    await db.admin.query(`UPDATE orders SET note = note || ' v3' WHERE id % 5 = 0`);
    const jobsBefore = await finishedJobs(schemaIds.orders);
    await syncUntilBatch(schemaIds.orders, 'crash_orders', 5);
    await temporal.stop();
    await new Promise((r) => setTimeout(r, 2000));
    temporal = await startTemporal();
    const job = await waitForJobs(platform, schemaIds.orders, jobsBefore + 1, 240_000);
    expect(job.status).toBe('Completed');
    await assertEqual('orders', 'crash_orders');
  }, 600_000);

  test('the warehouse engine killed mid-load: the load is retried on a new engine; a killed platform takes its engine with it', async () => {
    await db.admin.query(`UPDATE orders SET note = note || ' v4' WHERE id % 3 = 0; DELETE FROM orders WHERE id % 13 = 0`);
    const jobsBefore = await finishedJobs(schemaIds.orders);
    const engine = platform.enginePid();
    expect(engine).toBeDefined();
    await syncUntilBatch(schemaIds.orders, 'crash_orders', 5);
    process.kill(engine!, 'SIGKILL');
    const job = await waitForJobs(platform, schemaIds.orders, jobsBefore + 1, 240_000);
    expect(job.status).toBe('Completed');
    expect(job.rows_synced).toBe(Number((await db.admin.query('SELECT count(*) FROM orders')).rows[0].count));
    const next = platform.enginePid();
    expect(next).toBeDefined();
    expect(next).not.toBe(engine);
    expect(platform.output()).toMatch(new RegExp(`"pid":${engine},[^\\n]*the warehouse engine stopped`));
    await assertEqual('orders', 'crash_orders');

    // SIGKILL of the platform: its engine sees the channel close and ends too, unlocking the data dir.
    await platform.kill();
    const gone = Date.now() + 10_000;
    while (isRunning(next!) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
    expect(isRunning(next!)).toBe(false);
    platform = await startPlatform({ dataDir, token, env: env() });
    await assertEqual('orders', 'crash_orders');
  }, 600_000);
});
