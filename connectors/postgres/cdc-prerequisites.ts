import type pg from 'pg';
import type { PostgresConfig } from './config';
import { withConnection } from './connection';

/**
 * What a Postgres server and role need before CDC (logical replication) can run, each missing piece
 * as a message naming the fix. The CDC issue adds the slot and publication checks.
 */
export async function cdcPrerequisiteErrors(client: pg.Client): Promise<string[]> {
  const errors: string[] = [];
  const settings = await client.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')`,
  );
  const setting = (name: string) => settings.rows.find((r) => r.name === name)?.setting;
  const walLevel = setting('wal_level');
  if (walLevel !== 'logical') {
    errors.push(
      `wal_level is "${walLevel}" but CDC needs "logical": run ALTER SYSTEM SET wal_level = logical; then restart Postgres ` +
        '(on Amazon RDS / Aurora set rds.logical_replication = 1 in the parameter group and reboot)',
    );
  }
  for (const name of ['max_replication_slots', 'max_wal_senders']) {
    if (Number(setting(name) ?? 0) < 1) errors.push(`${name} is 0: run ALTER SYSTEM SET ${name} = 10; then restart Postgres`);
  }
  // rds_replication is how managed Postgres grants replication to a non-superuser.
  const role = await client.query<{ user: string; rolreplication: boolean; rolsuper: boolean; rds: boolean }>(
    `SELECT current_user AS user, r.rolreplication, r.rolsuper,
            EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND pg_has_role(current_user, g.oid, 'member')) AS rds
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const me = role.rows[0];
  if (me && !me.rolreplication && !me.rolsuper && !me.rds) {
    errors.push(`user "${me.user}" can not replicate: run ALTER ROLE "${me.user}" WITH REPLICATION; (as a superuser), or grant rds_replication on RDS`);
  }
  return errors;
}

export const checkCdcPrerequisites = (config: PostgresConfig) => withConnection(config, cdcPrerequisiteErrors);
