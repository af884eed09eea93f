import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHANGE_LOG_TABLE, ensureChangeLog } from '../warehouse/change-log';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import {
  DESTINATION_LOGS_TABLE,
  DESTINATION_METRICS_TABLE,
  DestinationActivity,
  destinationLag,
  destinationLogs,
  destinationMetrics,
  ensureDestinationActivity,
  LOGGED_RESPONSE_CHARS,
} from '../warehouse/destination-activity';
import { checkReadQuery } from '../warehouse/read-query';

/**
 * The destinations' logs and metrics in the real embedded engine: written in one insert each, read back per
 * destination (levels, buckets, lag), and open to users' read-only queries through the /api/query guard.
 */
describe('destination logs and metrics tables', () => {
  let dataDir: string;
  let wh: Warehouse;
  const A = '00000000-0000-4000-8000-00000000000a';
  const B = '00000000-0000-4000-8000-00000000000b';

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-dest-activity-'));
    wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    await ensureChangeLog(wh, 7);
    await ensureDestinationActivity(wh, 14);
    // Twice: a restart with another retention only changes the TTL.
    await ensureDestinationActivity(wh, 3);
  });

  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('log rows and counts are buffered, written together, and read back per destination', async () => {
    const a = new DestinationActivity(wh, A);
    const b = new DestinationActivity(wh, B);
    const now = Date.now();
    a.log({ time: now - 2000, level: 'info', message: 'delivered 1 change', status: 200, duration_ms: 12.4, webhook_id: 'chg_1', change_ids: ['chg_1'], attempt: 1 });
    a.log({ time: now - 1000, level: 'warn', message: 'attempt 1 failed', status: 503, duration_ms: 5, response: 'x'.repeat(5000), webhook_id: 'chg_2', change_ids: ['chg_2'], attempt: 1 });
    a.log({ time: now, level: 'error', message: 'network', error: 'ECONNREFUSED', webhook_id: 'chg_2', change_ids: ['chg_2'], attempt: 2 });
    b.log({ level: 'info', message: 'other destination' });
    for (let i = 0; i < 5; i++) a.count('succeeded');
    a.count('retried', 2);
    a.count('filtered', 0); // nothing to count
    b.count('failed', 7);
    expect(a.pending).toBe(5);
    await Promise.all([a.flush(), b.flush()]);
    expect(a.pending).toBe(0);

    const all = await destinationLogs(wh, A, { limit: 10 });
    expect(all.map((l) => l.level)).toEqual(['error', 'warn', 'info']);
    expect(all[2]).toMatchObject({ status: 200, duration_ms: 12, webhook_id: 'chg_1', change_ids: ['chg_1'], attempt: 1, error: null });
    expect(all[1].response!.length).toBe(LOGGED_RESPONSE_CHARS + 1);
    expect(all[0]).toMatchObject({ status: null, error: 'ECONNREFUSED', attempt: 2 });
    expect((await destinationLogs(wh, A, { levels: ['warn', 'error'], limit: 10 })).map((l) => l.level)).toEqual(['error', 'warn']);
    expect(await destinationLogs(wh, A, { limit: 1 })).toHaveLength(1);

    const m = await destinationMetrics(wh, A, '1m');
    expect(m.totals).toEqual({ succeeded: 5, failed: 0, filtered: 0, retried: 2, disabled: 0, rejected: 0 });
    expect(m.buckets.length).toBeGreaterThanOrEqual(1);
    expect(m.buckets.reduce((s, x) => s + x.succeeded, 0)).toBe(5);
    expect((await destinationMetrics(wh, B, '1d')).totals.failed).toBe(7);

    // A second flush of the same minute adds up (SummingMergeTree or not, reads sum).
    a.count('succeeded', 3);
    await a.flush();
    expect((await destinationMetrics(wh, A, '5m')).totals.succeeded).toBe(8);
  });

  test('both tables are open to /api/query (the read-only guard and session)', async () => {
    for (const table of [DESTINATION_LOGS_TABLE, DESTINATION_METRICS_TABLE]) {
      const sql = await checkReadQuery(wh, `SELECT destination_id, count() AS n FROM tributary.${table} GROUP BY destination_id ORDER BY destination_id`);
      const r = await wh.queryReadOnly(sql);
      expect(r.data.map((row) => row.destination_id)).toEqual([A, B]);
    }
  });

  test('lag: the changes after a checkpoint that the tables and operations select, and the oldest one', async () => {
    const ins = (batch: number, seq: number, table: string, op: string, agoMs: number) =>
      `(${batch}, ${seq}, '', '${table}', '${op}', '{}', '{}', NULL, 1, fromUnixTimestamp64Milli(toInt64(${Date.now() - agoMs}), 'UTC'))`;
    await wh.command(
      `INSERT INTO tributary.${CHANGE_LOG_TABLE} (batch, seq, source_id, \`table\`, op, key, row, old_row, version, landed_at) VALUES ` +
        [ins(1, 1, 't1', 'insert', 60_000), ins(1, 2, 't2', 'insert', 50_000), ins(2, 1, 't1', 'delete', 10_000), ins(2, 2, 't1', 'update', 5_000)].join(', '),
    );
    const all = await destinationLag(wh, { after: { batch: 0n, seq: 0 } });
    expect(all.changes).toBe(4);
    expect(all.seconds).toBeGreaterThanOrEqual(59);
    const t1 = await destinationLag(wh, { after: { batch: 1n, seq: 1 }, tables: ['t1'] });
    expect(t1.changes).toBe(2);
    expect(t1.seconds).toBeGreaterThanOrEqual(9);
    expect(t1.seconds).toBeLessThan(50);
    expect((await destinationLag(wh, { after: { batch: 0n, seq: 0 }, ops: ['update'] })).changes).toBe(1);
    expect(await destinationLag(wh, { after: { batch: 2n, seq: 4_294_967_295 } })).toEqual({ changes: 0, oldest_landed_at: null, seconds: null });
  });
});
