import type pg from 'pg';
import type { PostgresConfig } from './config';
import { qualified, quotePgIdent, withConnection } from './connection';

/**
 * What a Postgres server, role and set of tables need before CDC (logical replication) can run, each
 * missing piece as a message naming the SQL that fixes it. The facts are read in two queries (one for
 * the server and role, one for every table of the schema), so discover can use them too.
 */

export const MIN_CDC_VERSION_NUM = 130000;

export interface ServerFacts {
  versionNum: number;
  version: string;
  walLevel: string;
  maxSlots: number;
  usedSlots: number;
  maxSenders: number;
  usedSenders: number;
  user: string;
  dbname: string;
  superuser: boolean;
  replication: boolean;
  rdsReplication: boolean;
  /** CREATE on the database: CREATE PUBLICATION needs it. */
  canCreateInDb: boolean;
  /** USAGE on the configured schema; null when the schema does not exist. */
  schemaUsage: boolean | null;
}

export interface TableFacts {
  name: string;
  /** pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign table. */
  kind: string;
  isPartition: boolean;
  /** pg_class.relreplident: d default (the primary key), f full, i index, n nothing. */
  replident: string;
  hasPk: boolean;
  hasIdColumn: boolean;
  canSelect: boolean;
  /** current_user is the owner or a member of the owning role (superusers always are). */
  owns: boolean;
  owner: string;
  /** The owner is a superuser: membership in it is not a fix to suggest. */
  ownerIsSuperuser: boolean;
}

export async function readServerFacts(client: pg.Client, schema: string): Promise<ServerFacts> {
  const r = await client.query(
    `SELECT current_setting('server_version_num')::int AS "versionNum",
            current_setting('server_version') AS version,
            current_setting('wal_level') AS "walLevel",
            current_setting('max_replication_slots')::int AS "maxSlots",
            (SELECT count(*) FROM pg_replication_slots)::int AS "usedSlots",
            current_setting('max_wal_senders')::int AS "maxSenders",
            (SELECT count(*) FROM pg_stat_replication)::int AS "usedSenders",
            current_user AS user, current_database() AS dbname,
            r.rolsuper AS superuser, r.rolreplication AS replication,
            EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(current_user, g.oid, 'member')) AS "rdsReplication",
            has_database_privilege(current_database(), 'CREATE') AS "canCreateInDb",
            (SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = $1) AS "schemaUsage"
       FROM pg_roles r WHERE r.rolname = current_user`,
    [schema],
  );
  return r.rows[0] as ServerFacts;
}

/** Every relation of the schema (partitions only when named), or only the named ones. */
export async function readTableFacts(client: pg.Client, schema: string, names?: string[]): Promise<TableFacts[]> {
  const r = await client.query<TableFacts>(
    `SELECT c.relname AS name, c.relkind AS kind, c.relispartition AS "isPartition", c.relreplident AS replident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS "hasPk",
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped) AS "hasIdColumn",
            has_table_privilege(c.oid, 'SELECT') AS "canSelect",
            pg_has_role(c.relowner, 'USAGE') AS owns,
            pg_get_userbyid(c.relowner) AS owner,
            (SELECT o.rolsuper FROM pg_roles o WHERE o.oid = c.relowner) AS "ownerIsSuperuser"
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND (CASE WHEN $2::text[] IS NULL THEN NOT c.relispartition ELSE c.relname = ANY($2::text[]) END)
      ORDER BY c.relname`,
    [schema, names ?? null],
  );
  return r.rows;
}

/** The server-level facts that decide whether any table can be offered for CDC (db-schema's cdc_available). */
export const serverSupportsCdc = (s: ServerFacts) =>
  s.versionNum >= MIN_CDC_VERSION_NUM && s.walLevel === 'logical' && (s.superuser || s.replication || s.rdsReplication) && s.schemaUsage === true;

