import fs from 'node:fs';
import { canonicalWarehouseRow, diffRows, expectedRows, FIDELITY_DDL, FIDELITY_EDGE_ROWS, fidelityRandomRows, WAREHOUSE_CANONICAL } from './support/fidelity';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { withTemporal } from './support/temporal-history';

/**
 * Incremental and append syncs through the API on real parts: a cursor per supported type, rows
 * changed and added between runs, NULL cursors skipped with a warning, append never repeating a row.
 */
/** A short heartbeat timeout, so a source call slower than it is quick to stage (the `slow` view). */
const HEARTBEAT_TIMEOUT_MS = 5000;
const SLOW_SECONDS = 12;
const PLATFORM_ENV = { TRIBUTARY_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS) };

describe('Postgres incremental and append', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let schemaIds: Record<string, string>;
  const runs: Record<string, number> = {};

  async function sync(name: string) {
    runs[name] = (runs[name] ?? 1) + 1;
    const res = await platform.api('POST', `/api/schemas/${schemaIds[name]}/sync`);
    expect(res.status).toBe(202);
    const job = await waitForJobs(platform, schemaIds[name], runs[name]);
    expect({ status: job.status, error: job.latest_error ?? null }).toEqual({ status: 'Completed', error: null });
    return job;
  }

  /**
   * The attempt each load activity of a job's run ended in, from its workflow's history (a retry shows as attempt 2
   * or more). Only the load: the run's other activities (recording its changes) are not what these tests time.
   */
  async function loadAttempts(job: { workflow_id: string; workflow_run_id: string }) {
    const history = await withTemporal(platform.temporalAddress, (c) => c.workflow.getHandle(job.workflow_id, job.workflow_run_id).fetchHistory());
    const events = history.events ?? [];
    const typeOf = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]));
    return {
      attempts: events
        .filter((e) => e.activityTaskStartedEventAttributes && typeOf.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'loadIncremental')
        .map((e) => e.activityTaskStartedEventAttributes!.attempt),
      timedOut: events.some((e) => e.activityTaskTimedOutEventAttributes),
    };
  }

  /** Source and warehouse rows as text, ordered by id, for a plain comparison. */
  async function compare(table: string, warehouseTable: string, columns: string, final = true, warehouseColumns = columns) {
    const source = (await db.admin.query(`SELECT ${columns} FROM ${table} ORDER BY id`)).rows.map((r) => Object.values(r).map(String));
    const wh = (await query(platform, `SELECT ${warehouseColumns} FROM ${warehouseTable} ${final ? 'FINAL' : ''} ORDER BY id`)).map((r) =>
      Object.values(r).map(String),
    );
    expect(wh).toEqual(source);
  }

  beforeAll(async () => {
    db = await createSourceDb('incr');
    await db.admin.query(`
      CREATE TABLE events (id bigserial PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(10,2), note text);
      INSERT INTO events (updated_at, amount, note)
        SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1.000001 second', g * 1.5, 'n' || g FROM generate_series(1, 1000) g;
      CREATE TABLE items (id int PRIMARY KEY, name text);
      INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g;
      CREATE TABLE daily (id int PRIMARY KEY, day date, total numeric(12,2));
      INSERT INTO daily SELECT g, DATE '2024-01-01' + g, g FROM generate_series(1, 50) g;
      CREATE TABLE scores (id int PRIMARY KEY, score numeric(8,3), seen_at timestamp);
      INSERT INTO scores SELECT g, g / 8.0, TIMESTAMP '2024-05-01' + g * INTERVAL '1 minute' FROM generate_series(1, 80) g;
      INSERT INTO scores VALUES (1000, NULL, NULL), (1001, NULL, NULL);
      CREATE TABLE counters (id int PRIMARY KEY, n smallint NOT NULL);
      INSERT INTO counters SELECT g, g FROM generate_series(1, 40) g;
      CREATE TABLE readings (id int PRIMARY KEY, taken_at timestamp NOT NULL, value float8);
      INSERT INTO readings SELECT g, TIMESTAMP '2024-03-01 00:00:00' + g * INTERVAL '1.5 second', g / 4.0 FROM generate_series(1, 60) g;
      CREATE TABLE logs (id bigint, created_at timestamptz, message text);
      INSERT INTO logs SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour', 'log ' || g FROM generate_series(1, 200) g;
      CREATE TABLE widen (id int PRIMARY KEY, updated_at timestamptz NOT NULL, v text);
      INSERT INTO widen SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 second', 'v ' || g FROM generate_series(1, 100) g;
      CREATE TABLE widen_log (LIKE widen INCLUDING ALL);
      INSERT INTO widen_log SELECT * FROM widen;
      -- A source whose rows come only after a pause several heartbeat timeouts long (as a big table's sort
      -- before the first row would), and whose NULL-cursor count takes as long again (a full scan).
      CREATE TABLE slow_base (id int PRIMARY KEY, updated_at timestamptz NOT NULL, v text);
      INSERT INTO slow_base SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 second', 'slow ' || g FROM generate_series(1, 50) g;
      CREATE FUNCTION slow_rows() RETURNS SETOF slow_base LANGUAGE sql AS $$ SELECT pg_sleep(${SLOW_SECONDS}); SELECT * FROM slow_base $$;
      CREATE VIEW slow AS SELECT * FROM slow_rows();
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    dataDir = makeDataDir('incr');
    platform = await startPlatform({ dataDir, env: PLATFORM_ENV });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'inc',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'events', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime' },
          { name: 'items', should_sync: true, sync_type: 'incremental', incremental_field: 'id', incremental_field_type: 'integer' },
          { name: 'daily', should_sync: true, sync_type: 'incremental', incremental_field: 'day', incremental_field_type: 'date' },
          { name: 'scores', should_sync: true, sync_type: 'incremental', incremental_field: 'score', incremental_field_type: 'numeric' },
          { name: 'logs', should_sync: true, sync_type: 'append', incremental_field: 'created_at', incremental_field_type: 'datetime' },
          { name: 'counters', should_sync: true, sync_type: 'incremental', incremental_field: 'n', incremental_field_type: 'integer' },
          { name: 'readings', should_sync: true, sync_type: 'incremental', incremental_field: 'taken_at', incremental_field_type: 'timestamp' },
          { name: 'widen', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime' },
          { name: 'widen_log', should_sync: true, sync_type: 'append', incremental_field: 'updated_at', incremental_field_type: 'datetime' },
          { name: 'slow', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime', primary_key_columns: ['id'] },
          { name: 'slow_base', should_sync: false },
        ],
      },
    });
    expect({ status: res.status, error: res.status === 201 ? undefined : res.body }).toEqual({ status: 201 });
    schemaIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    for (const name of Object.keys(schemaIds)) if (name !== 'slow_base') await waitForJobs(platform, schemaIds[name], 1);
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the first run loads every row, into ReplacingMergeTree on the key', async () => {
    const rows = await query(platform, 'SELECT count() AS n, max(updated_at) AS m FROM inc_events FINAL');
    expect(rows[0]).toEqual({ n: '1000', m: '2024-01-01 00:16:40.001000' });
    const engine = await query(platform, `SELECT engine FROM system.tables WHERE name = 'inc_events'`);
    expect(engine[0].engine).toBe('ReplacingMergeTree');
  });

  test('source calls slower than the heartbeat timeout (rows after a long pause, a long NULL count): the run completes in its first attempt', async () => {
    const [job] = (await platform.api('GET', `/api/jobs?schema_id=${schemaIds.slow}`)).body.results;
    expect({ status: job.status, error: job.latest_error }).toEqual({ status: 'Completed', error: null });
    expect(job.rows_synced).toBe(50);
    // The load activity ran once: heartbeats kept coming while it waited on Postgres (a heartbeat timeout would show as a retry).
    expect(await loadAttempts(job)).toEqual({ attempts: [1], timedOut: false });
    await compare('slow_base', 'inc_slow', 'id, v'); // the view's rows, without its pause
    // Discovery counts a view's rows (it has no statistics): the pause would slow every later discovery here.
    await db.admin.query(`DROP VIEW slow; DROP FUNCTION slow_rows()`);
  });

  test('timestamptz cursor: only changed and new rows are read, FINAL equals the source', async () => {
    await db.admin.query(`UPDATE events SET note = 'updated', amount = amount + 1, updated_at = TIMESTAMPTZ '2024-06-01 00:00:00+00' + id * INTERVAL '1 microsecond' WHERE id % 100 = 0`);
    await db.admin.query(`INSERT INTO events (updated_at, amount, note) SELECT TIMESTAMPTZ '2024-07-01 00:00:00+00' + g * INTERVAL '1 second', g, 'new' FROM generate_series(1, 25) g`);
    const job = await sync('events');
    // 10 updated (among them the previous high-water mark, id 1000) + 25 new.
    expect(job.rows_synced).toBe(35);
    const expected = (await db.admin.query(`SELECT id::text, note, amount::text FROM events ORDER BY events.id`)).rows.map((r) => [r.id, r.note, r.amount]);
    const actual = (await query(platform, 'SELECT id, note, amount FROM inc_events FINAL ORDER BY id')).map((r) => [String(r.id), r.note, r.amount]);
    expect(actual).toEqual(expected);
    // Nothing new: nothing read but the boundary row.
    expect((await sync('events')).rows_synced).toBe(1);
  });

  test('integer, date and numeric cursors', async () => {
    await db.admin.query(`INSERT INTO items SELECT g, 'item ' || g FROM generate_series(301, 320) g`);
    await db.admin.query(`INSERT INTO daily VALUES (51, DATE '2024-03-01', 51), (52, DATE '2024-03-02', 52)`);
    await db.admin.query(`UPDATE daily SET total = 999 WHERE id = 50`); // its day is the high-water mark: re-read
    await db.admin.query(`INSERT INTO scores VALUES (81, 10.125, now()), (82, 11.5, now())`);
    expect((await sync('items')).rows_synced).toBe(21);
    expect((await sync('daily')).rows_synced).toBe(3);
    expect((await sync('scores')).rows_synced).toBe(3);
    await compare('items', 'inc_items', 'id, name');
    await compare('daily', 'inc_daily', `id, day::text AS day, total::text AS total`, true, 'id, day, total');
    const scores = await query(platform, 'SELECT count() AS n FROM inc_scores FINAL');
    expect(scores[0].n).toBe('82'); // the two NULL-score rows are never read
  });

  test('smallint and timestamp (without time zone) cursors', async () => {
    await db.admin.query(`INSERT INTO counters VALUES (41, 41), (42, 42); UPDATE counters SET n = 300 WHERE id = 5`);
    await db.admin.query(`INSERT INTO readings VALUES (61, TIMESTAMP '2024-03-01 00:01:31.5', 99), (62, TIMESTAMP '2024-03-02 00:00:00.000001', 100)`);
    await db.admin.query(`UPDATE readings SET value = -1, taken_at = TIMESTAMP '2024-03-03 00:00:00' WHERE id = 10`);
    // counters: the boundary row (n = 40), two new, and the one moved past it; readings likewise.
    expect((await sync('counters')).rows_synced).toBe(4);
    expect((await sync('readings')).rows_synced).toBe(4);
    await compare('counters', 'inc_counters', 'id, n');
    await compare('readings', 'inc_readings', `id, to_char(taken_at, 'YYYY-MM-DD HH24:MI:SS.US') AS taken_at, value`, true, 'id, taken_at, value');
  });

  test('rows with a NULL cursor are skipped and reported as a warning', async () => {
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${schemaIds.scores}`)).body.results;
    expect(jobs[0].warnings).toEqual(['2 rows were skipped because their cursor "score" is NULL']);
  });

  test('append adds only rows past the cursor, never repeating one, into a MergeTree', async () => {
    await db.admin.query(`INSERT INTO logs SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour', 'log ' || g FROM generate_series(201, 230) g`);
    expect((await sync('logs')).rows_synced).toBe(30);
    expect((await sync('logs')).rows_synced).toBe(0);
    await compare('logs', 'inc_logs', `id, message`, false);
    const engine = await query(platform, `SELECT engine FROM system.tables WHERE name = 'inc_logs'`);
    expect(engine[0].engine).toBe('MergeTree');
  });

  test('the fidelity table (every type, NULLs, unicode, microseconds) is exact through incremental and append', async () => {
    await db.admin.query(FIDELITY_DDL);
    await db.admin.query(FIDELITY_EDGE_ROWS);
    await db.admin.query(fidelityRandomRows(100, 300));
    await db.admin.query(`GRANT SELECT ON fidelity TO ${db.user}`);
    const tables = (await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db) })).body.map((t: { table: string }) => t.table);
    const ids: Record<string, string> = {};
    for (const [prefix, sync_type] of [['fid_inc', 'incremental'], ['fid_app', 'append']]) {
      const schemas = tables.map((name: string) =>
        name === 'fidelity' ? { name, should_sync: true, sync_type, incremental_field: 'id', incremental_field_type: 'integer' } : { name, should_sync: false },
      );
      const res = await platform.api('POST', '/api/sources', { source_type: 'Postgres', prefix, payload: { ...connectionPayload(db), schemas } });
      expect(res.status).toBe(201);
      ids[prefix] = res.body.schemas.find((s: { name: string }) => s.name === 'fidelity').id;
      expect(await waitForJobs(platform, ids[prefix], 1)).toMatchObject({ status: 'Completed', rows_synced: 304 });
    }
    const check = async () => {
      const expected = await expectedRows(db.admin);
      for (const [table, final] of [['fid_inc_fidelity', true], ['fid_app_fidelity', false]] as const) {
        const actual = (await query(platform, WAREHOUSE_CANONICAL(table, final))).map(canonicalWarehouseRow);
        expect(diffRows(expected, actual)).toEqual([]);
      }
    };
    await check();
    // More rows past the cursor: each method reads only them (incremental re-reads the boundary row too).
    await db.admin.query(fidelityRandomRows(1000, 40));
    for (const [prefix, rows] of [['fid_inc', 41], ['fid_app', 40]] as const) {
      await platform.api('POST', `/api/schemas/${ids[prefix]}/sync`);
      expect(await waitForJobs(platform, ids[prefix], 2)).toMatchObject({ status: 'Completed', rows_synced: rows });
    }
    await check();
  });

  test('the cursor reached is kept in the catalog and survives a restart', async () => {
    await platform.stop();
    platform = await startPlatform({ dataDir, token: platform.token, env: PLATFORM_ENV });
    await db.admin.query(`INSERT INTO items VALUES (500, 'after restart')`);
    expect((await sync('items')).rows_synced).toBe(2); // the boundary row 320 and the new one
    await compare('items', 'inc_items', 'id, name');
  });

  test('schema evolution: added columns appear, dropped ones fill with NULL, safe type changes widen, others fail clearly', async () => {
    await db.admin.query(`ALTER TABLE daily ADD COLUMN note text, DROP COLUMN total`);
    await db.admin.query(`INSERT INTO daily VALUES (53, DATE '2024-03-03', 'new note')`);
    await db.admin.query(`ALTER TABLE scores ALTER COLUMN score TYPE numeric(12,3)`);
    await db.admin.query(`INSERT INTO scores VALUES (83, 123456.789, now())`);

    const daily = await sync('daily');
    expect(daily.warnings).toEqual(
      expect.arrayContaining([
        'column note was added at the source and to the warehouse table',
        'column total is no longer in the source; new rows have NULL in it',
      ]),
    );
    expect(await query(platform, 'SELECT id, total, note FROM inc_daily FINAL WHERE id IN (1, 53) ORDER BY id')).toEqual([
      { id: 1, total: '1.00', note: null },
      { id: 53, total: null, note: 'new note' },
    ]);

    const scores = await sync('scores');
    expect(scores.warnings).toContain('column type widened: score: Nullable(Decimal(8, 3)) → Nullable(Decimal(12, 3))');
    expect((await query(platform, 'SELECT score FROM inc_scores FINAL WHERE id = 83'))[0].score).toBe('123456.789');

    // The most common migration: an int key widened to bigint. The key is the table's ORDER BY, which
    // ClickHouse won't ALTER: the table is rebuilt in place, and rows past 2^31 land.
    for (const [table, final] of [['widen', true], ['widen_log', false]] as const) {
      await db.admin.query(`ALTER TABLE ${table} ALTER COLUMN id TYPE bigint`);
      await db.admin.query(`INSERT INTO ${table} SELECT 3000000000 + g, TIMESTAMPTZ '2025-01-01 00:00:00+00' + g * INTERVAL '1 second', 'big ' || g FROM generate_series(1, 20) g`);
      const job = await sync(table);
      expect(job.warnings).toContain('column type widened: id: Int32 → Int64');
      expect(await query(platform, `SELECT type FROM system.columns WHERE database = currentDatabase() AND table = 'inc_${table}' AND name = 'id'`)).toEqual([{ type: 'Int64' }]);
      await compare(table, `inc_${table}`, 'id, v', final);
      // Rebuilt with its engine and key: still deduplicating (incremental) or plain (append) on id.
      const [engine] = await query(platform, `SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'inc_${table}'`);
      expect(engine).toEqual({ engine: final ? 'ReplacingMergeTree' : 'MergeTree', sorting_key: 'id' });
    }

    // A value the warehouse can never take (an infinity timestamp): the job fails at once with the engine's reason.
    await db.admin.query(`ALTER TABLE widen ADD COLUMN seen_at timestamp; INSERT INTO widen VALUES (3100000000, TIMESTAMPTZ '2025-06-01 00:00:00+00', 'never', 'infinity')`);
    runs.widen = (runs.widen ?? 1) + 1;
    await platform.api('POST', `/api/schemas/${schemaIds.widen}/sync`);
    const refused = await waitForJobs(platform, schemaIds.widen, runs.widen);
    expect(refused.status).toBe('Failed');
    expect(refused.latest_error).toMatch(/the warehouse refused it \((CANNOT_PARSE|INCORRECT_DATA)/);
    expect(await loadAttempts(refused)).toEqual({ attempts: [1], timedOut: false });

    await db.admin.query(`ALTER TABLE items ALTER COLUMN name TYPE int USING length(name)`);
    runs.items = (runs.items ?? 1) + 1;
    await platform.api('POST', `/api/schemas/${schemaIds.items}/sync`);
    const failed = await waitForJobs(platform, schemaIds.items, runs.items);
    expect(failed.status).toBe('Failed');
    expect(failed.latest_error).toMatch(/Column "name" changed type at the source .*Resync the table/);
  });
});
