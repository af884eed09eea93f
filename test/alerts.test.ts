import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCatalog, sealConfig, type Catalog } from '../catalog';
import { listAlerts } from '../catalog/alerts';
import { ensureCdcMirror } from '../catalog/cdc';
import { insertDestination } from '../catalog/destinations';
import { startJob } from '../catalog/jobs';
import { insertSchema } from '../catalog/schemas';
import { insertSource } from '../catalog/sources';
import { createAlertActivities } from '../activities/alerts';
import { createSyncActivities } from '../activities/sync';
import { postgresConnector } from '../connectors/postgres';
import { filterErrors, matchChanges } from '../destinations/filter';
import { createLogger } from '../platform/logger';
import { registry } from '../platform/metrics';
import { ALERTS_TABLE, ensureAlertsTable } from '../warehouse/alerts-stream';
import { ensureChangeLog, readChanges } from '../warehouse/change-log';
import { openWarehouse, type Warehouse } from '../warehouse/client';

/**
 * Alerts on the real catalog (PGlite) and engine (chDB), through the activities the platform runs: a failed run
 * raises one incident, a later success clears it, the minute check neither repeats nor loses it; stale schemas,
 * CDC lag and lost slots, disabled destinations; every raise and clear lands in the change log as
 * `_tributary_alerts`, which only destinations naming it receive.
 */
