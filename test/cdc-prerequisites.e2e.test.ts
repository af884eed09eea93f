import fs from 'node:fs';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import * as R from '../api/response-schemas';
import { cdcPublicationName, cdcSlotName } from '../connectors/postgres/cdc-names';
import { readServerFacts } from '../connectors/postgres/cdc-prerequisites';
import { postgresConfigSchema } from '../connectors/postgres/config';
import { postgresConnector } from '../connectors/postgres';
import { testEnv } from './support/env';
import { makeDataDir, startPlatform, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * The CDC pre-flight (POST /api/sources/check-cdc-prerequisites), db-schema's cdc_available and the
 * connector's cleanup of slot and publication, against the real Postgres (wal_level = logical).
 * The source role starts as createSourceDb makes it: no REPLICATION, not a superuser, owning nothing.
 */
describe('CDC prerequisites, cdc_available and cleanup', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;

  const check = async (extra: Record<string, unknown> = {}, payload = () => connectionPayload(db)) => {
    const res = await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...payload(), ...extra });
    expect(res.status).toBe(200);
    return R.cdcCheckResult.parse(res.body);
  };
  const errorsFor = async (tables: string[]) => (await check({ tables })).errors;
  const cdcAvailable = async (): Promise<Record<string, boolean | null>> => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Postgres', ...connectionPayload(db) });
    expect(res.status).toBe(200);
    return Object.fromEntries(res.body.map((t: { table: string; cdc_available: boolean | null }) => [t.table, t.cdc_available]));
  };
  const role = () => `"${db.user}"`;
  const config = () => postgresConfigSchema.parse(connectionPayload(db));

  beforeAll(async () => {
    db = await createSourceDb('cdcpre');
    // Created by the admin (a superuser); the source role is given ownership only where a test says so.
    await db.admin.query(`
      CREATE TABLE with_pk (id int PRIMARY KEY, v text);
      CREATE TABLE no_pk (id int, v text);
      CREATE TABLE full_ident (label text);
      ALTER TABLE full_ident REPLICA IDENTITY FULL;
      CREATE TABLE secret (id int PRIMARY KEY);
      CREATE TABLE not_mine (id int PRIMARY KEY);
      CREATE VIEW a_view AS SELECT id FROM with_pk;
      ALTER TABLE with_pk OWNER TO ${db.user};
      ALTER TABLE no_pk OWNER TO ${db.user};
      ALTER TABLE full_ident OWNER TO ${db.user};
      ALTER TABLE secret OWNER TO ${db.user};
      REVOKE ALL ON secret FROM ${db.user};
      GRANT SELECT ON not_mine TO ${db.user};
    `);
    dataDir = makeDataDir('cdcpre');
    platform = await startPlatform({ dataDir });
  });

  afterAll(async () => {
    await platform?.stop();
    if (db) await db.admin.query(`ALTER ROLE ${db.user} NOREPLICATION`).catch(() => undefined);
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a role without REPLICATION (nor CREATE on the database) is told the ALTER ROLE and GRANT that fix it', async () => {
    const res = await check({ tables: ['with_pk'] });
    expect(res.valid).toBe(false);
    expect(res.errors).toEqual([
      `user "${db.user}" can not replicate: run ALTER ROLE ${role()} WITH REPLICATION; (as a superuser), or GRANT rds_replication TO ${role()}; on RDS`,
      expect.stringContaining(`GRANT CREATE ON DATABASE "${db.dbname}" TO ${role()};`),
    ]);
    // The old body (connection fields only) still works, and checks the server whatever the tables.
    expect((await check()).errors).toEqual(expect.arrayContaining(res.errors));
    // Not available for CDC anywhere while the role can not replicate.
    expect(Object.values(await cdcAvailable()).every((v) => v === false)).toBe(true);

    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    expect(await check({ tables: ['with_pk'] })).toEqual({ valid: true, errors: [] });
    // seed 001's schemas[]: only the cdc entries are checked.
    expect(
      await check({ schemas: [{ name: 'with_pk', should_sync: true, sync_type: 'cdc' }, { name: 'no_pk', should_sync: true, sync_type: 'full_refresh' }] }),
    ).toEqual({ valid: true, errors: [] });
    expect((await check({ schemas: [{ name: 'no_pk', should_sync: true, sync_type: 'cdc' }] })).valid).toBe(false);

    // A malformed choice is a 400 naming the field.
    for (const [extra, field] of [[{ tables: 'with_pk' }, 'tables'], [{ tables: [''] }, 'tables.0'], [{ schemas: [{ sync_type: 'cdc' }] }, 'schemas.0.name']] as const) {
      const bad = await platform.api('POST', '/api/sources/check-cdc-prerequisites', { source_type: 'Postgres', ...connectionPayload(db), ...extra });
      expect(bad.status).toBe(400);
      expect(bad.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
    }
  });

  test('a superuser is valid on a table with a primary key, and may publish tables it does not own', async () => {
    const admin = new URL(testEnv().databaseUrl);
    const asSuperuser = () => ({ ...connectionPayload(db), user: decodeURIComponent(admin.username), password: decodeURIComponent(admin.password) });
    expect(await check({ tables: ['with_pk', 'not_mine', 'full_ident'] }, asSuperuser)).toEqual({ valid: true, errors: [] });
    expect((await check({ tables: ['no_pk'] }, asSuperuser)).errors).toEqual([expect.stringContaining('has no primary key')]);
  });

  test('a table without a primary key: ADD PRIMARY KEY or REPLICA IDENTITY FULL; with REPLICA IDENTITY FULL it passes', async () => {
    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    expect(await errorsFor(['no_pk'])).toEqual([
      'table "public"."no_pk" has no primary key, so CDC can not match its updates and deletes to rows: ' +
        'run ALTER TABLE "public"."no_pk" ADD PRIMARY KEY (id); or ALTER TABLE "public"."no_pk" REPLICA IDENTITY FULL;',
    ]);
    expect(await errorsFor(['full_ident'])).toEqual([]);
    expect((await cdcAvailable()).no_pk).toBe(false);

    await db.admin.query('ALTER TABLE no_pk REPLICA IDENTITY FULL');
    expect(await errorsFor(['no_pk'])).toEqual([]);
    expect((await cdcAvailable()).no_pk).toBe(true);
    await db.admin.query('ALTER TABLE no_pk REPLICA IDENTITY DEFAULT');

    // A key that deletes would not carry is refused too.
    await db.admin.query('ALTER TABLE with_pk REPLICA IDENTITY NOTHING');
    expect(await errorsFor(['with_pk'])).toEqual([expect.stringContaining('ALTER TABLE "public"."with_pk" REPLICA IDENTITY DEFAULT;')]);
    expect((await cdcAvailable()).with_pk).toBe(false);
    await db.admin.query('ALTER TABLE with_pk REPLICA IDENTITY DEFAULT');
  });

  test('no SELECT: the GRANT; a missing table is named; a table the role does not own: the ownership fix', async () => {
    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    expect(await errorsFor(['secret'])).toEqual([`user "${db.user}" can not read "public"."secret": run GRANT SELECT ON "public"."secret" TO ${role()};`]);
    expect(await errorsFor(['nope'])).toEqual(['table "nope" does not exist in schema "public"']);
    expect(await errorsFor(['not_mine'])).toEqual([
      expect.stringMatching(
        new RegExp(`^user "${db.user}" does not own "public"\\."not_mine" \\(its owner is "postgres"\\).*ALTER TABLE "public"\\."not_mine" OWNER TO ${role()};`),
      ),
    ]);
    expect(await errorsFor(['a_view'])).toEqual(['"public"."a_view" is a view: only tables can be replicated with CDC']);

    // Without a choice, every table db-schema would offer for CDC is checked and reported (views are not offered).
    const all = await check();
    expect(all.valid).toBe(false);
    expect(all.errors).toEqual([
      expect.stringContaining('"public"."no_pk" has no primary key'),
      expect.stringContaining('does not own "public"."not_mine"'),
      expect.stringContaining('can not read "public"."secret"'),
    ]);

    const available = await cdcAvailable();
    expect(available).toEqual({ a_view: false, full_ident: true, no_pk: false, not_mine: true, secret: false, with_pk: true });
    await db.admin.query(`GRANT SELECT ON secret TO ${db.user}`);
    expect(await errorsFor(['secret'])).toEqual([]);
    expect((await cdcAvailable()).secret).toBe(true);
  });

  test('free replication slots and WAL senders are counted from pg_replication_slots and pg_stat_replication', async () => {
    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    const client = new pg.Client({ ...connectionPayload(db), port: db.port, database: db.dbname });
    await client.connect();
    try {
      const before = await readServerFacts(client, 'public');
      expect(before.maxSlots).toBeGreaterThan(0);
      await db.admin.query(`SELECT pg_create_logical_replication_slot('cdcpre_count_probe', 'pgoutput')`);
      try {
        const after = await readServerFacts(client, 'public');
        expect(after.usedSlots).toBe(before.usedSlots + 1);
        expect(after.maxSlots - after.usedSlots).toBeGreaterThan(0);
        expect(await check({ tables: ['with_pk'] })).toEqual({ valid: true, errors: [] });
      } finally {
        await db.admin.query(`SELECT pg_drop_replication_slot('cdcpre_count_probe')`);
      }
    } finally {
      await client.end();
    }
  });

  test('cleanup terminates the walsender on the slot, drops slot and publication; without them it does not throw', async () => {
    await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
    const id = '7d9c4e1a-0b2f-4c3d-9e8f-a1b2c3d4e5f6';
    const [slot, pub] = [cdcSlotName(id), cdcPublicationName(id)];
    // As Tributary would: the source role creates both.
    const owner = new pg.Client({ ...connectionPayload(db), port: db.port, database: db.dbname });
    await owner.connect();
    await owner.query(`CREATE PUBLICATION ${pub} FOR TABLE with_pk`);
    await owner.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await owner.end();

    // Hold the slot with a live replication connection.
    const service = new LogicalReplicationService(
      { host: db.host, port: db.port, database: db.dbname, user: db.user, password: db.password },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    const streamErrors: Error[] = [];
    service.on('error', (err) => void streamErrors.push(err));
    const streaming = service
      .subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [pub] }), slot)
      .catch((err: Error) => void streamErrors.push(err));
    const activePid = async () =>
      (await db.admin.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]?.active_pid;
    for (let i = 0; !(await activePid()) && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await activePid()).toEqual(expect.any(Number));

    try {
      await postgresConnector.cleanup!(config(), { id, prefix: 'cdcpre' });
      expect((await db.admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount).toBe(0);
      expect((await db.admin.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [pub])).rowCount).toBe(0);
      // Nothing left to drop: no error, and nothing else touched.
      await expect(postgresConnector.cleanup!(config(), { id, prefix: 'cdcpre' })).resolves.toBeUndefined();
      await expect(postgresConnector.cleanup!(config(), { id: '00000000-0000-4000-8000-000000000000', prefix: 'other' })).resolves.toBeUndefined();
    } finally {
      await service.destroy().catch(() => undefined);
      await Promise.race([streaming, new Promise((r) => setTimeout(r, 2000))]);
    }
  });
});
