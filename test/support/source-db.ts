import pg from 'pg';
import { testEnv } from './env';

/**
 * A fresh database on the test Postgres for one test file, plus a password-protected role that
 * Tributary connects as (so bad credentials fail the way they do in production).
 */
export interface SourceDb {
  admin: pg.Client;
  dbname: string;
  host: string;
  port: number;
  user: string;
  password: string;
  drop(): Promise<void>;
}

export async function createSourceDb(name: string): Promise<SourceDb> {
  const base = new URL(testEnv().databaseUrl);
  const dbname = `${name}_${Math.random().toString(36).slice(2, 8)}`;
  const user = `${dbname}_user`;
  const password = `pw-${Math.random().toString(36).slice(2)}-S3cret`;
  const root = new pg.Client({ connectionString: base.toString() });
  await root.connect();
  await root.query(`CREATE DATABASE ${dbname}`);
  await root.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password}'`);
  await root.end();
  const url = new URL(base.toString());
  url.pathname = `/${dbname}`;
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  await admin.query(`GRANT ALL ON SCHEMA public TO ${user}; ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ${user}`);
  return {
    admin,
    dbname,
    host: base.hostname,
    port: Number(base.port || 5432),
    user,
    password,
    async drop() {
      await admin.end();
      const r = new pg.Client({ connectionString: base.toString() });
      await r.connect();
      // Logical slots pin their database: a test that left one behind must not block the drop.
      await r.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
        [dbname],
      );
      for (let i = 0; ; i++) {
        try {
          await r.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [dbname]);
          break;
        } catch (err) {
          if (i >= 20) throw err; // still active: its walsender is on its way out
          await new Promise((res) => setTimeout(res, 250));
        }
      }
      await r.query(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
      await r.query(`DROP ROLE IF EXISTS ${user}`);
      await r.end();
    },
  };
}

export function connectionPayload(db: SourceDb) {
  return { host: db.host, port: String(db.port), dbname: db.dbname, user: db.user, password: db.password, schema: 'public' };
}