describe('alerts', () => {
  let dataDir: string;
  let catalog: Catalog;
  let wh: Warehouse;
  let deps: Parameters<typeof createAlertActivities>[0];
  const MINUTE = 60_000;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-alerts-'));
    catalog = await openCatalog({ dataDir, secretKey: 'a'.repeat(64) });
    wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    await ensureChangeLog(wh, 7);
    await ensureAlertsTable(wh);
    deps = { catalog, warehouse: wh, log: createLogger('silent') };
  });

  afterAll(async () => {
    await wh?.close();
    await catalog?.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function newSchema(prefix: string, frequency: '5min' | '1hour' = '1hour') {
    const sealed = sealConfig(catalog.secrets, postgresConnector.spec, { host: '127.0.0.1', port: '5432', dbname: 'shop', user: 'reader', password: 'pw', schema: 'public' });
    const source = await insertSource(catalog.db, { source_type: 'Postgres', prefix, ...sealed });
    const schema = await insertSchema(catalog.db, source.id, {
      name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: frequency, incremental_field: null, incremental_field_type: null, primary_key_columns: null,
    });
    return { source, schema };
  }

  const alertChanges = () => readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 1n << 62n, limit: 1000, tables: [ALERTS_TABLE] });
  const metricValue = async (name: string, labels: Record<string, string>) => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((a, v) => a + v.value, 0);
  };

  test('a failed run raises exactly one alert, the minute check keeps it, the next successful run clears it', async () => {
    const { source, schema } = await newSchema('fail_once');
    const sync = createSyncActivities(deps);
    const check = createAlertActivities(deps);
    const runsBefore = await metricValue('tributary_sync_runs_total', { source: 'fail_once', status: 'Failed' });

    const job1 = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r1' });
    await sync.failJob(schema.id, job1.id, 'connection refused');
    await check.checkAlerts();
    await check.checkAlerts();
    const job2 = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r2' });
    await sync.failJob(schema.id, job2.id, 'connection refused again');

    let mine = (await listAlerts(catalog.db, { kind: 'sync_failed', limit: 100 })).filter((a) => a.subject.schema_id === schema.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ severity: 'critical', cleared_at: null, subject: { source_id: source.id, source_name: 'fail_once', schema_name: 'orders' } });
    expect(mine[0].message).toContain('connection refused');
    expect(await metricValue('tributary_sync_runs_total', { source: 'fail_once', status: 'Failed' })).toBe(runsBefore + 2);

    const job3 = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 'r3' });
    await sync.completeJob(schema.id, job3.id, 42);
    mine = (await listAlerts(catalog.db, { kind: 'sync_failed', limit: 100 })).filter((a) => a.subject.schema_id === schema.id);
    expect(mine).toHaveLength(1);
    expect(mine[0].cleared_at).not.toBeNull();
    await check.checkAlerts();
    expect((await listAlerts(catalog.db, { kind: 'sync_failed', state: 'open', limit: 100 })).filter((a) => a.subject.schema_id === schema.id)).toHaveLength(0);
    expect(await metricValue('tributary_sync_rows_total', { source: 'fail_once' })).toBe(42);

    // The raise and the clear, as change events of the alerts stream.
    const events = (await alertChanges()).filter((c) => JSON.parse(c.row).id === mine[0].id);
    expect(events.map((c) => [c.op, JSON.parse(c.row).state, c.source_id])).toEqual([
      ['insert', 'open', source.id],
      ['update', 'cleared', source.id],
    ]);
    expect(JSON.parse(events[0].row)).toMatchObject({ kind: 'sync_failed', severity: 'critical', schema_name: 'orders', source_name: 'fail_once' });
  });

  test('a schema with no completed run for more than twice its frequency is stale, until it completes one', async () => {
    const { source, schema } = await newSchema('stale_one', '5min');
    const check = createAlertActivities(deps);
    const sync = createSyncActivities(deps);
    const job = await startJob(catalog.db, { schemaId: schema.id, sourceId: source.id, workflowId: 'w', runId: 's1' });
    await sync.completeJob(schema.id, job.id, 1);
    const stale = async () => (await listAlerts(catalog.db, { kind: 'schema_stale', state: 'open', limit: 100 })).filter((a) => a.subject.schema_id === schema.id);

    await check.checkAlerts(Date.now() + 9 * MINUTE); // within 2 × 5 min
    expect(await stale()).toHaveLength(0);
    await check.checkAlerts(Date.now() + 11 * MINUTE);
    await check.checkAlerts(Date.now() + 12 * MINUTE);
    expect(await stale()).toHaveLength(1);
    expect((await stale())[0]).toMatchObject({ severity: 'warning', subject: { schema_id: schema.id, source_name: 'stale_one' } });
    await check.checkAlerts(Date.now());
    expect(await stale()).toHaveLength(0);
  });

  test('CDC lag past its thresholds, a lost slot and a disabled destination are alerts; each clears when it stops being true', async () => {
    process.env.TRIBUTARY_CDC_LAG_WARNING_BYTES = '1000';
    process.env.TRIBUTARY_CDC_LAG_CRITICAL_BYTES = '5000';
    try {
      const { source } = await newSchema('cdc_one');
      await ensureCdcMirror(catalog.db, source.id, 'slot', 'pub');
      const dest = await insertDestination(catalog.db, { id: '00000000-0000-4000-8000-0000000000d1', name: 'slack', type: 'webhook', config: {} as never, secrets: null, enabled: true, checkpoint_batch: 0n });
      const check = createAlertActivities(deps);
      const open = async () => (await listAlerts(catalog.db, { state: 'open', limit: 100 })).filter((a) => a.subject.source_id === source.id || a.subject.destination_id === dest.id);

      await catalog.db.query(`UPDATE cdc_mirrors SET lag_bytes = 2000 WHERE source_id = $1`, [source.id]);
      await catalog.db.query(`UPDATE destinations SET health_state = 'disabled', latest_error = 'HTTP 500' WHERE id = $1`, [dest.id]);
      await check.checkAlerts();
      expect((await open()).map((a) => `${a.kind}/${a.severity}`).sort()).toEqual(['cdc_lag/warning', 'destination_disabled/critical']);

      await catalog.db.query(`UPDATE cdc_mirrors SET lag_bytes = 7000, status = 'Error', latest_error = 'replication slot tributary_x was invalidated (wal_status = lost); resync the source' WHERE source_id = $1`, [source.id]);
      await check.checkAlerts();
      expect((await open()).map((a) => `${a.kind}/${a.severity}`).sort()).toEqual(['cdc_lag/critical', 'cdc_slot_lost/critical', 'destination_disabled/critical']);
      expect(await metricValue('tributary_alerts_open', { kind: 'cdc_lag', severity: 'critical' })).toBe(0); // no catalog bound: no gauge

      await catalog.db.query(`UPDATE cdc_mirrors SET lag_bytes = 10, status = 'Streaming', latest_error = NULL WHERE source_id = $1`, [source.id]);
      await catalog.db.query(`UPDATE destinations SET health_state = 'healthy' WHERE id = $1`, [dest.id]);
      await check.checkAlerts();
      expect(await open()).toEqual([]);
      // Raised and cleared once each: warning, critical, slot lost, destination.
      expect((await listAlerts(catalog.db, { limit: 100 })).filter((a) => a.subject.source_id === source.id || a.subject.destination_id === dest.id)).toHaveLength(4);
    } finally {
      delete process.env.TRIBUTARY_CDC_LAG_WARNING_BYTES;
      delete process.env.TRIBUTARY_CDC_LAG_CRITICAL_BYTES;
    }
  });

  test('only a destination that names _tributary_alerts receives alert events, and may filter them by expression', async () => {
    const changes = await alertChanges();
    expect(changes.length).toBeGreaterThan(0);
    expect(await matchChanges(wh, undefined, changes)).toEqual(changes.map(() => false));
    // A destination of every table does not even read them (so they are not counted as filtered out).
    expect((await readChanges(wh, { after: { batch: 0n, seq: 0 }, upTo: 1n << 62n, limit: 1000 })).filter((c) => c.table === ALERTS_TABLE)).toEqual([]);
    expect(await matchChanges(wh, { tables: [ALERTS_TABLE] }, changes)).toEqual(changes.map(() => true));
    const failedOnly = await matchChanges(wh, { tables: [ALERTS_TABLE], operations: ['insert'], expression: "kind = 'sync_failed'" }, changes);
    expect(changes.filter((_, i) => failedOnly[i]).map((c) => JSON.parse(c.row).kind)).toEqual(['sync_failed']);
    expect(await filterErrors(deps, { tables: [ALERTS_TABLE], expression: "kind = 'sync_failed'" })).toEqual([]);
    expect(await filterErrors(deps, { tables: ['_tributary_changes'] })).toEqual([{ path: 'filters.tables.0', message: 'no warehouse table _tributary_changes' }]);
  });
});
