import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { openCatalog, sealConfig, type Catalog } from '../catalog';
import { startJob } from '../catalog/jobs';
import { insertSchema } from '../catalog/schemas';
import { insertSource } from '../catalog/sources';
import { createAdminActivities } from '../activities/admin';
import { dropEarlierAttempts, stagingPrefix, stagingTableName } from '../activities/context';
import { createSyncActivities } from '../activities/sync';
import type { SyncProgress } from '../common/types';
import { pendoConnector } from '../connectors/pendo';
import { createLogger } from '../platform/logger';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { createTableSql } from '../warehouse/tables';
import { ensureAlertsTable } from '../warehouse/alerts-stream';
import { ensureChangeLog } from '../warehouse/change-log';
import { makeVisitor, startPendoFake, type PendoFake } from './support/pendo-fake';

/**
 * Staging tables are per activity attempt (`<table>__loading_<job>_<attempt>`): a retried full-refresh attempt can
 * run while the attempt before it is still alive unseen (its heartbeats lost, its process not dead), and that one
 * must never write into the table the retry loads and publishes. On the real engine (chDB) and catalog (PGlite),
 * with the activity called as a worker would call it (the Temporal context built here: which attempt, what the
 * last heartbeat said), against the local Pendo API.
 */
describe('staging tables per attempt', () => {
  let dataDir: string;
  let catalog: Catalog;
  let wh: Warehouse;
  let fake: PendoFake;
  const KEY = 'staging-key';
  const env = { TRIBUTARY_PENDO_API_URL: '', TRIBUTARY_PENDO_PAGE_SIZE: '3', TRIBUTARY_PENDO_RPS: '1000' };
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-staging-'));
    catalog = await openCatalog({ dataDir, secretKey: 'b'.repeat(64) });
    wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    await ensureChangeLog(wh, 7);
    await ensureAlertsTable(wh);
    fake = await startPendoFake();
    fake.addKey(KEY, 'app.eu.pendo.io');
    env.TRIBUTARY_PENDO_API_URL = fake.apiUrl;
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });

  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await fake?.stop();
    await wh?.close();
    await catalog?.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs `fn` as activity attempt `attempt` would run, resuming from `details`; its heartbeats go to `beats`. */
  function asAttempt<T>(attempt: number, details: unknown, beats: unknown[], fn: () => Promise<T>): Promise<T> {
    const abort = new AbortController();
    const info = { attempt, heartbeatDetails: details, heartbeatTimeoutMs: 60_000, activityType: 'loadFullRefresh', workflowExecution: { workflowId: 'w', runId: 'r' } } as unknown as Info;
    const ctx = new Context(info, new Promise<never>(() => undefined), abort.signal, (d?: unknown) => void beats.push(d), undefined, createLogger('silent') as never, undefined as never, {} as never);
    return asyncLocalStorage.run(ctx, fn);
  }

  const tables = async (prefix: string) =>
    (await wh.queryRows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} AND startsWith(name, {p:String}) ORDER BY name', { params: { db: wh.database, p: prefix } })).map((r) => r.name);
  const ids = async (table: string) => (await wh.queryRows<{ id: string }>(`SELECT visitor_id AS id FROM ${wh.database}.${table} FINAL ORDER BY id`)).map((r) => r.id);

  test('the names: one per attempt, all under the job prefix the sweeps drop by', () => {
    const job = '0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    expect(stagingTableName('pd_visitors', job, 1)).toBe('pd_visitors__loading_0a1b2c3d4e5f_1');
    expect(stagingTableName('pd_visitors', job, 12)).toBe('pd_visitors__loading_0a1b2c3d4e5f_12');
    expect(stagingTableName('pd_visitors', job, 2).startsWith(stagingPrefix('pd_visitors', job))).toBe(true);
    expect(stagingPrefix('pd_visitors', job).startsWith('pd_visitors__loading_')).toBe(true);
  });

  test('a zombie attempt stalled mid-read never writes into the retry\'s staging table', async () => {
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']) fake.putVisitor(makeVisitor(id, 1_000, [-323232]));
    const sealed = sealConfig(catalog.secrets, pendoConnector.spec, { integration_key: KEY, region: 'EU' });
    const source = await insertSource(catalog.db, { source_type: 'Pendo', prefix: 'zomb', ...sealed });
    const schema = await insertSchema(catalog.db, source.id, {
      name: 'visitors', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never', incremental_field: null, incremental_field_type: null, primary_key_columns: ['visitorId'],
    });
    const job = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r' });
    // Small batches (a visitor or two each), so the first page is heartbeated before the second is asked for.
    const sync = createSyncActivities({ catalog, warehouse: wh, log: createLogger('silent'), batchBytes: 64 });

    // Attempt 1 reads the first page (a, b, c), then stalls on the second: its answer (d, e, f) is taken now.
    const stalled = fake.holdAggregation(1);
    const beats1: unknown[] = [];
    const first = asAttempt(1, undefined, beats1, () => sync.loadFullRefresh(schema.id, job.id, '5')).then(
      (r) => ({ ok: true as const, r }),
      (err: Error) => ({ ok: false as const, err }),
    );
    await stalled.arrived;
    const cursorAfter = (c: string) => beats1.some((d) => (d as SyncProgress | undefined)?.cursor === JSON.stringify({ after: c }));
    for (const deadline = Date.now() + 30_000; !cursorAfter('c'); ) {
      if (Date.now() > deadline) throw new Error(`attempt 1 never heartbeated its first page: ${JSON.stringify(beats1.slice(-3))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const lastBeat = [...beats1].reverse().find((d) => (d as SyncProgress | undefined)?.cursor === JSON.stringify({ after: 'c' }));

    // Meanwhile e is deleted at the source; the retry (attempt 2, the server having given up on attempt 1) resumes
    // after c, as the heartbeat says, and loads the rest.
    fake.removeVisitor('e');
    const second = await asAttempt(2, lastBeat, [], () => sync.loadFullRefresh(schema.id, job.id, '5'));
    expect(await ids(second.stagingTable)).toEqual(['a', 'b', 'c', 'd', 'f', 'g', 'h', 'i']);

    // Attempt 1 goes on with what it had asked for: d, e, f, then the rest. None of it may reach the retry's table.
    stalled.release();
    const zombie = await first;
    expect(await ids(second.stagingTable)).toEqual(['a', 'b', 'c', 'd', 'f', 'g', 'h', 'i']);
    expect(second.stagingTable).toBe(stagingTableName('zomb_visitors', job.id, 2));
    // The zombie's table was taken over by the retry (renamed): its writes find no table.
    expect(zombie.ok).toBe(false);
    expect(await tables('zomb_visitors__loading_')).toEqual([second.stagingTable]);

    // A job that fails drops every attempt's table (a leftover of attempt 1 made again here, as a crash would leave it).
    await wh.command(`CREATE TABLE ${wh.database}.${stagingTableName("zomb_visitors", job.id, 1)} AS ${wh.database}.${second.stagingTable}`);
    await sync.failJob(schema.id, job.id, 'given up');
    expect(await tables('zomb_visitors__loading_')).toEqual([]);
  }, 120_000);

  test('earlier attempts\' tables go when an attempt starts, later ones never; the sweep drops every attempt\'s', async () => {
    const cols = [{ name: 'id', sourceName: 'id', type: 'Int64', sourceType: 'int8', nullable: false }];
    const job = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
    const other = 'ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee';
    const make = (name: string) => wh.command(createTableSql(wh.database, name, cols, { kind: 'MergeTree', orderBy: [] }, { cluster: wh.cluster }));
    const names = [stagingPrefix('sw_t', job), ...[1, 2, 3, 4].map((a) => stagingTableName('sw_t', job, a)), `${stagingTableName('sw_t', job, 2)}__changes`, stagingTableName('sw_t', other, 1)];
    for (const n of names) await make(n);

    // Attempt 3 starting: the per-job table of the old naming and attempts 1 and 2 go; 3 (its own), 4 and the diff stay.
    await dropEarlierAttempts(wh, 'sw_t', job, 3);
    expect(await tables('sw_t__loading_')).toEqual([
      `${stagingTableName('sw_t', job, 2)}__changes`, stagingTableName('sw_t', job, 3), stagingTableName('sw_t', job, 4), stagingTableName('sw_t', other, 1),
    ].sort());

    // sweepStaging's activity, given the stopped job's prefix (as stopSchemaRuns and the stale-run check give it).
    const admin = createAdminActivities({ catalog, warehouse: wh, log: createLogger('silent') });
    await asAttempt(1, undefined, [], () => admin.dropTables([stagingPrefix('sw_t', job)]));
    expect(await tables('sw_t__loading_')).toEqual([stagingTableName('sw_t', other, 1)]);
  }, 60_000);
});
