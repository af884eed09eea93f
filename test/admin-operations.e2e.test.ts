import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type pg from 'pg';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import type { DevServer } from '../temporal/dev-server';
import { schemaAdminWorkflowId, sourceAdminWorkflowId, syncScheduleId } from '../temporal/ids';
import { asSourceUser, eventually, grantCdc, secondClient } from './support/cdc';
import { startTestTemporal } from './support/temporal-dev';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startStripeFake, type StripeFake } from './support/stripe-fake';

/**
 * Admin operations as workflows (workflows/source-admin.ts), run state taken from Temporal, and the staging
 * sweep that must spare the next run. One platform for every case; Temporal runs apart from it (as in
 * production), so a SIGKILL kills only the platform — the worker — in the middle of an operation. The kill
 * points are deterministic: TRIBUTARY_TEST_HOLD_AT makes a step log and wait there (once per data dir).
 */
// Forty pages of 100, loaded in four batches of 1,000 rows (the Stripe connector's): a run resumes from the
// cursor of the batch before, into the staging table it created.
const STRIPE_CUSTOMERS = 4000;

describe('admin operations survive a crash; run state follows Temporal', () => {
  let db: SourceDb;
  let fake: StripeFake;
  let temporal: DevServer;
  let temporalDir: string;
  let dataDir: string;
  let platform: RunningPlatform;
  let client: Client;
  let sourceId: string;
  let ids: Record<string, string>;

  const env = () => ({
    TEMPORAL_ADDRESS: temporal.address,
    TRIBUTARY_TEST_HOLD_AT: 'tables renamed,source streams stopped',
    TRIBUTARY_STAGING_SWEEP_DELAY_MS: '30000',
    TRIBUTARY_STRIPE_API_URL: fake.url,
    TRIBUTARY_STRIPE_TEST_RPS: '40',
    TRIBUTARY_STRIPE_SETTLE_SECONDS: '1',
  });
  const restart = async () => {
    await platform.kill();
    platform = await startPlatform({ dataDir, token: platform.token, env: env() });
  };
  const schemaRow = async (id: string) =>
    (await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body.results.find((s: { id: string }) => s.id === id);
  const tables = async (prefix: string) =>
    (await query(platform, `SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, '${prefix}') ORDER BY name`)).map((r) => r.name);

  /** The sync run of the schema the schedule started and Temporal says is running (the Temporal UI's view). */
  async function runningSync(schemaId: string) {
    return eventually(async () => {
      const actions = (await client.schedule.getHandle(syncScheduleId(schemaId)).describe()).info.runningActions;
      for (const a of actions) {
        const handle = client.workflow.getHandle(a.workflow.workflowId, a.workflow.firstExecutionRunId);
        if ((await handle.describe()).status.name === 'RUNNING') return handle;
      }
      throw new Error(`no running sync of ${schemaId}`);
    });
  }
  const untilRunning = (schemaId: string) => eventually(async () => expect((await schemaRow(schemaId)).status).toBe('Running'));

  /** Waits for a log line of the platform; `request` answering first (say, a 409) fails at once, with its answer. */
  async function untilLogged(pattern: RegExp, request: Promise<unknown>) {
    let answered: unknown;
    void request.then((r) => (answered = r));
    const deadline = Date.now() + 120_000;
    while (!pattern.test(platform.output())) {
      if (answered) throw new Error(`answered before ${pattern} was logged: ${JSON.stringify(answered)}`);
      if (Date.now() > deadline) throw new Error(`not logged within 120 s: ${pattern}\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Locks a source table so a run reading it waits: the run stays in flight until released. */
  async function lockTable(table: string): Promise<pg.Client> {
    const c = await secondClient(db);
    await c.query(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    return c;
  }
  const release = async (c: pg.Client) => {
    await c.query('COMMIT');
    await c.end();
  };

  beforeAll(async () => {
    db = await createSourceDb('admin');
    await grantCdc(db);
    await asSourceUser(
      db,
      `CREATE TABLE items (id bigint PRIMARY KEY, note text);
       INSERT INTO items SELECT g, 'i' || g FROM generate_series(1, 500) g;
       CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL);
       INSERT INTO events SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 minute' FROM generate_series(1, 300) g;
       CREATE TABLE changes (id bigint PRIMARY KEY, v text);
       INSERT INTO changes SELECT g, 'c' || g FROM generate_series(1, 200) g;`,
    );
    fake = await startStripeFake();
    for (let i = 0; i < STRIPE_CUSTOMERS; i++) fake.create('customer', { email: `c${i}@example.com`, name: `C ${i}` }, { created: Math.floor(Date.now() / 1000) - 3600 - i });
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporal = await startTestTemporal(temporalDir);
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    dataDir = makeDataDir('admin');
    platform = await startPlatform({ dataDir, env: env() });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'adm',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'items', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' },
          { name: 'events', should_sync: true, sync_type: 'incremental', incremental_field: 'at', incremental_field_type: 'datetime', sync_frequency: 'never' },
          { name: 'changes', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] },
        ],
      },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    ids = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    await waitForJobs(platform, ids.items, 1);
    await waitForJobs(platform, ids.events, 1);
    await eventually(async () => expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc.status).toBe('Streaming'), 120_000);
  }, 300_000);

  afterAll(async () => {
    await client?.connection.close();
    await platform?.stop();
    await temporal?.stop();
    await fake?.stop();
    await db?.drop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('"sync now" on a schema with a run in flight is a 409, not a second run', async () => {
    const lock = await lockTable('items');
    try {
      const jobs = (await platform.api('GET', `/api/jobs?schema_id=${ids.items}`)).body.results.length;
      expect((await platform.api('POST', `/api/schemas/${ids.items}/sync`)).status).toBe(202);
      await untilRunning(ids.items);
      const again = await platform.api('POST', `/api/schemas/${ids.items}/sync`);
      expect(again.status).toBe(409);
      expect(again.body.message).toMatch(/already syncing/);
      await release(lock);
      expect(await waitForJobs(platform, ids.items, jobs + 1)).toMatchObject({ status: 'Completed' });
    } finally {
      await release(lock).catch(() => undefined);
    }
  });

  test('a run terminated in Temporal no longer shows Running; sync_now and sync-all start it again', async () => {
    const lock = await lockTable('items');
    try {
      expect((await platform.api('POST', `/api/schemas/${ids.items}/sync`)).status).toBe(202);
      await untilRunning(ids.items);

      // Terminated as from the Temporal UI: the run never writes its outcome.
      await (await runningSync(ids.items)).terminate('stopped from the Temporal UI');
      const row = await schemaRow(ids.items);
      expect(row).toMatchObject({ status: 'Failed', latest_error: expect.stringMatching(/ended without recording its outcome/) });
      const jobs = (await platform.api('GET', `/api/jobs?schema_id=${ids.items}`)).body.results;
      expect(jobs.filter((j: { status: string }) => j.status === 'Running')).toEqual([]);

      const bulk = await platform.api('POST', '/api/schemas/bulk', { action: 'sync_now', schema_ids: [ids.items] });
      expect(bulk.body.applied).toEqual([{ id: ids.items, name: 'items' }]);
      await untilRunning(ids.items);
      await (await runningSync(ids.items)).terminate('stopped from the Temporal UI');
      const eventsJobs = (await platform.api('GET', `/api/jobs?schema_id=${ids.events}`)).body.results.length;
      const all = await platform.api('POST', `/api/sources/${sourceId}/sync-all`, { confirm: true });
      expect(all.status).toBe(202);
      expect(all.body.started.map((s: { name: string }) => s.name)).toContain('items');
      await untilRunning(ids.items);
      // And terminated once more: a prefix change is not refused for a run that is gone (next test).
      await (await runningSync(ids.items)).terminate('stopped from the Temporal UI');
      await release(lock);
      // sync-all's run of events finishes (a run in flight would rightly refuse the prefix change next).
      await waitForJobs(platform, ids.events, eventsJobs + 1);
    } finally {
      await release(lock).catch(() => undefined);
    }
  });

  test('prefix change, the worker SIGKILLed between renaming the tables and updating the catalog: it completes after the restart', async () => {
    // The catalog still says Running for the run terminated above until Temporal is asked: no 409 here.
    const rename = platform.api('PATCH', `/api/sources/${sourceId}`, { prefix: 'ren' }).catch((err: Error) => err);
    await untilLogged(/"holdAt":"tables renamed"/, rename);
    // Killed mid-operation: tables renamed, the catalog still has the old prefix, the schedules held.
    expect((await tables('ren_')).filter((t) => !t.includes('__loading_'))).toEqual(['ren_changes', 'ren_events', 'ren_items']);
    expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.prefix).toBe('adm');
    await restart();
    expect(await rename).toMatchObject({ message: expect.any(String) }); // the request died with the process (fetch failed)
    await client.workflow.getHandle(sourceAdminWorkflowId(sourceId)).result();

    expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.prefix).toBe('ren');
    expect(await tables('adm_')).toEqual([]);
    expect((await tables('ren_')).filter((t) => !t.includes('__loading_'))).toEqual(['ren_changes', 'ren_events', 'ren_items']);
    for (const name of ['items', 'events']) {
      const d = await client.schedule.getHandle(syncScheduleId(ids[name])).describe();
      expect(d.state.note ?? '').not.toMatch(/^held/);
      expect(d.action).toMatchObject({ staticSummary: expect.stringContaining(`into ren_${name}`) });
    }
    // Everything syncs into the renamed tables: batch runs and the CDC mirror.
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${ids.items}`)).body.results.length;
    await db.admin.query(`INSERT INTO items VALUES (501, 'after rename'); INSERT INTO changes VALUES (201, 'after rename')`);
    expect((await platform.api('POST', `/api/schemas/${ids.items}/sync`)).status).toBe(202);
    expect(await waitForJobs(platform, ids.items, jobs + 1)).toMatchObject({ status: 'Completed', rows_synced: 501 });
    await eventually(async () => expect((await query(platform, `SELECT count() AS n FROM ren_changes FINAL`))[0].n).toBe('201'), 120_000);
  }, 300_000);

  test('delete_and_resync: the delayed staging sweep drops only the stopped run\'s staging table, never the new run\'s', async () => {
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Stripe',
      prefix: 'pay',
      payload: {
        stripe_secret_key: fake.key,
        schemas: STRIPE_TABLES.map((t) => (t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' } : { name: t.name, should_sync: false })),
      },
    });
    expect(res.status).toBe(201);
    const customers = res.body.schemas.find((s: { name: string }) => s.name === 'Customer').id;
    expect(await waitForJobs(platform, customers, 1)).toMatchObject({ status: 'Completed' });
    // Slow pages: a run now takes a minute, a batch every 15 s: the new run has loaded a batch (and heartbeated
    // its cursor) by the time the stopped run's staging is swept (30 s here), and is still loading at the old 45 s.
    fake.pageDelayMs = 1_500;
    expect((await platform.api('POST', `/api/schemas/${customers}/sync`)).status).toBe(202);
    await eventually(async () =>
      expect((await platform.api('GET', `/api/sources/${res.body.id}/schemas`)).body.results.find((s: { id: string }) => s.id === customers).status).toBe('Running'),
    );
    const resync = await platform.api('POST', '/api/schemas/bulk', { action: 'delete_and_resync', schema_ids: [customers] });
    expect(resync.body.applied).toEqual([{ id: customers, name: 'Customer' }]);

    // Until the sweep of the stopped run has happened (at most 50 s: past the old code's 45 s sweep too).
    const sweeps = async () => {
      let n = 0;
      for await (const wf of client.workflow.list({ query: `WorkflowType = "sweepStaging" AND ExecutionStatus = "Completed"` })) {
        if (wf.workflowId.startsWith(`sweep-${schemaAdminWorkflowId(customers)}-`)) n++;
      }
      return n;
    };
    const deadline = Date.now() + 50_000;
    while ((await sweeps()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    // The new run's staging table is still there, with the batches it loaded.
    const staging = await tables('pay_customer__loading_');
    expect(staging).toHaveLength(1);
    expect(Number((await query(platform, `SELECT count() AS n FROM ${staging[0]}`))[0].n)).toBeGreaterThanOrEqual(1000);
    fake.pageDelayMs = 0;
    const job = await waitForJobs(platform, customers, 3, 180_000);
    expect({ status: job.status, error: job.latest_error, rows: job.rows_synced }).toEqual({ status: 'Completed', error: null, rows: STRIPE_CUSTOMERS });
    expect((await query(platform, 'SELECT count() AS n FROM pay_customer FINAL'))[0].n).toBe(String(STRIPE_CUSTOMERS));
    expect((await tables('pay_customer__loading_'))).toEqual([]);
  }, 300_000);

  test('source delete with its data, the worker SIGKILLed after the streams stopped: slot, publication, schedules, catalog rows and tables all go', async () => {
    const slots = async () => (await db.admin.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'tributary_%'`)).rows;
    const pubs = async () => (await db.admin.query(`SELECT pubname FROM pg_publication WHERE pubname LIKE 'tributary_pub_%'`)).rows;
    expect(await slots()).toHaveLength(1);
    expect(await pubs()).toHaveLength(1);
    const del = platform.api('DELETE', `/api/sources/${sourceId}?delete_data=true`).catch((err: Error) => err);
    await untilLogged(/"holdAt":"source streams stopped"/, del);
    await restart();
    expect(await del).toMatchObject({ message: expect.any(String) });
    const result = await client.workflow.getHandle(sourceAdminWorkflowId(sourceId)).result();
    expect(result).toMatchObject({ id: sourceId, deleted: true, warnings: [] });

    expect((await platform.api('GET', `/api/sources/${sourceId}`)).status).toBe(404);
    expect((await platform.api('GET', `/api/jobs?source_id=${sourceId}`)).body.results).toEqual([]);
    expect(await slots()).toEqual([]);
    expect(await pubs()).toEqual([]);
    for (const id of Object.values(ids)) await expect(client.schedule.getHandle(syncScheduleId(id)).describe()).rejects.toThrow(/not found/i);
    expect(await tables('ren_')).toEqual([]);
    // Nothing of it runs any more (visibility lags a moment behind termination: poll).
    await eventually(async () => {
      const running: string[] = [];
      for await (const wf of client.workflow.list({ query: `TributarySourceId = "${sourceId}" AND ExecutionStatus = "Running"` })) running.push(wf.workflowId);
      expect(running).toEqual([]);
    });
  }, 300_000);
});
