import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DevServer } from '../temporal/dev-server';
import { tableChanges, type Change } from './support/change-log';
import { startTestTemporal } from './support/temporal-dev';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * A full refresh publishes its table first and records its changes after (the table it replaced kept under the
 * staging name meanwhile). The worker is killed in that window — once after a first load, once after a refresh
 * over a previous table (TRIBUTARY_TEST_HOLD_AT holds the recording activity there until the kill) — and the
 * restarted worker records every change. The refresh is also killed inside its swap's activity, just after the
 * EXCHANGE: the restarted worker's retry of it must not exchange the tables back; the job completes only then, and the replaced table is dropped.
 * Temporal runs apart from the killed process (as in production).
 */
const HOLDS = ['refresh published as a first load', 'refresh swapped in over a previous table', 'refresh published over a previous table'];

describe('change log: a worker killed between a full refresh\'s swap and its recording', () => {
  let db: SourceDb;
  let temporal: DevServer;
  let temporalDir: string;
  let dataDir: string;
  let platform: RunningPlatform;
  let schemaId: string;

  const env = () => ({ TEMPORAL_ADDRESS: temporal.address, TRIBUTARY_TEST_HOLD_AT: HOLDS.join(','), TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '3000', LOG_LEVEL: 'warn' });
  const shape = (c: Change[]) =>
    c.map(({ op, key, row, old_row }) => ({ op, key, row, old_row })).sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));
  const tables = async () =>
    (await query(platform, `SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, 'rc_items') ORDER BY name`)).map((r) => r.name);
  const liveRows = async () => (await query(platform, 'SELECT id, name FROM rc_items FINAL ORDER BY id')).map((r) => ({ id: Number(r.id), name: r.name }));

  /** Waits for the recording activity to log its hold at `step`, then checks what readers see there and kills the worker. */
  async function killAtHold(step: string, expectLive: { id: number; name: string }[], previous: { id: number; name: string }[] | null) {
    const deadline = Date.now() + 120_000;
    while (!platform.output().includes(`"holdAt":"${step}"`)) {
      if (Date.now() > deadline) throw new Error(`no hold at "${step}" within 120 s:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Published already: readers see the new rows while the job is still recording.
    expect(await liveRows()).toEqual(expectLive);
    const staging = (await tables()).filter((t) => t.includes('__loading_'));
    if (previous) {
      expect(staging).toHaveLength(1);
      expect((await query(platform, `SELECT id, name FROM ${staging[0]} FINAL ORDER BY id`)).map((r) => ({ id: Number(r.id), name: r.name }))).toEqual(previous);
    } else {
      expect(staging).toEqual([]);
    }
    // The job completes only after its changes are recorded.
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results;
    expect(jobs[0].status).toBe('Running');
    await platform.kill();
    platform = await startPlatform({ dataDir, token: platform.token, env: env() });
  }

  beforeAll(async () => {
    db = await createSourceDb('chlogcrash');
    await db.admin.query(`
      CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
      INSERT INTO items VALUES (1, 'keep'), (2, 'change'), (3, 'vanish');
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporal = await startTestTemporal(temporalDir);
    dataDir = makeDataDir('chlogcrash');
    platform = await startPlatform({ dataDir, env: env() });
  }, 240_000);

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await db?.drop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('first load, then a refresh: each killed after its swap (the refresh also inside its swap), each recorded after the restart', async () => {
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'rc',
      payload: { ...connectionPayload(db), schemas: [{ name: 'items', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' }] },
    });
    expect(res.status).toBe(201);
    schemaId = res.body.schemas[0].id;
    const first = [{ id: 1, name: 'keep' }, { id: 2, name: 'change' }, { id: 3, name: 'vanish' }];
    await killAtHold(HOLDS[0], first, null);
    expect(await waitForJobs(platform, schemaId, 1, 120_000)).toMatchObject({ status: 'Completed' });
    const inserts = await tableChanges(platform, 'rc_items');
    expect(shape(inserts)).toEqual(first.map((r) => ({ op: 'insert', key: { id: r.id }, row: r, old_row: null })));

    await db.admin.query(`UPDATE items SET name = 'changed' WHERE id = 2; DELETE FROM items WHERE id = 3; INSERT INTO items VALUES (4, 'appear')`);
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    const second = [{ id: 1, name: 'keep' }, { id: 2, name: 'changed' }, { id: 4, name: 'appear' }];
    await killAtHold(HOLDS[1], second, first);
    await killAtHold(HOLDS[2], second, first);
    expect(await waitForJobs(platform, schemaId, 2, 120_000)).toMatchObject({ status: 'Completed' });
    const next = (await tableChanges(platform, 'rc_items')).slice(inserts.length);
    expect(shape(next)).toEqual([
      { op: 'update', key: { id: 2 }, row: { id: 2, name: 'changed' }, old_row: { id: 2, name: 'change' } },
      { op: 'delete', key: { id: 3 }, row: { id: 3 }, old_row: { id: 3, name: 'vanish' } },
      { op: 'insert', key: { id: 4 }, row: { id: 4, name: 'appear' }, old_row: null },
    ]);
    // The replaced table went once its changes were in.
    expect(await tables()).toEqual(['rc_items']);
  }, 300_000);
});
