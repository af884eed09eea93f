import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { ensureDir } from '../platform/data-dir';

/**
 * The catalog's SQL surface: the few calls Tributary needs, the same on PGlite (embedded)
 * and on Postgres (DATABASE_URL). Everything above this file writes plain Postgres SQL.
 */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

export interface CatalogDb extends Queryable {
  readonly mode: 'embedded' | 'remote';
  exec(sql: string): Promise<void>;
  transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R>;
  close(): Promise<void>;
}

class PgliteDb implements CatalogDb {
  readonly mode = 'embedded' as const;
  constructor(private readonly db: PGlite) {}
  async query<T>(sql: string, params: unknown[] = []) {
    const r = await this.db.query<T>(sql, params);
    return { rows: r.rows };
  }
  async exec(sql: string) {
    await this.db.exec(sql);
  }
  transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R> {
    return this.db.transaction(async (tx) =>
      fn({ query: async <T>(sql: string, params: unknown[] = []) => ({ rows: (await tx.query<T>(sql, params)).rows }) }),
    );
  }
  async close() {
    await this.db.close();
  }
}

class PostgresDb implements CatalogDb {
  readonly mode = 'remote' as const;
  constructor(private readonly pool: pg.Pool) {}
  async query<T>(sql: string, params: unknown[] = []) {
    const r = await this.pool.query(sql, params);
    return { rows: r.rows as T[] };
  }
  async exec(sql: string) {
    await this.pool.query(sql);
  }
  async transaction<R>(fn: (tx: Queryable) => Promise<R>): Promise<R> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn({
        query: async <T>(sql: string, params: unknown[] = []) => ({ rows: (await client.query(sql, params)).rows as T[] }),
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  async close() {
    await this.pool.end();
  }
}

export async function openCatalogDb(opts: { databaseUrl?: string; dataDir: string }): Promise<CatalogDb> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10 });
    await pool.query('SELECT 1');
    return new PostgresDb(pool);
  }
  const dir = ensureDir(path.join(opts.dataDir, 'catalog'));
  // The catalog is small: Postgres's default 128 MB of shared buffers would only bloat the process.
  const db = new PGlite(dir, { postgresqlconf: ['shared_buffers = 16MB'] });
  await db.waitReady;
  return new PgliteDb(db);
}
