import fs from 'node:fs';
import Stripe from 'stripe';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import { tableChanges, tableChangesWhen, type Change } from './support/change-log';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startStripeFake, type StripeFake } from './support/stripe-fake';

/**
 * The batch write paths record their changes in the change log (`_tributary_changes`), read here through
 * POST /api/query as a user would: incremental runs (inserts and updates, with the old row; re-read unchanged
 * rows record nothing), append runs (inserts), full refreshes (the staging table against the live one before the
 * swap: appeared, changed and vanished rows; a first load is all inserts; a keyless table records nothing and
 * says so), and Stripe webhooks (insert, update with the old row, delete). One platform, a Postgres source and a
 * Stripe source (the local fake).
 */
describe('change log: batch syncs and webhooks', () => {
  let db: SourceDb;
  let fake: StripeFake;
  let platform: RunningPlatform;
  let dataDir: string;
  let pgIds: Record<string, string>;
  let stripeSource: string;
  let stripeIds: Record<string, string>;
  let secret: string;
  const runs: Record<string, number> = {};

  const changes = (table: string) => tableChanges(platform, table);
  const shape = (c: Change[]) => c.map(({ op, key, row, old_row }) => ({ op, key, row, old_row }));
  const byKey = (c: Change[]) => [...c].sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));

  async function sync(name: string) {
    runs[name] = (runs[name] ?? 1) + 1;
    const res = await platform.api('POST', `/api/schemas/${pgIds[name]}/sync`);
    expect(res.status).toBe(202);
    const job = await waitForJobs(platform, pgIds[name], runs[name]);
    expect({ status: job.status, error: job.latest_error ?? null }).toEqual({ status: 'Completed', error: null });
    return job;
  }

  /** The versions the table's live rows carry, by id. */
  const versions = async (table: string) =>
    Object.fromEntries((await query(platform, `SELECT toString(id) AS id, toString(_tributary_version) AS v FROM ${table} FINAL`)).map((r) => [r.id, r.v]));

  async function deliver(event: Record<string, unknown>) {
    const payload = JSON.stringify(event);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    const res = await fetch(`${platform.url}/webhooks/stripe/${stripeSource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
      body: payload,
    });
    expect(res.status).toBe(200);
  }

  const changesWhen = (table: string, n: number) => tableChangesWhen(platform, table, n);

  beforeAll(async () => {
    db = await createSourceDb('chlogb');
    await db.admin.query(`
      CREATE TABLE inc (id int PRIMARY KEY, updated_at timestamptz NOT NULL, name text, amount numeric(10,2));
      INSERT INTO inc VALUES (1, '2024-01-01 00:00:01+00', 'one', 1.50), (2, '2024-01-01 00:00:02+00', 'two', NULL), (3, '2024-01-01 00:00:03+00', 'three', 3.00);
      CREATE TABLE app (id int PRIMARY KEY, created_at timestamptz NOT NULL, msg text);
      INSERT INTO app VALUES (1, '2024-01-01 00:00:01+00', 'a'), (2, '2024-01-01 00:00:02+00', 'b');
      CREATE TABLE full_t (id int PRIMARY KEY, name text NOT NULL, qty int, flag boolean);
      INSERT INTO full_t VALUES (1, 'keep', 1, true), (2, 'change', 2, false), (3, 'vanish', 3, NULL);
      CREATE TABLE nokey (a int, b text);
      INSERT INTO nokey VALUES (1, 'x'), (2, 'y');
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    fake = await startStripeFake();
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    fake.create('customer', { name: 'Existing', email: 'existing@example.com' }, { created: hourAgo });
    dataDir = makeDataDir('chlog');
    platform = await startPlatform({
      dataDir,
      env: { TRIBUTARY_STRIPE_API_URL: fake.url, TRIBUTARY_STRIPE_TEST_RPS: '100', TRIBUTARY_STRIPE_SETTLE_SECONDS: '1', LOG_LEVEL: process.env.TRIBUTARY_TEST_LOG_LEVEL ?? 'warn' },
    });
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'cb',
      payload: {
        ...connectionPayload(db),
        schemas: [
          { name: 'inc', should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', incremental_field_type: 'datetime', sync_frequency: '24hour' },
          { name: 'app', should_sync: true, sync_type: 'append', incremental_field: 'created_at', incremental_field_type: 'datetime', sync_frequency: '24hour' },
          { name: 'full_t', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' },
          { name: 'nokey', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' },
        ],
      },
    });
    expect({ status: res.status, error: res.status === 201 ? undefined : res.body }).toEqual({ status: 201 });
    pgIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    const schemas = STRIPE_TABLES.map((t) =>
      t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'webhook', sync_frequency: '24hour' } : { name: t.name, should_sync: false },
    );
    const s = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'hk', payload: { stripe_secret_key: fake.key, schemas } });
    expect(s.status).toBe(201);
    stripeSource = s.body.id;
    stripeIds = Object.fromEntries(s.body.schemas.map((x: { name: string; id: string }) => [x.name, x.id]));
    for (const id of Object.values(pgIds)) expect((await waitForJobs(platform, id, 1)).status).toBe('Completed');
    expect((await waitForJobs(platform, stripeIds.Customer, 1)).status).toBe('Completed');
    const reg = await platform.api('POST', `/api/sources/${stripeSource}/webhook`);
    expect(reg.body).toMatchObject({ success: true, error: null });
    secret = fake.webhookSecrets.get([...fake.webhookEndpoints.keys()][0])!;
  }, 240_000);

  afterAll(async () => {
    if (process.env.TRIBUTARY_TEST_DUMP) fs.writeFileSync(process.env.TRIBUTARY_TEST_DUMP, platform?.output() ?? '');
    await platform?.stop();
    await fake?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('incremental: the first run inserts; then an update (with the old row) and an insert; a re-read unchanged row records nothing', async () => {
    const first = await changes('cb_inc');
    const v1 = await versions('cb_inc');
    expect(shape(byKey(first))).toEqual([
      { op: 'insert', key: { id: 1 }, row: { id: 1, updated_at: '2024-01-01 00:00:01.000000', name: 'one', amount: 1.5 }, old_row: null },
      { op: 'insert', key: { id: 2 }, row: { id: 2, updated_at: '2024-01-01 00:00:02.000000', name: 'two', amount: null }, old_row: null },
      { op: 'insert', key: { id: 3 }, row: { id: 3, updated_at: '2024-01-01 00:00:03.000000', name: 'three', amount: 3 }, old_row: null },
    ]);
    expect(first.map((c) => c.version)).toEqual([v1['1'], v1['1'], v1['1']]);

    await db.admin.query(`UPDATE inc SET name = 'two!', amount = 2.25, updated_at = '2024-02-01 00:00:00+00' WHERE id = 2; INSERT INTO inc VALUES (4, '2024-02-02 00:00:00+00', 'four', 4.00)`);
    await sync('inc');
    const second = (await changes('cb_inc')).slice(first.length);
    const v2 = await versions('cb_inc');
    // Row 3 (the previous high-water mark) is read again, unchanged: no change.
    expect(shape(second)).toEqual([
      { op: 'update', key: { id: 2 }, row: { id: 2, updated_at: '2024-02-01 00:00:00.000000', name: 'two!', amount: 2.25 }, old_row: { id: 2, updated_at: '2024-01-01 00:00:02.000000', name: 'two', amount: null } },
      { op: 'insert', key: { id: 4 }, row: { id: 4, updated_at: '2024-02-02 00:00:00.000000', name: 'four', amount: 4 }, old_row: null },
    ]);
    expect(second.map((c) => c.version)).toEqual([v2['2'], v2['4']]);
    expect(BigInt(v2['2'])).toBeGreaterThan(BigInt(v1['2']));

    // A run that finds nothing new records nothing.
    await sync('inc');
    expect((await changes('cb_inc')).length).toBe(first.length + second.length);
  });

  test('append: every new row is an insert, earlier rows are not repeated', async () => {
    const first = await changes('cb_app');
    expect(shape(byKey(first))).toEqual([
      { op: 'insert', key: { id: 1 }, row: { id: 1, created_at: '2024-01-01 00:00:01.000000', msg: 'a' }, old_row: null },
      { op: 'insert', key: { id: 2 }, row: { id: 2, created_at: '2024-01-01 00:00:02.000000', msg: 'b' }, old_row: null },
    ]);
    await db.admin.query(`INSERT INTO app VALUES (3, '2024-03-01 00:00:00+00', 'c')`);
    await sync('app');
    const next = (await changes('cb_app')).slice(first.length);
    expect(shape(next)).toEqual([{ op: 'insert', key: { id: 3 }, row: { id: 3, created_at: '2024-03-01 00:00:00.000000', msg: 'c' }, old_row: null }]);
  });

  test('full refresh: a first load is all inserts; then appeared, changed and vanished rows become insert, update and delete with the old row', async () => {
    const first = await changes('cb_full_t');
    expect(shape(byKey(first))).toEqual([
      { op: 'insert', key: { id: 1 }, row: { id: 1, name: 'keep', qty: 1, flag: true }, old_row: null },
      { op: 'insert', key: { id: 2 }, row: { id: 2, name: 'change', qty: 2, flag: false }, old_row: null },
      { op: 'insert', key: { id: 3 }, row: { id: 3, name: 'vanish', qty: 3, flag: null }, old_row: null },
    ]);
    await db.admin.query(`UPDATE full_t SET qty = 20, flag = NULL WHERE id = 2; DELETE FROM full_t WHERE id = 3; INSERT INTO full_t VALUES (4, 'appear', 4, true)`);
    await sync('full_t');
    const next = (await changes('cb_full_t')).slice(first.length);
    const live = await versions('cb_full_t');
    expect(shape(byKey(next))).toEqual([
      { op: 'update', key: { id: 2 }, row: { id: 2, name: 'change', qty: 20, flag: null }, old_row: { id: 2, name: 'change', qty: 2, flag: false } },
      { op: 'delete', key: { id: 3 }, row: { id: 3 }, old_row: { id: 3, name: 'vanish', qty: 3, flag: null } },
      { op: 'insert', key: { id: 4 }, row: { id: 4, name: 'appear', qty: 4, flag: true }, old_row: null },
    ]);
    // The refresh's version: what the swapped-in rows carry.
    expect(new Set(next.map((c) => c.version))).toEqual(new Set([live['1']]));
    expect(BigInt(live['1'])).toBeGreaterThan(BigInt(first[0].version));
    // Nothing changed at the source: nothing recorded.
    await sync('full_t');
    expect((await changes('cb_full_t')).length).toBe(first.length + next.length);
  });

  test('full refresh of a table without a primary key records nothing, and its job says so', async () => {
    const job = await sync('nokey');
    expect(job.warnings).toEqual([expect.stringMatching(/cb_nokey has no primary key: the full refresh recorded no changes/)]);
    expect(await changes('cb_nokey')).toEqual([]);
    expect(await query(platform, 'SELECT toString(count()) AS n FROM cb_nokey')).toEqual([{ n: '2' }]);
  });

  test('Stripe webhooks: created → insert, updated → update with the old row, deleted → delete; versions are the rows’', async () => {
    const initial = await changes('hk_customer');
    // The first (polling) load of the webhook table: its customer is an insert.
    expect(initial.map((c) => [c.op, c.row.name])).toEqual([['insert', 'Existing']]);
    const t = Math.floor(Date.now() / 1000);
    const c = fake.create('customer', { name: 'Ada', email: 'ada@example.com' }, { created: t });
    await deliver(fake.events().at(-1)!);
    await changesWhen('hk_customer', initial.length + 1);
    fake.update('customer', c.id, { name: 'Ada L.' }, { at: t + 5 });
    await deliver(fake.events().at(-1)!);
    await changesWhen('hk_customer', initial.length + 2);
    fake.remove('customer', c.id, { at: t + 10 });
    await deliver(fake.events().at(-1)!);
    const got = (await changesWhen('hk_customer', initial.length + 3)).slice(initial.length);
    expect(got.map((g) => ({ op: g.op, key: g.key, name: g.row.name, email: g.row.email, old: g.old_row?.name ?? null }))).toEqual([
      { op: 'insert', key: { id: c.id }, name: 'Ada', email: 'ada@example.com', old: null },
      { op: 'update', key: { id: c.id }, name: 'Ada L.', email: 'ada@example.com', old: 'Ada' },
      { op: 'delete', key: { id: c.id }, name: undefined, email: undefined, old: 'Ada L.' },
    ]);
    const v = got.map((g) => BigInt(g.version));
    expect(v[1]).toBeGreaterThan(v[0]);
    expect(v[2]).toBeGreaterThan(v[1]);
    // An old delivery replayed late changes nothing the table shows: nothing recorded.
    const again = fake.events().find((e) => e.type === 'customer.updated' && (e.data as { object: { id: string } }).object.id === c.id)!;
    await deliver({ ...again, id: `${again.id}_late` });
    // Then a new customer: once its insert is there, the late delivery before it has been applied too.
    const grace = fake.create('customer', { name: 'Grace' }, { created: t + 15 });
    await deliver(fake.events().at(-1)!);
    const after = (await changesWhen('hk_customer', initial.length + 4)).slice(initial.length + 3);
    expect(after.map((g) => [g.op, g.key, g.row.name])).toEqual([['insert', { id: grace.id }, 'Grace']]);
  });
});
