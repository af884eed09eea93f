import fs from 'node:fs';
import { FIDELITY_DDL, FIDELITY_EDGE_ROWS, fidelityRandomRows } from './support/fidelity';
import { asSourceUser, eventually, expectFidelityEqual, expectTablesEqual, grantCdc, secondClient } from './support/cdc';
import { makeDataDir, query, startPlatform, type RunningPlatform } from './support/platform';
import { historyText, searchAttributes, withTemporal } from './support/temporal-history';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * Postgres CDC end to end on the real stack: a replication slot on a wal_level=logical Postgres, the
 * cdcSource workflow on the embedded Temporal, chDB. After each scenario the warehouse's FINAL view
 * equals the source.
 */
const ITEM_COLS = [
  { pg: 'id', ch: 'id' },
  { pg: 'name', ch: 'name' },
  { pg: 'qty', ch: 'qty' },
  { pg: '(price * 100)::bigint', ch: 'toInt64(price * 100)' },
  { pg: 'md5(big)', ch: 'lower(hex(MD5(big)))' },
  { pg: 'length(big)', ch: 'lengthUTF8(big)' },
];

describe('Postgres CDC', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let sourceId: string;
  let schemaIds: Record<string, string>;

  const itemsEqual = (timeoutMs?: number) => expectTablesEqual(db, platform, 'items', 'cdc_items', ITEM_COLS, timeoutMs);
  const source = async () => (await platform.api('GET', `/api/sources/${sourceId}`)).body;

  beforeAll(async () => {
    db = await createSourceDb('cdc');
    await grantCdc(db);
    // A TOASTed column: `big` holds ~20 kB of incompressible text per row.
    await asSourceUser(
      db,
      `CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int NOT NULL, price numeric(12,2), big text);
       INSERT INTO items SELECT g, 'item ' || g, g % 10, g * 1.25, NULL FROM generate_series(1, 2000) g;
       CREATE TABLE events (id bigint PRIMARY KEY, body text);
       INSERT INTO events SELECT g, 'e' || g FROM generate_series(1, 100) g;
       CREATE TABLE widen (id int PRIMARY KEY, v text);
       INSERT INTO widen SELECT g, 'w' || g FROM generate_series(1, 50) g;
       ${FIDELITY_DDL};
       ${FIDELITY_EDGE_ROWS};`,
    );
    dataDir = makeDataDir('cdc');
    platform = await startPlatform({ dataDir, env: { TRIBUTARY_CDC_FLUSH_MS: '200', TRIBUTARY_CDC_BATCH_CHANGES: '2000', TRIBUTARY_CDC_LAG_CHECK_MS: '1000',
        // Short streaming activities and runs: the hand-back and continue-as-new happen during these tests.
        TRIBUTARY_CDC_STREAM_MS: '4000',
        TRIBUTARY_CDC_LOOPS_PER_RUN: '3',
        // Keepalives every 3 s (half of it), so an idle slot's movement shows within the test.
        TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS: '6000',
        // A stream failing for good reaches Error after 4 attempts (20 in production), and tries again 5 s later.
        TRIBUTARY_CDC_STREAM_ATTEMPTS: '4',
        TRIBUTARY_CDC_RETRY_AFTER_ERROR_SECONDS: '5',
        LOG_LEVEL: process.env.TRIBUTARY_TEST_LOG_LEVEL ?? 'warn' } });
    const cdc = (name: string) => ({ name, should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'cdc',
      payload: { ...connectionPayload(db), schemas: [cdc('items'), cdc('events'), cdc('fidelity'), cdc('widen')] },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    schemaIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
  }, 120_000);

  afterAll(async () => {
    if (process.env.TRIBUTARY_TEST_DUMP) fs.writeFileSync(process.env.TRIBUTARY_TEST_DUMP, platform?.output() ?? '');
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('snapshot, then streaming: the mirror is visible on the source and its slot exists', async () => {
    await itemsEqual();
    await expectFidelityEqual(db, platform, 'cdc_fidelity');
    const s = await eventually(async () => {
      const body = await source();
      expect(body.cdc).toMatchObject({ status: 'Streaming', slot_name: expect.stringMatching(/^tributary_[0-9a-f]{12}$/), lag_status: expect.stringMatching(/ok|unknown/) });
      return body;
    });
    expect(s.cdc.workflow_id).toBe(`cdc-${sourceId}`);
    // The stream activity reconnects between its runs, so the slot is briefly inactive at times;
    // it must come back active under the mirror.
    await eventually(async () => {
      const slot = await db.admin.query(`SELECT plugin, active FROM pg_replication_slots WHERE slot_name = $1`, [s.cdc.slot_name]);
      expect(slot.rows[0]).toEqual({ plugin: 'pgoutput', active: true });
    });
    const pub = await db.admin.query(`SELECT pubviaroot FROM pg_publication WHERE pubname = $1`, [s.cdc.publication_name]);
    expect(pub.rows[0]).toEqual({ pubviaroot: true });
    // Slot lag is measured and shown with its status.
    await eventually(async () => expect((await source()).cdc.lag_bytes).toEqual(expect.any(Number)));
    // Snapshot rows carry version 0, so any streamed change wins over them.
    expect(await query(platform, `SELECT toString(max(_tributary_version)) AS v FROM cdc_items`)).toEqual([{ v: '0' }]);
  }, 120_000);

  test('inserts, updates and deletes stream in, with the LSN as version; every type keeps its value', async () => {
    await db.admin.query(`INSERT INTO items SELECT g, 'new ' || g, 1, 9.99, NULL FROM generate_series(2001, 2500) g`);
    await db.admin.query(`UPDATE items SET qty = qty + 100, name = name || ' ✓' WHERE id % 3 = 0`);
    await db.admin.query(`DELETE FROM items WHERE id % 7 = 0`);
    await itemsEqual();
    // Streamed copies of every edge value: delete the snapshot rows and insert them again.
    await db.admin.query(`DELETE FROM fidelity; ${FIDELITY_EDGE_ROWS}; ${fidelityRandomRows(100, 200)}`);
    await db.admin.query(`UPDATE fidelity SET t = t || ' edited', jb = jb || '{"e": 1}'::jsonb WHERE id % 2 = 0`);
    await expectFidelityEqual(db, platform, 'cdc_fidelity');
    const v = await query(platform, `SELECT toString(min(_tributary_version)) AS v FROM cdc_items FINAL WHERE id > 2000`);
    expect(BigInt(v[0].v)).toBeGreaterThan(0n);
  }, 120_000);

  test('an idle slot keeps moving: WAL written elsewhere is confirmed at a keepalive, so the slot holds none of it', async () => {
    await itemsEqual();
    const slot = (await source()).cdc.slot_name;
    // Traffic the publication does not cover: the stream sees only keepalives past it.
    await db.admin.query(`CREATE TABLE unpublished (id int, pad text); INSERT INTO unpublished SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g`);
    const target = (await db.admin.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn;
    await eventually(async () => {
      const r = await db.admin.query(`SELECT pg_wal_lsn_diff(confirmed_flush_lsn, $2::pg_lsn)::bigint AS ahead FROM pg_replication_slots WHERE slot_name = $1`, [slot, target]);
      expect(Number(r.rows[0].ahead)).toBeGreaterThanOrEqual(0);
    }, 30_000);
    // And the warehouse is untouched by it.
    await itemsEqual();
  }, 60_000);

  test('the mirror workflow is found in Temporal by id and search attributes; its history holds no credential', async () => {
    await withTemporal(platform.temporalAddress, async (client) => {
      expect(await searchAttributes(client, `cdc-${sourceId}`)).toMatchObject({
        TributarySourceId: sourceId,
        TributarySourceType: 'Postgres',
        TributarySyncType: 'cdc',
      });
      const text = await historyText(client, `cdc-${sourceId}`);
      expect(text).toContain(sourceId);
      expect(text).not.toContain(db.password);
    });
  });

  test('bulk set_frequency to 1min is allowed when only CDC schemas are selected', async () => {
    const res = await platform.api('POST', '/api/schemas/bulk', { action: 'set_frequency', schema_ids: [schemaIds.items, schemaIds.events], frequency: '1min' });
    expect(res.status).toBe(200);
    expect(res.body.applied.map((s: { name: string }) => s.name).sort()).toEqual(['events', 'items']);
  });

  test('an update that changes the primary key moves the row', async () => {
    await db.admin.query(`UPDATE items SET id = id + 1000000 WHERE id <= 20`);
    await itemsEqual();
    expect(await query(platform, `SELECT toString(count()) AS n FROM cdc_items FINAL WHERE id <= 20`)).toEqual([{ n: '0' }]);
  }, 120_000);

  test('TOAST: an update that leaves a large value unchanged keeps it (from the batch, or from the warehouse)', async () => {
    const big = (seed: string) => `(SELECT string_agg(md5('${seed}' || id::text || g::text), '') FROM generate_series(1, 600) g)`;
    // Written and flushed: the later update must take `big` from the warehouse row.
    await db.admin.query(`UPDATE items SET big = ${big('a')} WHERE id BETWEEN 100 AND 130`);
    await itemsEqual();
    await db.admin.query(`UPDATE items SET qty = qty + 1 WHERE id BETWEEN 100 AND 130`);
    // In one transaction: the second update's unchanged value comes from the first's image in the batch.
    await db.admin.query(`BEGIN; UPDATE items SET big = ${big('b')} WHERE id BETWEEN 200 AND 210; UPDATE items SET qty = qty + 2 WHERE id BETWEEN 200 AND 210; COMMIT`);
    await itemsEqual();
    const nulls = await query(platform, `SELECT toString(count()) AS n FROM cdc_items FINAL WHERE (id BETWEEN 100 AND 130 OR id BETWEEN 200 AND 210) AND big IS NULL`);
    expect(nulls).toEqual([{ n: '0' }]);
  }, 120_000);

  test('a transaction larger than a batch, and interleaved transactions', async () => {
    // 2,000-change batches: this one transaction is written in parts, checkpointed once at its commit.
    await db.admin.query(`INSERT INTO items SELECT g, 'bulk ' || g, 3, 1.5, NULL FROM generate_series(10001, 30000) g`);
    const other = await secondClient(db);
    try {
      await db.admin.query('BEGIN');
      await db.admin.query(`INSERT INTO items VALUES (40001, 'A first', 1, 1, NULL)`);
      await other.query('BEGIN');
      await other.query(`INSERT INTO items VALUES (40002, 'B', 2, 2, NULL)`);
      await other.query(`UPDATE items SET name = 'B touched' WHERE id = 2001`);
      await db.admin.query(`UPDATE items SET name = 'A touched' WHERE id = 2002`);
      await other.query('COMMIT');
      await db.admin.query(`UPDATE items SET name = 'A again' WHERE id = 40001`);
      await db.admin.query('COMMIT');
    } finally {
      await other.end();
    }
    await itemsEqual(90_000);
  }, 180_000);

  test('TRUNCATE at the source empties the warehouse table', async () => {
    await expectTablesEqual(db, platform, 'events', 'cdc_events', [{ pg: 'body', ch: 'body' }]);
    await db.admin.query(`TRUNCATE events`);
    await db.admin.query(`INSERT INTO events VALUES (1000, 'after truncate')`);
    await expectTablesEqual(db, platform, 'events', 'cdc_events', [{ pg: 'body', ch: 'body' }]);
  }, 120_000);

  test('a column added while streaming appears in the warehouse', async () => {
    await asSourceUser(db, `ALTER TABLE items ADD COLUMN color text`);
    await db.admin.query(`INSERT INTO items (id, name, qty, price, color) VALUES (50001, 'colored', 1, 1, 'teal')`);
    await db.admin.query(`UPDATE items SET color = 'red' WHERE id = 2002`);
    await expectTablesEqual(db, platform, 'items', 'cdc_items', [...ITEM_COLS, { pg: 'color', ch: 'color' }]);
  }, 120_000);

  test('widening the primary key (int → bigint) while streaming rebuilds the table in place; ids past 2^31 stream in', async () => {
    const widenEqual = () => expectTablesEqual(db, platform, 'widen', 'cdc_widen', [{ pg: 'id', ch: 'id' }, { pg: 'v', ch: 'v' }]);
    await widenEqual();
    // The key is the table's ORDER BY, which ClickHouse won't ALTER (code 524): the stream used to retry that forever.
    await asSourceUser(db, `ALTER TABLE widen ALTER COLUMN id TYPE bigint`);
    await db.admin.query(`INSERT INTO widen SELECT 3000000000 + g, 'big ' || g FROM generate_series(1, 20) g; UPDATE widen SET v = 'after' WHERE id = 5; DELETE FROM widen WHERE id = 6`);
    await widenEqual();
    expect(await query(platform, `SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'cdc_widen' AND name = 'id'`)).toEqual([{ type: 'Int64' }]);
    expect((await source()).cdc.status).toBe('Streaming');
    // The rebuilt table keeps its versions: later changes still win over the rows copied into it.
    await db.admin.query(`UPDATE widen SET v = 'later' WHERE id IN (1, 3000000001)`);
    await widenEqual();
  }, 120_000);

  test('a change the warehouse can never take (an infinity timestamp) puts the mirror in Error with the reason, instead of retrying forever', async () => {
    await expectTablesEqual(db, platform, 'widen', 'cdc_widen', [{ pg: 'id', ch: 'id' }, { pg: 'v', ch: 'v' }]); // streaming
    await asSourceUser(db, `ALTER TABLE widen ADD COLUMN seen_at timestamp`);
    await db.admin.query(`INSERT INTO widen (id, v, seen_at) VALUES (70000, 'never', 'infinity')`);
    const failed = await eventually(async () => {
      const cdc = (await source()).cdc;
      expect(cdc.status).toBe('Error');
      return cdc;
    }, 90_000);
    expect(failed.latest_error).toMatch(/the warehouse refused it \(CANNOT_PARSE_DATETIME\): writing 1 changes to cdc_widen failed/);
    // Fixed at the source, a resync brings the mirror back.
    await db.admin.query(`DELETE FROM widen WHERE id = 70000`);
    expect((await platform.api('POST', `/api/sources/${sourceId}/cdc/resync`)).status).toBe(202);
    await eventually(async () => expect((await source()).cdc.status).toBe('Streaming'), 90_000);
    await expectTablesEqual(db, platform, 'widen', 'cdc_widen', [{ pg: 'id', ch: 'id' }, { pg: 'v', ch: 'v' }]);
    await itemsEqual();
  }, 240_000);

  test("a source that refuses the mirror past the stream's retries puts it in Error with the reason; it comes back on its own", async () => {
    await itemsEqual(); // streaming
    await db.admin.query(`ALTER ROLE ${db.user} NOLOGIN`);
    try {
      // Every connection of the source user ends, the replication one with it; each new one is refused.
      await db.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [db.user]);
      const failed = await eventually(async () => {
        const cdc = (await source()).cdc;
        expect(cdc.status).toBe('Error');
        return cdc;
      }, 120_000);
      expect(failed.latest_error).toMatch(/not permitted to log in/);
    } finally {
      await db.admin.query(`ALTER ROLE ${db.user} LOGIN`);
    }
    // No resync, no signal: the mirror tries again by itself and catches up with what changed meanwhile.
    await db.admin.query('UPDATE items SET qty = qty + 1 WHERE id % 17 = 0');
    await eventually(async () => expect((await source()).cdc.status).toBe('Streaming'), 120_000);
    await itemsEqual(120_000);
  }, 300_000);

  test('pause (with the WAL warning) and resume lose nothing', async () => {
    const paused = await platform.api('POST', `/api/sources/${sourceId}/cdc/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.warnings[0]).toMatch(/retains|keeps every WAL/);
    await eventually(async () => expect((await source()).cdc).toMatchObject({ status: 'Paused', paused: true }));
    await db.admin.query(`UPDATE items SET qty = qty + 5 WHERE id % 11 = 0`);
    await db.admin.query(`DELETE FROM items WHERE id % 13 = 0`);
    await new Promise((r) => setTimeout(r, 1500));
    // Nothing streams while paused: the slot holds the changes.
    const slot = await db.admin.query(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [(await source()).cdc.slot_name]);
    expect(slot.rows[0].active).toBe(false);
    expect((await platform.api('POST', `/api/sources/${sourceId}/cdc/resume`)).status).toBe(200);
    await itemsEqual();
    await eventually(async () => expect((await source()).cdc.status).toBe('Streaming'));
  }, 120_000);

  test('disabling a CDC table takes it out of the publication, enabling it puts it back with a fresh snapshot; unknown sources 404', async () => {
    const res = await platform.api('PATCH', `/api/schemas/${schemaIds.events}`, { should_sync: false });
    expect(res.status).toBe(200);
    const pubname = (await source()).cdc.publication_name;
    await eventually(async () => {
      const t = await db.admin.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [pubname]);
      expect(t.rows.map((r) => r.tablename)).toEqual(['fidelity', 'items', 'widen']);
    });
    expect((await platform.api('POST', `/api/sources/00000000-0000-4000-8000-000000000000/cdc/pause`)).status).toBe(404);
    // Changes made while the table is out of CDC are not streamed; enabling it again snapshots it afresh.
    await db.admin.query(`INSERT INTO events VALUES (2000, 'while disabled'); DELETE FROM events WHERE id = 1000`);
    expect((await platform.api('PATCH', `/api/schemas/${schemaIds.events}`, { should_sync: true })).status).toBe(200);
    await eventually(async () => {
      const t = await db.admin.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [pubname]);
      expect(t.rows.map((r) => r.tablename)).toEqual(['events', 'fidelity', 'items', 'widen']);
    });
    await expectTablesEqual(db, platform, 'events', 'cdc_events', [{ pg: 'body', ch: 'body' }]);
    await db.admin.query(`UPDATE events SET body = 'streamed again' WHERE id = 2000`);
    await expectTablesEqual(db, platform, 'events', 'cdc_events', [{ pg: 'body', ch: 'body' }]);
  }, 120_000);

  test('the mirror continued as new (history stays small) and kept streaming across runs', async () => {
    const { Client, Connection } = await import('@temporalio/client');
    const client = new Client({ connection: await Connection.connect({ address: platform.temporalAddress }) });
    try {
      const workflowId = (await source()).cdc.workflow_id;
      const runs: string[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(wf.status.name);
      expect(runs).toContain('CONTINUED_AS_NEW');
      expect(runs.filter((s) => s === 'RUNNING')).toHaveLength(1);
    } finally {
      await client.connection.close();
    }
    await db.admin.query(`UPDATE items SET name = 'late change' WHERE id = 2002`);
    await itemsEqual();
  }, 120_000);

  test('a lost slot puts the mirror in Error with a clear message; resync recovers it', async () => {
    const slotName = (await source()).cdc.slot_name;
    // Someone drops the slot at the source (or Postgres invalidates it): its changes are gone.
    await eventually(async () => {
      await db.admin.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [slotName]);
      await db.admin.query(`SELECT pg_drop_replication_slot($1)`, [slotName]);
    }, 20_000);
    await db.admin.query(`UPDATE items SET qty = qty + 7 WHERE id % 5 = 0`);
    const failed = await eventually(async () => {
      const cdc = (await source()).cdc;
      expect(cdc.status).toBe('Error');
      return cdc;
    }, 90_000);
    expect(failed.latest_error).toMatch(/slot .* (does not exist|disappeared|invalidated).*resync/);
    // The source itself shows Error with the reason, in the list too.
    expect(await source()).toMatchObject({ status: 'Error', latest_error: failed.latest_error });
    const listed = (await platform.api('GET', '/api/sources')).body.results.find((s: { id: string }) => s.id === sourceId);
    expect(listed).toMatchObject({ status: 'Error', cdc: { status: 'Error' } });
    const res = await platform.api('POST', `/api/sources/${sourceId}/cdc/resync`);
    expect(res.status).toBe(202);
    await eventually(async () => expect((await source()).cdc.status).toBe('Streaming'), 90_000);
    await itemsEqual();
    await db.admin.query(`UPDATE items SET name = 'after resync' WHERE id = 2002`);
    await itemsEqual();
  }, 240_000);

  test('an incompatible type change stops the mirror saying what changed; resync rebuilds the table', async () => {
    await asSourceUser(db, `ALTER TABLE items ALTER COLUMN qty TYPE text USING qty::text`);
    await db.admin.query(`INSERT INTO items (id, name, qty, price) VALUES (60001, 'typed', 'many', 1)`);
    const failed = await eventually(async () => {
      const cdc = (await source()).cdc;
      expect(cdc.status).toBe('Error');
      return cdc;
    }, 90_000);
    expect(failed.latest_error).toMatch(/qty/);
    expect((await platform.api('POST', `/api/sources/${sourceId}/cdc/resync`)).status).toBe(202);
    await eventually(async () => expect((await source()).cdc.status).toBe('Streaming'), 90_000);
    await itemsEqual();
  }, 240_000);

  test('deleting the source drops its slot and publication', async () => {
    const { slot_name, publication_name } = (await source()).cdc;
    const res = await platform.api('DELETE', `/api/sources/${sourceId}`);
    expect(res.status).toBe(200);
    expect(res.body.warnings).toEqual([]);
    expect((await db.admin.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slot_name])).rowCount).toBe(0);
    expect((await db.admin.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [publication_name])).rowCount).toBe(0);
  }, 120_000);
});
