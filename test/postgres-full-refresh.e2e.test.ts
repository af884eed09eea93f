import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Client, Connection } from '@temporalio/client';
import {
  FIDELITY_DDL,
  FIDELITY_EDGE_ROWS,
  canonicalWarehouseRow,
  diffRows,
  expectedRows,
  fidelityRandomRows,
  WAREHOUSE_CANONICAL,
} from './support/fidelity';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { syncScheduleId, syncWorkflowId } from '../temporal/ids';

/**
 * The vertical slice through the HTTP API, on real parts: create a Postgres source, let the
 * Temporal schedule run the first full refresh into chDB, and compare the warehouse with the
 * source row for row and column for column — then change the source, sync again, restart.
 */
describe('Postgres full refresh, end to end', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let sourceId: string;
  let schemaIds: Record<string, string>;

  async function assertWarehouseEqualsSource() {
    const expected = await expectedRows(db.admin);
    const actual = (await query(platform, WAREHOUSE_CANONICAL('e2e_fidelity'))).map(canonicalWarehouseRow);
    expect(diffRows(expected, actual)).toEqual([]);
    expect(actual).toEqual(expected);
  }

  function temporalClient() {
    return Connection.connect({ address: platform.temporalAddress }).then((connection) => new Client({ connection }));
  }

  beforeAll(async () => {
    db = await createSourceDb('e2e');
    await db.admin.query(FIDELITY_DDL);
    await db.admin.query(FIDELITY_EDGE_ROWS);
    await db.admin.query(fidelityRandomRows(100, 500));
    await db.admin.query(`CREATE TABLE "Order Items" ("Item Id" serial PRIMARY KEY, "select" text, "Quantity" int, "from" date)`);
    await db.admin.query(`INSERT INTO "Order Items" ("select", "Quantity", "from") VALUES ('a', 1, '2024-01-01'), (NULL, 2, NULL)`);
    await db.admin.query(`CREATE TABLE not_synced (id int PRIMARY KEY)`);
    await db.admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user}`);
    dataDir = makeDataDir('e2e');
    platform = await startPlatform({ dataDir });
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('/health is public and reports each part with its mode', async () => {
    const res = await platform.api('GET', '/health', undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      temporal: { mode: 'embedded', status: 'ok' },
      warehouse: { mode: 'embedded', status: 'ok' },
      catalog: { mode: 'embedded', status: 'ok' },
    });
  });

  test('every /api route needs the bearer token', async () => {
    for (const [method, p] of [['GET', '/api/sources'], ['POST', '/api/sources'], ['POST', '/api/query'], ['GET', '/api/jobs']]) {
      const body = method === 'GET' ? undefined : {};
      const none = await platform.api(method, p, body, { token: null });
      expect(none.status).toBe(401);
      expect(none.body.error).toBe('unauthorized');
      const wrong = await platform.api(method, p, body, { token: 'not-the-token' });
      expect(wrong.status).toBe(401);
    }
  });

  test('bad credentials: 400 with Postgres\'s own message, nothing stored', async () => {
    const wrong = { ...connectionPayload(db), password: 'definitely-wrong' };
    // What Postgres itself says to these credentials:
    const direct = new pg.Client({ host: wrong.host, port: Number(wrong.port), database: wrong.dbname, user: wrong.user, password: wrong.password });
    const pgMessage = await direct.connect().then(
      () => 'connected?!',
      (err: Error) => err.message,
    );
    expect(pgMessage).toMatch(/password authentication failed/);

    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'e2e',
      payload: { ...wrong, schemas: [{ name: 'fidelity', should_sync: true, sync_type: 'full_refresh' }] },
    });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(pgMessage);
    expect(JSON.stringify(res.body)).not.toContain('definitely-wrong');
    expect((await platform.api('GET', '/api/sources')).body.results).toEqual([]);
  });

  test('malformed bodies: 400 naming the field, nothing stored', async () => {
    const good = () => ({
      source_type: 'Postgres',
      prefix: 'e2e',
      payload: { ...connectionPayload(db), schemas: [{ name: 'fidelity', should_sync: true, sync_type: 'full_refresh' }] } as Record<string, any>,
    });
    const cases: [string, (b: ReturnType<typeof good>) => unknown][] = [
      ['source_type', (b) => ({ ...b, source_type: undefined })],
      ['source_type', (b) => ({ ...b, source_type: 'Oracle' })],
      ['prefix', (b) => ({ ...b, prefix: 'Bad Prefix!' })],
      ['payload', (b) => ({ ...b, payload: undefined })],
      ['payload.schemas', (b) => ({ ...b, payload: { ...b.payload, schemas: 'all' } })],
      ['payload.host', (b) => ({ ...b, payload: { ...b.payload, host: '' } })],
      ['payload.port', (b) => ({ ...b, payload: { ...b.payload, port: 'eighty' } })],
      ['payload.dbname', (b) => ({ ...b, payload: { ...b.payload, dbname: undefined } })],
      ['payload.schemas.0.sync_type', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'fidelity', should_sync: true, sync_type: 'sometimes' }] } })],
      ['payload.schemas.0.sync_type', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'fidelity', should_sync: true }] } })],
      ['payload.schemas.0.should_sync', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'fidelity', sync_type: 'full_refresh' }] } })],
      ['payload.schemas.0.name', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'no_such_table', should_sync: true, sync_type: 'full_refresh' }] } })],
      ['payload.schemas.0.sync_frequency', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'fidelity', should_sync: true, sync_type: 'full_refresh', sync_frequency: '1min' }] } })],
      ['payload.schemas.0.sync_frequency', (b) => ({ ...b, payload: { ...b.payload, schemas: [{ name: 'fidelity', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'hourly' }] } })],
      ['payload.schema', (b) => ({ ...b, payload: { ...b.payload, schema: 'no_such_schema' } })],
    ];
    for (const [field, mutate] of cases) {
      const res = await platform.api('POST', '/api/sources', mutate(good()));
      expect({ field, status: res.status }).toEqual({ field, status: 400 });
      expect(res.body).toEqual(expect.objectContaining({ error: expect.any(String), message: expect.any(String) }));
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const notJson = await platform.api('POST', '/api/sources', undefined, { raw: '{"source_type": ' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toBe('bad_request');
    expect((await platform.api('GET', '/api/sources')).body.results).toEqual([]);
  });

  test('create source: 201 with the password masked; the first full refresh lands every row and column', async () => {
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'e2e',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'fidelity', should_sync: true, sync_type: 'full_refresh', sync_frequency: '6hour' },
          { name: 'Order Items', should_sync: true, sync_type: 'full_refresh' },
          { name: 'not_synced', should_sync: false },
        ],
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.payload.password).toBe('********');
    expect(JSON.stringify(res.body)).not.toContain(db.password);
    sourceId = res.body.id;
    schemaIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    expect(res.body.schemas.find((s: any) => s.name === 'fidelity')).toMatchObject({ table: 'e2e_fidelity', primary_key_columns: ['id'] });

    const job = await waitForJobs(platform, schemaIds.fidelity, 1);
    expect(job).toMatchObject({ status: 'Completed', rows_synced: 504, latest_error: null });
    expect(job.finished_at).not.toBeNull();
    await assertWarehouseEqualsSource();

    const schema = (await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body.results.find((s: any) => s.name === 'fidelity');
    expect(schema).toMatchObject({ status: 'Completed', rows_synced: 504 });
    expect(schema.last_synced_at).not.toBeNull();
    // The disabled table gets no job and no warehouse table.
    expect((await platform.api('GET', `/api/jobs?schema_id=${schemaIds.not_synced}`)).body.results).toEqual([]);
  });

  test('a prefix already taken is a 409, and nothing else is stored', async () => {
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'e2e',
      payload: { ...connectionPayload(db), schemas: [{ name: 'not_synced', should_sync: false }] },
    });
    expect(res.status).toBe(409);
    expect(res.body.details[0].field).toBe('prefix');
    expect((await platform.api('GET', '/api/sources')).body.results.map((s: any) => s.id)).toEqual([sourceId]);
  });

  test('warehouse types follow the source columns', async () => {
    const cols = await query(platform, `SELECT name, type FROM system.columns WHERE table = 'e2e_fidelity' ORDER BY position`);
    const types = Object.fromEntries(cols.map((c) => [c.name, c.type]));
    expect(types).toMatchObject({
      id: 'Int64',
      i2: 'Nullable(Int16)',
      num: 'Nullable(Decimal(12, 2))',
      big: 'Nullable(Decimal(38, 10))',
      f4: 'Nullable(Float32)',
      b: 'Nullable(Bool)',
      d: 'Nullable(Date32)',
      tstz: "Nullable(DateTime64(6, 'UTC'))",
      u: 'Nullable(UUID)',
      ia: 'Array(Nullable(Int32))',
      ta: 'Array(Nullable(String))',
      _tributary_version: 'UInt64',
      _tributary_is_deleted: 'UInt8',
    });
    const engine = await query(platform, `SELECT engine, sorting_key FROM system.tables WHERE name = 'e2e_fidelity'`);
    expect(engine[0]).toMatchObject({ engine: 'ReplacingMergeTree', sorting_key: 'id' });
  });

  test('a table and columns that need quoting sync under snake-case names', async () => {
    await waitForJobs(platform, schemaIds['Order Items'], 1);
    const rows = await query(platform, 'SELECT item_id, `select`, quantity, `from` FROM e2e_order_items FINAL ORDER BY item_id');
    expect(rows).toEqual([
      { item_id: 1, select: 'a', quantity: 1, from: '2024-01-01' },
      { item_id: 2, select: null, quantity: 2, from: null },
    ]);
  });

  test('a second sync after inserts, updates and deletes leaves the warehouse equal again', async () => {
    await db.admin.query(fidelityRandomRows(1000, 50));
    await db.admin.query(`UPDATE fidelity SET t = 'changed ✓', num = num + 1, ia = ARRAY[7,8,9] WHERE id % 5 = 0`);
    await db.admin.query(`DELETE FROM fidelity WHERE id IN (3, 101, 102, 103)`);
    const res = await platform.api('POST', `/api/schemas/${schemaIds.fidelity}/sync`);
    expect(res.status).toBe(202);
    const job = await waitForJobs(platform, schemaIds.fidelity, 2);
    expect(job).toMatchObject({ status: 'Completed', rows_synced: 550 });
    await assertWarehouseEqualsSource();
    // One table, swapped in place: no staging tables left behind.
    const tables = await query(platform, `SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'e2e_%' ORDER BY name`);
    expect(tables.map((t) => t.name)).toEqual(['e2e_fidelity', 'e2e_order_items']);
  });

  test('a failed run leaves the previous table untouched and records the error', async () => {
    const before = await query(platform, 'SELECT count() AS n, sum(id) AS s FROM e2e_fidelity FINAL');
    await db.admin.query(`INSERT INTO fidelity (id, t) VALUES (99999, 'never synced')`);
    await db.admin.query(`REVOKE SELECT ON fidelity FROM ${db.user}`);
    try {
      await platform.api('POST', `/api/schemas/${schemaIds.fidelity}/sync`);
      const job = await waitForJobs(platform, schemaIds.fidelity, 3);
      expect(job.status).toBe('Failed');
      expect(job.latest_error).toMatch(/permission denied/);
      expect(await query(platform, 'SELECT count() AS n, sum(id) AS s FROM e2e_fidelity FINAL')).toEqual(before);
      const schema = (await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body.results.find((s: any) => s.name === 'fidelity');
      expect(schema).toMatchObject({ status: 'Failed', latest_error: expect.stringMatching(/permission denied/) });
    } finally {
      await db.admin.query(`GRANT SELECT ON fidelity TO ${db.user}`);
      await db.admin.query(`DELETE FROM fidelity WHERE id = 99999`);
    }
  });

  test('/api/query is read-only and reports ClickHouse errors as 400', async () => {
    for (const sql of ['INSERT INTO e2e_fidelity (id) VALUES (1)', 'DROP TABLE e2e_fidelity', 'ALTER TABLE e2e_fidelity DELETE WHERE 1']) {
      const res = await platform.api('POST', '/api/query', { sql });
      expect({ sql, status: res.status }).toEqual({ sql, status: 400 });
    }
    expect((await platform.api('POST', '/api/query', { sql: 'SELEC 1' })).status).toBe(400);
    expect((await platform.api('POST', '/api/query', {})).body.details[0].field).toBe('sql');
    for (const sql of ["SELECT * FROM file('/etc/passwd', 'LineAsString')", "SELECT file('/etc/hostname')", 'SELECT 1; DROP TABLE e2e_fidelity',
      "SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')", "SELECT 1 INTO OUTFILE '/tmp/tributary-outfile'"]) {
      const res = await platform.api('POST', '/api/query', { sql });
      expect({ sql, status: res.status }).toEqual({ sql, status: 400 });
    }
    expect(fs.existsSync('/tmp/tributary-outfile')).toBe(false);
    expect((await query(platform, 'SELECT count() AS n FROM e2e_fidelity FINAL'))[0].n).toBe('550');
    expect((await query(platform, 'SELECT sum(number) AS s FROM numbers(10)'))[0].s).toBe('45');
  });

  test('unknown ids are 404, malformed filters 400', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await platform.api('GET', `/api/sources/${unknown}`)).status).toBe(404);
    expect((await platform.api('GET', `/api/sources/not-a-uuid`)).status).toBe(404);
    expect((await platform.api('GET', `/api/sources/${unknown}/schemas`)).status).toBe(404);
    expect((await platform.api('POST', `/api/schemas/${unknown}/sync`)).status).toBe(404);
    expect((await platform.api('GET', `/api/nothing-here`)).status).toBe(404);
    const bad = await platform.api('GET', `/api/jobs?schema_id=nope`);
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].field).toBe('schema_id');
  });

  test('Temporal ids follow the schema (they survive a rename), the table is a search attribute, and no credential anywhere in history', async () => {
    const client = await temporalClient();
    try {
      const runs = [];
      for await (const wf of client.workflow.list({ query: `TributaryTable = "e2e_fidelity"` })) runs.push(wf);
      expect(runs.length).toBeGreaterThanOrEqual(3);
      for (const wf of runs) {
        expect(wf.workflowId.startsWith(`${syncWorkflowId(schemaIds.fidelity)}-`)).toBe(true);
        expect(wf.typedSearchAttributes.get({ name: 'TributarySourceId', type: 'KEYWORD' } as any)).toBe(sourceId);
        expect(wf.typedSearchAttributes.get({ name: 'TributarySourceType', type: 'KEYWORD' } as any)).toBe('Postgres');
        expect(wf.typedSearchAttributes.get({ name: 'TributarySyncType', type: 'KEYWORD' } as any)).toBe('full_refresh');
        const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
        // Payload bytes decoded, so a credential would show in clear if any payload held one.
        const text = JSON.stringify(history, (k, v) =>
          v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
        );
        expect(text).not.toContain(db.password);
        expect(text).toContain(schemaIds.fidelity);
      }
      const schedule = await client.schedule.getHandle(syncScheduleId(schemaIds.fidelity)).describe();
      expect(schedule.policies.overlap).toBe('SKIP');
    } finally {
      await client.connection.close();
    }
  });

  test('credentials are encrypted at rest and never logged', async () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(path.join(dataDir, 'catalog'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(fs.readFileSync(f).includes(db.password)).toBe(false);
    expect(platform.output()).not.toContain(db.password);
    expect(fs.statSync(path.join(dataDir, 'secret-key')).mode & 0o777).toBe(0o600);
  });

  test('restart: stop cleanly, start again — the source, its schedule and its data are all there', async () => {
    expect(await platform.stop()).toBe(0);
    platform = await startPlatform({ dataDir, token: platform.token });
    const source = await platform.api('GET', `/api/sources/${sourceId}`);
    expect(source.status).toBe(200);
    expect(source.body.schemas.map((s: any) => s.name).sort()).toEqual(['Order Items', 'fidelity', 'not_synced']);
    await assertWarehouseEqualsSource();

    await db.admin.query(`UPDATE fidelity SET vc = 'after restart' WHERE id = 1`);
    await platform.api('POST', `/api/schemas/${schemaIds.fidelity}/sync`);
    const job = await waitForJobs(platform, schemaIds.fidelity, 4);
    expect(job.status).toBe('Completed');
    await assertWarehouseEqualsSource();

    const client = await temporalClient();
    try {
      // Looked up by id: the schedule list is served by visibility, which may lag a moment.
      for (const id of [syncScheduleId(schemaIds.fidelity), syncScheduleId(schemaIds['Order Items'])]) {
        expect((await client.schedule.getHandle(id).describe()).state.paused).toBe(false);
      }
      await expect(client.schedule.getHandle(syncScheduleId(schemaIds.not_synced)).describe()).rejects.toThrow(/not found/i);
    } finally {
      await client.connection.close();
    }
  });
});
