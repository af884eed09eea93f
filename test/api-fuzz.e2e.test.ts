import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { mapColumns } from '../connectors/postgres/types';
import { openWarehouse } from '../warehouse/client';
import { legacyColumnNames } from '../warehouse/columns';
import { createTableSql } from '../warehouse/tables';
import { syncScheduleId } from '../temporal/ids';

/**
 * Property-based fuzzing of the three write routes that take the richest bodies: hundreds of random
 * malformed bodies each, every one answered with a 4xx JSON error `{ error, message, details }` —
 * never a 5xx — and nothing stored changes. The same platform also checks that a typo'd key is named, and
 * (last, as they add sources) how column names in other scripts land in the warehouse, before and after the
 * rule that keeps their letters.
 */
describe('fuzzing the write routes with malformed bodies', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let sourceId: string;
  let ids: Record<string, string>;
  const RUNS = 200;

  /** Everything a bad body could change: the sources, their schemas, the jobs, and the Temporal schedules. */
  async function snapshot() {
    const sources = (await platform.api('GET', '/api/sources')).body;
    const schemas = (await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body;
    const jobs = (await platform.api('GET', `/api/jobs?source_id=${sourceId}`)).body;
    const connection = await Connection.connect({ address: platform.temporalAddress });
    const schedules: unknown[] = [];
    try {
      const client = new Client({ connection });
      // Described by id (listing lags behind, through the visibility store): schedule ids follow schema ids.
      for (const id of Object.values(ids).sort().map(syncScheduleId)) {
        const d = await client.schedule.getHandle(id).describe().catch(() => undefined);
        schedules.push(d ? { id, paused: d.state.paused, every: d.spec.intervals?.map((i) => i.every), note: d.state.note } : { id, absent: true });
      }
    } finally {
      await connection.close();
    }
    return JSON.stringify({ sources, schemas, jobs, schedules });
  }

  function expectClientError(res: { status: number; body: any }, body: unknown) {
    const ok =
      res.status >= 400 &&
      res.status < 500 &&
      typeof res.body?.error === 'string' &&
      typeof res.body?.message === 'string' &&
      Array.isArray(res.body?.details) &&
      res.body.details.every((d: any) => typeof d.message === 'string' && (d.field === undefined || typeof d.field === 'string'));
    if (!ok) throw new Error(`body ${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
  }

  const send = async (method: string, path: string, body: unknown) => {
    // undefined has no JSON text: send an empty body then.
    const res = body === undefined ? await platform.api(method, path, undefined, { raw: '' }) : await platform.api(method, path, body);
    expectClientError(res, body);
  };

  // Values of the wrong type for a string, boolean or list field.
  const notString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }));
  const notBoolean = fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.array(fc.boolean(), { maxLength: 2 }), fc.constant('true'));
  const notObject = fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }));
  const notInEnum = (values: string[]) => fc.oneof(fc.string().filter((s) => !values.includes(s)), notString);
  const frequencies = ['never', '1min', '5min', '15min', '30min', '1hour', '6hour', '12hour', '24hour', '7day', '30day'];
  const syncTypes = ['full_refresh', 'incremental', 'append', 'cdc', 'webhook'];

  /** The intl table of the columns test, as a sync before names kept their letters left it: `n_c_d`, `column`, `rger`. */
  const intlColumns = mapColumns([
    { name: 'id', typname: 'int4', formatted: 'integer', typmod: -1, elemTypname: null, nullable: false },
    { name: 'ünïcödé', typname: 'text', formatted: 'text', typmod: -1, elemTypname: null, nullable: true },
    { name: '中文', typname: 'text', formatted: 'text', typmod: -1, elemTypname: null, nullable: true },
    { name: 'Ärger', typname: 'int4', formatted: 'integer', typmod: -1, elemTypname: null, nullable: true },
  ]);
  async function tableFromBeforeLettersWereKept(dir: string) {
    const wh = await openWarehouse({ user: 'default', password: '', database: 'default', dataDir: dir });
    try {
      const legacy = legacyColumnNames(intlColumns.map((c) => c.sourceName));
      const columns = intlColumns.map((c, i) => ({ ...c, name: legacy[i] }));
      await wh.command(createTableSql('default', 'legacy_intl', columns, { kind: 'ReplacingMergeTree', orderBy: ['id'] }, { cluster: undefined }));
      await wh.command("INSERT INTO default.legacy_intl (id, n_c_d, column, rger, _tributary_version) VALUES (0, 'before', 'before', 0, 1)");
    } finally {
      await wh.close();
    }
  }

  beforeAll(async () => {
    db = await createSourceDb('fuzz');
    await db.admin.query(`
      CREATE TABLE items (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now(), name text);
      INSERT INTO items (id, name) SELECT g, 'i' || g FROM generate_series(1, 10) g;
      CREATE TABLE other (id int PRIMARY KEY);
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    dataDir = makeDataDir('fuzz');
    await tableFromBeforeLettersWereKept(dataDir);
    platform = await startPlatform({ dataDir });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'fuzz',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'items', should_sync: true, sync_type: 'full_refresh', sync_frequency: 'never' },
          { name: 'other', should_sync: false },
        ],
      },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    ids = Object.fromEntries(res.body.schemas.map((s: any) => [s.name, s.id]));
    await waitForJobs(platform, ids.items, 1);
  });

  afterAll(async () => {
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('POST /api/sources', async () => {
    const good = () => ({
      source_type: 'Postgres',
      prefix: 'fuzzed',
      payload: { ...connectionPayload(db), schemas: [{ name: 'items', should_sync: true, sync_type: 'full_refresh' }, { name: 'other', should_sync: false }] } as Record<string, unknown>,
    });
    const badEntry = fc.oneof(
      notObject,
      fc.record({ name: notString, should_sync: fc.boolean() }),
      fc.record({ name: fc.constantFrom('items', 'other'), should_sync: notBoolean }),
      fc.record({ name: fc.constantFrom('items', 'other'), should_sync: fc.boolean(), sync_type: notInEnum(syncTypes) }),
      fc.record({ name: fc.constantFrom('items', 'other'), should_sync: fc.boolean(), sync_frequency: notInEnum(frequencies) }),
      fc.record({ name: fc.constantFrom('items', 'other'), should_sync: fc.boolean(), primary_key_columns: fc.oneof(notObject, fc.constant([])) }),
    );
    // Well-formed entries that break a rule only the live source can tell: an invented table, a missing one.
    const ruleBreaking = fc.oneof(
      fc.string({ minLength: 1 }).map((n) => [{ name: `zz_${n}`, should_sync: false }, { name: 'items', should_sync: false }, { name: 'other', should_sync: false }]),
      fc.constant([{ name: 'items', should_sync: true, sync_type: 'full_refresh' }]),
      fc.constantFrom(...frequencies.slice(1, 2)).map((f) => [{ name: 'items', should_sync: true, sync_type: 'full_refresh', sync_frequency: f }, { name: 'other', should_sync: false }]),
      fc.constant([{ name: 'items', should_sync: true, sync_type: 'incremental', incremental_field: 'name', incremental_field_type: 'integer' }, { name: 'other', should_sync: false }]),
    );
    const body = fc.oneof(
      fc.jsonValue(),
      notObject,
      fc.record({ source_type: notInEnum(['Postgres']) }).map((b) => ({ ...good(), ...b })),
      fc.record({ prefix: fc.oneof(notString.filter((v) => v !== null), fc.string().filter((s) => !/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/.test(s) || s.length > 63)) }).map((b) => ({ ...good(), ...b })),
      notObject.map((payload) => ({ ...good(), payload })),
      fc.record({ key: fc.constantFrom('host', 'dbname', 'user', 'schema', 'password', 'sslmode'), value: notString }).map(({ key, value }) => {
        const b = good();
        b.payload[key] = value;
        return b;
      }),
      fc.oneof(notObject, fc.array(badEntry, { minLength: 1, maxLength: 3 })).map((schemas) => ({ ...good(), payload: { ...good().payload, schemas } })),
      ruleBreaking.map((schemas) => ({ ...good(), payload: { ...good().payload, schemas } })),
      fc.constant({ ...good(), prefix: 'fuzz' }), // taken: 409
    );
    const before = await snapshot();
    await fc.assert(fc.asyncProperty(body, (b) => send('POST', '/api/sources', b)), { numRuns: RUNS });
    expect(await snapshot()).toBe(before);
  });

  test('PATCH /api/schemas/:id', async () => {
    const badField = fc.oneof(
      notBoolean.map((v) => ({ should_sync: v })),
      notInEnum(syncTypes).filter((v) => v !== null).map((v) => ({ sync_type: v })),
      notInEnum(frequencies).map((v) => ({ sync_frequency: v })),
      fc.oneof(notString.filter((v) => v !== null), fc.constant('')).map((v) => ({ incremental_field: v })),
      notInEnum(['integer', 'numeric', 'date', 'timestamp', 'datetime']).filter((v) => v !== null).map((v) => ({ incremental_field_type: v })),
      fc.oneof(notObject.filter((v) => v !== null), fc.constant([]), fc.array(notString, { minLength: 1, maxLength: 2 })).map((v) => ({ primary_key_columns: v })),
      fc.string().filter((k) => !['should_sync', 'sync_type', 'sync_frequency', 'incremental_field', 'incremental_field_type', 'primary_key_columns', '__proto__'].includes(k)).map((k) => ({ [k]: 1 })),
    );
    // Well-formed but breaking a rule: 1-minute for a full refresh, a sync type the table can't have, enabling an unconfigured table.
    const ruleBreaking = fc.constantFrom(
      { target: 'items', body: { sync_frequency: '1min' } },
      { target: 'items', body: { sync_type: 'cdc' } },
      { target: 'items', body: { sync_type: 'webhook' } },
      { target: 'items', body: { sync_type: 'incremental', incremental_field: 'name', incremental_field_type: 'integer' } },
      { target: 'items', body: { primary_key_columns: ['no_such_column'] } },
      { target: 'other', body: { should_sync: true } },
      { target: 'items', body: {} },
    );
    const cases = fc.oneof(
      fc.record({ target: fc.constantFrom('items', 'other'), body: fc.oneof(notObject, fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v))) }),
      fc.record({ target: fc.constantFrom('items', 'other'), body: fc.tuple(badField, fc.dictionary(fc.constantFrom('should_sync', 'sync_frequency'), fc.jsonValue(), { maxKeys: 2 })).map(([bad, rest]) => ({ ...rest, ...bad })) }),
      ruleBreaking,
    );
    const before = await snapshot();
    await fc.assert(fc.asyncProperty(cases, ({ target, body }) => send('PATCH', `/api/schemas/${ids[target]}`, body)), { numRuns: RUNS });
    expect(await snapshot()).toBe(before);
  });

  test('POST /api/schemas/bulk', async () => {
    const realIds = () => [ids.items, ids.other];
    const actions = ['disable', 'set_frequency', 'sync_now', 'delete_tables', 'delete_and_resync'];
    const body = fc.oneof(
      notObject,
      fc.jsonValue(),
      fc.record({ action: notInEnum(actions), schema_ids: fc.constant(realIds()) }),
      fc.record({ action: fc.constant('enable'), schema_ids: fc.constant(realIds()) }),
      fc.record({ action: fc.constantFrom(...actions), schema_ids: fc.oneof(notObject, fc.constant([]), fc.array(fc.string(), { minLength: 1, maxLength: 3 })) }),
      // Well-formed, but the ids exist nowhere: 404, nothing touched.
      fc.record({ action: fc.constantFrom('disable', 'sync_now', 'delete_tables', 'delete_and_resync'), schema_ids: fc.array(fc.uuid({ version: 4 }), { minLength: 1, maxLength: 3 }) }),
      fc.record({ action: fc.constant('set_frequency'), schema_ids: fc.constant(realIds()), frequency: fc.oneof(notInEnum(frequencies), fc.constant('1min')) }),
      fc.record({ action: fc.constant('set_frequency'), schema_ids: fc.constant(realIds()) }),
      fc.record({ action: fc.constantFrom(...actions), schema_ids: fc.constant(realIds()), extra: fc.jsonValue() }),
      fc.record({ action: fc.constant('disable'), schema_ids: fc.constant(realIds()), confirm: notBoolean }),
    );
    const before = await snapshot();
    await fc.assert(fc.asyncProperty(body, (b) => send('POST', '/api/schemas/bulk', b)), { numRuns: RUNS });
    expect(await snapshot()).toBe(before);
  });

  /** A typo'd key used to be dropped and its default used in silence: now each is a 400 naming it, and nothing changes. */
  test('unknown keys are refused at every level, named with the known key they likely meant', async () => {
    const create = (over: Record<string, unknown> = {}, entry: Record<string, unknown> = {}, fields: Record<string, unknown> = {}) => ({
      source_type: 'Postgres',
      prefix: 'typos',
      ...over,
      payload: { ...connectionPayload(db), ...fields, schemas: [{ name: 'items', should_sync: true, sync_type: 'full_refresh', ...entry }, { name: 'other', should_sync: false }] },
    });
    const cases: { method: string; path: string; body: unknown; field: string; suggests?: string }[] = [
      { method: 'POST', path: '/api/sources', body: create({}, { sync_frequncy: '1hour' }), field: 'payload.schemas.0.sync_frequncy', suggests: 'sync_frequency' },
      { method: 'POST', path: '/api/sources', body: create({ prefx: 'typos' }), field: 'prefx', suggests: 'prefix' },
      { method: 'POST', path: '/api/sources', body: create({}, {}, { hots: 'elsewhere' }), field: 'payload.hots', suggests: 'host' },
      { method: 'POST', path: '/api/sources/db-schema', body: { source_type: 'Postgres', ...connectionPayload(db), sslmod: 'require' }, field: 'sslmod', suggests: 'sslmode' },
      { method: 'PATCH', path: `/api/sources/${sourceId}`, body: { payload: { pasword: 'changed' } }, field: 'payload.pasword', suggests: 'password' },
      { method: 'PATCH', path: `/api/schemas/${ids.items}`, body: { sync_frequncy: '1hour' }, field: 'sync_frequncy', suggests: 'sync_frequency' },
      { method: 'POST', path: '/api/schemas/bulk', body: { action: 'set_frequency', schema_ids: [ids.items], frequency: '1hour', frequncy: '1hour' }, field: 'frequncy', suggests: 'frequency' },
      { method: 'POST', path: `/api/sources/${sourceId}/sync-all`, body: { confirm: true, confirmd: true }, field: 'confirmd', suggests: 'confirm' },
      { method: 'POST', path: `/api/sources/${sourceId}/webhook-inputs`, body: { signing_secret: 'whsec_x', signing_secrett: 'whsec_y' }, field: 'signing_secrett', suggests: 'signing_secret' },
      { method: 'POST', path: '/api/query', body: { sql: 'SELECT 1', format: 'CSV' }, field: 'format' },
      { method: 'GET', path: `/api/jobs?source_id=${sourceId}&staus=Failed`, body: undefined, field: 'staus', suggests: 'status' },
    ];
    const before = await snapshot();
    for (const c of cases) {
      const res = await platform.api(c.method, c.path, c.body);
      const detail = (res.body.details ?? []).find((d: any) => d.field === c.field);
      const seen = `${c.method} ${c.path} → ${res.status} ${JSON.stringify(res.body)}`;
      expect([seen, res.status, res.body.error]).toEqual([seen, 400, 'validation_error']);
      expect([seen, detail?.message]).toEqual([seen, expect.stringContaining(c.suggests ? `did you mean "${c.suggests}"` : 'unknown field')]);
    }
    // Loses nothing already stored, creates nothing: the sources, schemas, jobs and schedules are as they were.
    expect(await snapshot()).toBe(before);
    expect((await platform.api('GET', '/api/sources')).body.results.map((s: any) => s.prefix)).toEqual(['fuzz']);
  });

  /** A source under `prefix` syncing the `intl` table incrementally (the others listed, off); its first job completed. */
  async function syncIntlUnder(prefix: string): Promise<string> {
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix,
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'intl', should_sync: true, sync_type: 'incremental', incremental_field: 'id', incremental_field_type: 'integer', sync_frequency: 'never' },
          { name: 'items', should_sync: false },
          { name: 'other', should_sync: false },
        ],
      },
    });
    expect(res.status).toBe(201);
    const schemaId = res.body.schemas.find((s: any) => s.name === 'intl').id;
    expect((await waitForJobs(platform, schemaId, 1)).status).toBe('Completed');
    return schemaId;
  }

  /** A warehouse table's source columns (no bookkeeping ones), in order. */
  const sourceColumns = (table: string) =>
    query(platform, `SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '${table}' AND name NOT LIKE '\\_tributary%' ORDER BY position`);

  // Last: it adds a source, which the snapshots of the cases above would see.
  test('columns named in other scripts keep their letters in the warehouse, run after run', async () => {
    await db.admin.query(`
      CREATE TABLE intl (id int PRIMARY KEY, "ünïcödé" text, "中文" text, "Ärger" int);
      INSERT INTO intl VALUES (1, 'café', '你好', 7);
      GRANT SELECT ON intl TO ${db.user};
    `);
    const schemaId = await syncIntlUnder('intl');
    // A second run evolves the live table: the same names, no second set of columns.
    await db.admin.query(`INSERT INTO intl VALUES (2, 'naïve', '中文', 8)`);
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    expect((await waitForJobs(platform, schemaId, 2)).status).toBe('Completed');
    const columns = await sourceColumns('intl_intl');
    expect(columns.map((c) => c.name)).toEqual(['id', 'unicode', 'zhong_wen', 'arger']);
    expect(await query(platform, 'SELECT id, unicode, zhong_wen, arger FROM intl_intl FINAL ORDER BY id')).toEqual([
      { id: 1, unicode: 'café', zhong_wen: '你好', arger: 7 },
      { id: 2, unicode: 'naïve', zhong_wen: '中文', arger: 8 },
    ]);
  });

  test('a table synced before names kept their letters keeps its columns on the next run: no second set, no rows lost', async () => {
    // Same source table (created by the test above); the warehouse already has legacy_intl, named by the old rule.
    const schemaId = await syncIntlUnder('legacy');
    const columns = await sourceColumns('legacy_intl');
    expect(columns.map((c) => c.name)).toEqual(['id', 'n_c_d', 'column', 'rger']);
    expect(await query(platform, 'SELECT id, n_c_d, column, rger FROM legacy_intl FINAL ORDER BY id')).toEqual([
      { id: 0, n_c_d: 'before', column: 'before', rger: 0 },
      { id: 1, n_c_d: 'café', column: '你好', rger: 7 },
      { id: 2, n_c_d: 'naïve', column: '中文', rger: 8 },
    ]);
  });
});
