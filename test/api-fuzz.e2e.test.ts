import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { makeDataDir, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { syncScheduleId } from '../temporal/ids';

/**
 * Property-based fuzzing of the three write routes that take the richest bodies: hundreds of random
 * malformed bodies each, every one answered with a 4xx JSON error `{ error, message, details }` —
 * never a 5xx — and nothing stored changes.
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

  beforeAll(async () => {
    db = await createSourceDb('fuzz');
    await db.admin.query(`
      CREATE TABLE items (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now(), name text);
      INSERT INTO items (id, name) SELECT g, 'i' || g FROM generate_series(1, 10) g;
      CREATE TABLE other (id int PRIMARY KEY);
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    dataDir = makeDataDir('fuzz');
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
});