/** Tables pgoutput can publish: plain and partitioned tables (views, materialized views and foreign tables can not be). */
export const isReplicable = (t: TableFacts) => (t.kind === 'r' || t.kind === 'p') && !t.isPartition;

/** Deletes and updates carry the key CDC merges on: a primary key used as replica identity, or every column. */
export const hasUsableIdentity = (t: TableFacts) => t.replident === 'f' || (t.replident === 'd' && t.hasPk);

/** db-schema's cdc_available for one table: the server and role can replicate, the table has a key and is readable. */
export const tableSupportsCdc = (s: ServerFacts, t: TableFacts) => serverSupportsCdc(s) && isReplicable(t) && hasUsableIdentity(t) && t.canSelect;

const KIND_NAMES: Record<string, string> = { v: 'a view', m: 'a materialized view', f: 'a foreign table' };
const VERSION_FIX = 'upgrade the server (pg_upgrade, or a major-version upgrade of the managed instance)';

/** Free replication slots and WAL senders, the arithmetic on its own (unit-tested with numbers). */
export function capacityErrors(s: Pick<ServerFacts, 'maxSlots' | 'usedSlots' | 'maxSenders' | 'usedSenders'>): string[] {
  const errors: string[] = [];
  if (s.maxSlots < 1) {
    errors.push('max_replication_slots is 0, so no replication slot can be created: run ALTER SYSTEM SET max_replication_slots = 10; then restart Postgres');
  } else if (s.maxSlots - s.usedSlots < 1) {
    errors.push(
      `no free replication slot: ${s.usedSlots} of max_replication_slots = ${s.maxSlots} are in use (SELECT slot_name, active FROM pg_replication_slots;): ` +
        `drop an unused one with SELECT pg_drop_replication_slot('<slot_name>'); or run ALTER SYSTEM SET max_replication_slots = ${s.maxSlots + 10}; then restart Postgres`,
    );
  }
  if (s.maxSenders < 1) {
    errors.push('max_wal_senders is 0, so no replication connection can be opened: run ALTER SYSTEM SET max_wal_senders = 10; then restart Postgres');
  } else if (s.maxSenders - s.usedSenders < 1) {
    errors.push(
      `no free WAL sender: ${s.usedSenders} of max_wal_senders = ${s.maxSenders} are in use (SELECT pid, application_name FROM pg_stat_replication;): ` +
        `run ALTER SYSTEM SET max_wal_senders = ${s.maxSenders + 10}; then restart Postgres`,
    );
  }
  return errors;
}

export function serverErrors(s: ServerFacts, schema: string): string[] {
  const errors: string[] = [];
  const user = quotePgIdent(s.user);
  if (s.versionNum < MIN_CDC_VERSION_NUM) {
    errors.push(`Postgres ${s.version} is too old for CDC: version 13 or newer is needed (server_version_num is ${s.versionNum}): ${VERSION_FIX}`);
  }
  if (s.walLevel !== 'logical') {
    errors.push(
      `wal_level is "${s.walLevel}" but CDC needs "logical": run ALTER SYSTEM SET wal_level = logical; then restart Postgres ` +
        '(on Amazon RDS / Aurora set rds.logical_replication = 1 in the parameter group and reboot)',
    );
  }
  errors.push(...capacityErrors(s));
  // rds_replication is how managed Postgres grants replication to a non-superuser.
  if (!s.replication && !s.superuser && !s.rdsReplication) {
    errors.push(`user "${s.user}" can not replicate: run ALTER ROLE ${user} WITH REPLICATION; (as a superuser), or GRANT rds_replication TO ${user}; on RDS`);
  }
  if (!s.canCreateInDb) {
    errors.push(
      `user "${s.user}" can not create the publication CDC reads through (CREATE PUBLICATION needs CREATE on the database): ` +
        `run GRANT CREATE ON DATABASE ${quotePgIdent(s.dbname)} TO ${user};`,
    );
  }
  if (s.schemaUsage === null) errors.push(`schema "${schema}" does not exist in database "${s.dbname}"`);
  else if (!s.schemaUsage) errors.push(`user "${s.user}" can not use schema "${schema}": run GRANT USAGE ON SCHEMA ${quotePgIdent(schema)} TO ${user};`);
  return errors;
}

