import fs from 'node:fs';
import { asSourceUser, eventually, grantCdc, secondClient } from './support/cdc';
import { tableChanges, tableChangesWhen } from './support/change-log';
import { makeDataDir, query, startPlatform, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * CDC writes its changes into the change log (`_tributary_changes`): one row per change the stream carried,
 * insert / update / delete as Postgres logged them, in the stream's order, the key and row rendered by the
 * engine with their JSON types, the LSN as version. Read through POST /api/query, as a user would.
 */
describe('change log: CDC', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;

  const changes = (table: string) => tableChanges(platform, table);
  const changesWhen = (table: string, n: number) => tableChangesWhen(platform, table, n);

  const versionOf = async (table: string, id: number) =>
    (await query(platform, `SELECT toString(_tributary_version) AS v FROM ${table} FINAL WHERE id = ${id}`))[0]?.v as string | undefined;

  beforeAll(async () => {
    db = await createSourceDb('chlog');
    await grantCdc(db);
    await asSourceUser(
      db,
      `CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(10,2), paid boolean NOT NULL DEFAULT false, note text);
       INSERT INTO orders VALUES (1, 'open', 10.50, false, 'first'), (2, 'open', 20.00, false, NULL), (3, 'open', 30.25, true, 'third');
       CREATE TABLE audited (id int PRIMARY KEY, v text);
       ALTER TABLE audited REPLICA IDENTITY FULL;
       INSERT INTO audited VALUES (1, 'a'), (2, 'b');
       CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL);
       INSERT INTO counters SELECT g, 0 FROM generate_series(1, 20) g;`,
    );
    dataDir = makeDataDir('chlog-cdc');
    platform = await startPlatform({
      dataDir,
      env: { TRIBUTARY_CDC_FLUSH_MS: '200', TRIBUTARY_CDC_BATCH_CHANGES: '300', TRIBUTARY_CDC_LAG_CHECK_MS: '1000', LOG_LEVEL: process.env.TRIBUTARY_TEST_LOG_LEVEL ?? 'warn' },
    });
    const cdc = (name: string) => ({ name, should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] });
    const res = await platform.api('POST', '/api/sources', { source_type: 'Postgres', prefix: 'cl', payload: { ...connectionPayload(db), schemas: [cdc('orders'), cdc('audited'), cdc('counters')] } });
    expect(res.status).toBe(201);
    const sourceId = res.body.id;
    await eventually(async () => {
      expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc.status).toBe('Streaming');
      expect(await query(platform, 'SELECT toString(count()) AS n FROM cl_orders FINAL')).toEqual([{ n: '3' }]);
      expect(await query(platform, 'SELECT toString(count()) AS n FROM cl_audited FINAL')).toEqual([{ n: '2' }]);
    }, 120_000);
  }, 180_000);

  afterAll(async () => {
    if (process.env.TRIBUTARY_TEST_DUMP) fs.writeFileSync(process.env.TRIBUTARY_TEST_DUMP, platform?.output() ?? '');
    await platform?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('inserts, updates and deletes are recorded in stream order, two changes of one key in one transaction included', async () => {
    // The snapshot is the table's starting point, not a change.
    expect(await changes('cl_orders')).toEqual([]);
    const c = await secondClient(db);
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO orders VALUES (10, 'new', 5.50, false, NULL)`);
      await c.query(`UPDATE orders SET status = 'paid', amount = 7.25, paid = true WHERE id = 10`);
      await c.query('COMMIT');
      await c.query('BEGIN');
      await c.query(`UPDATE orders SET status = 'shipped', note = 'tab\there "quoted"' WHERE id = 1`);
      await c.query(`DELETE FROM orders WHERE id = 2`);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    const got = await changesWhen('cl_orders', 4);
    expect(got.map(({ op, key, row, old_row }) => ({ op, key, row, old_row }))).toEqual([
      { op: 'insert', key: { id: 10 }, row: { id: 10, status: 'new', amount: 5.5, paid: false, note: null }, old_row: null },
      { op: 'update', key: { id: 10 }, row: { id: 10, status: 'paid', amount: 7.25, paid: true, note: null }, old_row: null },
      { op: 'update', key: { id: 1 }, row: { id: 1, status: 'shipped', amount: 10.5, paid: false, note: 'tab\there "quoted"' }, old_row: null },
      // Without REPLICA IDENTITY FULL the source sends only the key of a deleted row.
      { op: 'delete', key: { id: 2 }, row: { id: 2 }, old_row: null },
    ]);
    // Versions are the LSNs: increasing in stream order, and the table's versions of the rows written.
    const versions = got.map((g) => BigInt(g.version));
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]);
    expect(got[1].version).toBe(await versionOf('cl_orders', 10));
    expect(got[2].version).toBe(await versionOf('cl_orders', 1));
  });

  test('an update that moves the primary key is a delete of the old key and an insert of the new one', async () => {
    const before = (await changes('cl_orders')).length;
    await db.admin.query(`UPDATE orders SET id = 30 WHERE id = 3`);
    const got = (await changesWhen('cl_orders', before + 2)).slice(before);
    expect(got.map(({ op, key, row }) => ({ op, key, row }))).toEqual([
      { op: 'delete', key: { id: 3 }, row: { id: 3 } },
      { op: 'insert', key: { id: 30 }, row: { id: 30, status: 'open', amount: 30.25, paid: true, note: 'third' } },
    ]);
    expect(got[0].version).toBe(got[1].version);
  });

  test('a stream over many batches: every change once, in order per key (batches are recorded while the next is written)', async () => {
    // 100 transactions of 20 updates: about 7 batches of 300 changes, written and recorded in a pipeline.
    const c = await secondClient(db);
    try {
      for (let i = 0; i < 100; i++) await c.query('UPDATE counters SET n = n + 1');
    } finally {
      await c.end();
    }
    const got = await changesWhen('cl_counters', 2000);
    expect(got.length).toBe(2000);
    const perKey = new Map<number, { n: number; v: bigint }[]>();
    for (const g of got) {
      expect(g.op).toBe('update');
      const id = g.key.id as number;
      perKey.set(id, [...(perKey.get(id) ?? []), { n: g.row.n as number, v: BigInt(g.version) }]);
    }
    expect([...perKey.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const seq of perKey.values()) {
      expect(seq.map((x) => x.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      for (let i = 1; i < seq.length; i++) expect(seq[i].v).toBeGreaterThan(seq[i - 1].v);
    }
    // More than one batch took them.
    const batches = await query(platform, `SELECT toString(countDistinct(batch)) AS b FROM _tributary_changes WHERE \`table\` = 'cl_counters'`);
    expect(Number(batches[0].b)).toBeGreaterThan(1);
  });

  test('REPLICA IDENTITY FULL: a delete carries the old row', async () => {
    await db.admin.query(`UPDATE audited SET v = 'a2' WHERE id = 1; DELETE FROM audited WHERE id = 2`);
    const got = await changesWhen('cl_audited', 2);
    expect(got.map(({ op, key, row, old_row }) => ({ op, key, row, old_row }))).toEqual([
      { op: 'update', key: { id: 1 }, row: { id: 1, v: 'a2' }, old_row: null },
      { op: 'delete', key: { id: 2 }, row: { id: 2 }, old_row: { id: 2, v: 'b' } },
    ]);
  });

  test('TRUNCATE is recorded as a delete of every live row, with its last values', async () => {
    await db.admin.query(`TRUNCATE audited`);
    const got = (await changesWhen('cl_audited', 3)).slice(2);
    expect(got.map(({ op, key, row, old_row }) => ({ op, key, row, old_row }))).toEqual([{ op: 'delete', key: { id: 1 }, row: { id: 1 }, old_row: { id: 1, v: 'a2' } }]);
    await eventually(async () => expect(await query(platform, 'SELECT toString(count()) AS n FROM cl_audited FINAL')).toEqual([{ n: '0' }]));
  });
});
