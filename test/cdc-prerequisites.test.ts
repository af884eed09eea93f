import {
  capacityErrors,
  serverErrors,
  serverSupportsCdc,
  tableErrors,
  tableSupportsCdc,
  type ServerFacts,
  type TableFacts,
} from '../connectors/postgres/cdc-prerequisites';

/** The CDC pre-flight's messages from given facts: the arithmetic and wording the e2e test can not reach safely. */
const server = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  versionNum: 150004,
  version: '15.4',
  walLevel: 'logical',
  maxSlots: 10,
  usedSlots: 3,
  maxSenders: 10,
  usedSenders: 2,
  user: 'reader',
  dbname: 'shop',
  superuser: false,
  replication: true,
  rdsReplication: false,
  canCreateInDb: true,
  schemaUsage: true,
  ...over,
});
const table = (over: Partial<TableFacts> = {}): TableFacts => ({
  name: 'orders',
  kind: 'r',
  isPartition: false,
  replident: 'd',
  hasPk: true,
  hasIdColumn: true,
  canSelect: true,
  owns: true,
  owner: 'reader',
  ownerIsSuperuser: false,
  ...over,
});

describe('CDC prerequisite messages', () => {
  test('free replication slots and WAL senders: max minus in use, with the counts and the fix', () => {
    expect(capacityErrors({ maxSlots: 10, usedSlots: 9, maxSenders: 10, usedSenders: 9 })).toEqual([]);
    expect(capacityErrors({ maxSlots: 10, usedSlots: 10, maxSenders: 5, usedSenders: 5 })).toEqual([
      "no free replication slot: 10 of max_replication_slots = 10 are in use (SELECT slot_name, active FROM pg_replication_slots;): drop an unused one with SELECT pg_drop_replication_slot('<slot_name>'); or run ALTER SYSTEM SET max_replication_slots = 20; then restart Postgres",
      'no free WAL sender: 5 of max_wal_senders = 5 are in use (SELECT pid, application_name FROM pg_stat_replication;): run ALTER SYSTEM SET max_wal_senders = 15; then restart Postgres',
    ]);
    expect(capacityErrors({ maxSlots: 0, usedSlots: 0, maxSenders: 0, usedSenders: 0 })).toEqual([
      expect.stringMatching(/^max_replication_slots is 0.*ALTER SYSTEM SET max_replication_slots = 10;/),
      expect.stringMatching(/^max_wal_senders is 0.*ALTER SYSTEM SET max_wal_senders = 10;/),
    ]);
  });

  test('server: version, wal_level (current value, restart), replication, CREATE on the database, schema usage', () => {
    expect(serverErrors(server(), 'public')).toEqual([]);
    expect(serverErrors(server({ versionNum: 120015, version: '12.15' }), 'public')).toEqual([expect.stringMatching(/^Postgres 12\.15 is too old for CDC: version 13 or newer/)]);
    expect(serverErrors(server({ walLevel: 'replica' }), 'public')).toEqual([expect.stringMatching(/^wal_level is "replica".*ALTER SYSTEM SET wal_level = logical; then restart Postgres/)]);
    expect(serverErrors(server({ replication: false }), 'public')).toEqual([expect.stringContaining('ALTER ROLE "reader" WITH REPLICATION;')]);
    expect(serverErrors(server({ replication: false, rdsReplication: true }), 'public')).toEqual([]);
    expect(serverErrors(server({ replication: false, superuser: true }), 'public')).toEqual([]);
    expect(serverErrors(server({ canCreateInDb: false }), 'public')).toEqual([expect.stringContaining('GRANT CREATE ON DATABASE "shop" TO "reader";')]);
    expect(serverErrors(server({ schemaUsage: false }), 'sales')).toEqual([expect.stringContaining('GRANT USAGE ON SCHEMA "sales" TO "reader";')]);
    expect(serverErrors(server({ schemaUsage: null }), 'sales')).toEqual(['schema "sales" does not exist in database "shop"']);
  });

  test('tables: key or REPLICA IDENTITY FULL, SELECT, ownership; views and partitions named', () => {
    const s = server();
    expect(tableErrors(s, 'public', table())).toEqual([]);
    expect(tableErrors(s, 'public', table({ hasPk: false, replident: 'f' }))).toEqual([]);
    expect(tableErrors(s, 'public', table({ hasPk: false, hasIdColumn: false }))).toEqual([
      'table "public"."orders" has no primary key, so CDC can not match its updates and deletes to rows: run ALTER TABLE "public"."orders" ADD PRIMARY KEY (<unique, non-null columns>); or ALTER TABLE "public"."orders" REPLICA IDENTITY FULL;',
    ]);
    expect(tableErrors(s, 'public', table({ replident: 'n' }))).toEqual([expect.stringContaining('REPLICA IDENTITY DEFAULT;')]);
    expect(tableErrors(s, 'public', table({ replident: 'i' }))).toEqual([expect.stringContaining('USING INDEX')]);
    expect(tableErrors(s, 'public', table({ canSelect: false }))).toEqual(['user "reader" can not read "public"."orders": run GRANT SELECT ON "public"."orders" TO "reader";']);
    expect(tableErrors(s, 'public', table({ owns: false, owner: 'app' }))).toEqual([
      expect.stringMatching(/^user "reader" does not own "public"\."orders" \(its owner is "app"\).*ALTER TABLE "public"\."orders" OWNER TO "reader"; or GRANT "app" TO "reader";/),
    ]);
    // Membership in a superuser role would hand over far more than one table: not suggested.
    expect(tableErrors(s, 'public', table({ owns: false, owner: 'postgres', ownerIsSuperuser: true }))[0]).not.toContain('GRANT "postgres"');
    expect(tableErrors(s, 'public', table({ kind: 'm' }))).toEqual(['"public"."orders" is a materialized view: only tables can be replicated with CDC']);
    expect(tableErrors(s, 'public', table({ isPartition: true }))).toEqual([expect.stringContaining('is a partition')]);
  });

  test('cdc_available: the server can replicate and the table has a key and is readable (ownership aside)', () => {
    expect(tableSupportsCdc(server(), table())).toBe(true);
    expect(tableSupportsCdc(server(), table({ owns: false }))).toBe(true);
    expect(tableSupportsCdc(server(), table({ kind: 'p' }))).toBe(true);
    expect(tableSupportsCdc(server(), table({ hasPk: false }))).toBe(false);
    expect(tableSupportsCdc(server(), table({ hasPk: false, replident: 'f' }))).toBe(true);
    expect(tableSupportsCdc(server(), table({ canSelect: false }))).toBe(false);
    expect(tableSupportsCdc(server(), table({ kind: 'v' }))).toBe(false);
    for (const bad of [{ walLevel: 'replica' }, { replication: false }, { versionNum: 120000 }]) {
      expect(serverSupportsCdc(server(bad))).toBe(false);
      expect(tableSupportsCdc(server(bad), table())).toBe(false);
    }
    // Slots in use are a moment's state, not a property of the table.
    expect(serverSupportsCdc(server({ usedSlots: 10 }))).toBe(true);
  });
});