/** Per table: it exists and is a table, its updates and deletes carry a key, it is readable, the publication can include it. */
export function tableErrors(s: ServerFacts, schema: string, t: TableFacts): string[] {
  const name = qualified(schema, t.name);
  const user = quotePgIdent(s.user);
  if (t.isPartition) return [`${name} is a partition: choose its partitioned (parent) table for CDC; changes are published through the root`];
  if (!isReplicable(t)) return [`${name} is ${KIND_NAMES[t.kind] ?? 'not a table'}: only tables can be replicated with CDC`];
  const errors: string[] = [];
  if (!hasUsableIdentity(t)) {
    if (t.replident === 'n') {
      errors.push(
        `table ${name} has REPLICA IDENTITY NOTHING, so its updates and deletes carry no key (and fail once it is published): ` +
          `run ALTER TABLE ${name} REPLICA IDENTITY ${t.hasPk ? 'DEFAULT' : 'FULL'};`,
      );
    } else if (t.replident === 'i') {
      errors.push(
        `table ${name} has REPLICA IDENTITY USING INDEX, so deletes carry that index's columns rather than the primary key: ` +
          `run ALTER TABLE ${name} REPLICA IDENTITY ${t.hasPk ? 'DEFAULT' : 'FULL'};`,
      );
    } else {
      const key = t.hasIdColumn ? 'id' : '<unique, non-null columns>';
      errors.push(
        `table ${name} has no primary key, so CDC can not match its updates and deletes to rows: ` +
          `run ALTER TABLE ${name} ADD PRIMARY KEY (${key}); or ALTER TABLE ${name} REPLICA IDENTITY FULL;`,
      );
    }
  }
  if (!t.canSelect) errors.push(`user "${s.user}" can not read ${name}: run GRANT SELECT ON ${name} TO ${user};`);
  if (!t.owns) {
    errors.push(
      `user "${s.user}" does not own ${name} (its owner is "${t.owner}"), and CREATE PUBLICATION … FOR TABLE only accepts tables ` +
        `the user owns (or a superuser): run ALTER TABLE ${name} OWNER TO ${user};` +
        (t.ownerIsSuperuser ? '' : ` or GRANT ${quotePgIdent(t.owner)} TO ${user}; (membership in the owning role)`) +
        ', or connect as the owner',
    );
  }
  return errors;
}

/**
 * Every problem, server first, then per table. `tables` are the tables chosen for CDC; when omitted
 * every table of the schema that db-schema offers is checked; an empty list checks the server only.
 */
export async function cdcPrerequisiteErrors(client: pg.Client, schema: string, tables?: string[]): Promise<string[]> {
  const server = await readServerFacts(client, schema);
  const errors = serverErrors(server, schema);
  // Before Postgres 10 the table query itself would fail (no partitions); the version error says enough.
  if (server.schemaUsage === null || server.versionNum < 100000 || (tables && tables.length === 0)) return errors;
  const wanted = tables ? [...new Set(tables)] : undefined;
  const facts = await readTableFacts(client, schema, wanted);
  const byName = new Map(facts.map((t) => [t.name, t]));
  for (const name of wanted ?? facts.filter(isReplicable).map((t) => t.name)) {
    const t = byName.get(name);
    if (!t) errors.push(`table "${name}" does not exist in schema "${schema}"`);
    else errors.push(...tableErrors(server, schema, t));
  }
  return errors;
}

export const checkCdcPrerequisites = (config: PostgresConfig, tables?: string[]) =>
  withConnection(config, (client) => cdcPrerequisiteErrors(client, config.schema, tables));
