import pg from 'pg';
import { canonicalWarehouseRow, diffRows, expectedRows, WAREHOUSE_CANONICAL } from './fidelity';
import { query, type RunningPlatform } from './platform';
import type { SourceDb } from './source-db';

/** What a CDC source's role needs: replication, and owning its tables so it may publish them. */
export async function grantCdc(db: SourceDb): Promise<void> {
  await db.admin.query(`ALTER ROLE ${db.user} WITH REPLICATION; GRANT CREATE ON DATABASE ${db.dbname} TO ${db.user}`);
}

/** Runs DDL as the source's role, so it owns the tables it creates. */
export async function asSourceUser(db: SourceDb, sql: string): Promise<void> {
  await db.admin.query(`SET ROLE ${db.user}`);
  try {
    await db.admin.query(sql);
  } finally {
    await db.admin.query('RESET ROLE');
  }
}

/** A second connection to the source database, for interleaved transactions. */
export async function secondClient(db: SourceDb): Promise<pg.Client> {
  const c = new pg.Client({ host: db.host, port: db.port, database: db.dbname, user: db.user, password: db.password });
  await c.connect();
  return c;
}

/** Retries `check` until it passes (CDC is asynchronous); the last failure is thrown. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Whole-table fingerprint on both sides for a table `(id bigint, ... )`: row count and an md5 over a
 * canonical text of the listed columns in id order. `pgExpr`/`chExpr` render one column each.
 */
export async function fingerprints(
  db: SourceDb,
  platform: RunningPlatform,
  source: string,
  target: string,
  cols: { pg: string; ch: string }[],
): Promise<{ source: { n: string; h: string }; warehouse: { n: string; h: string } }> {
  const pgRow = cols.map((c) => `coalesce((${c.pg})::text, '~')`).join(` || '|' || `);
  const chRow = cols.map((c) => `ifNull(toString(${c.ch}), '~')`).join(`, '|', `);
  const src = (await db.admin.query(`SELECT count(*)::text AS n, coalesce(md5(string_agg(${pgRow}, ',' ORDER BY id)), '') AS h FROM ${source}`)).rows[0];
  const wh = (
    await query(
      platform,
      `SELECT toString(count()) AS n, if(count() = 0, '', lower(hex(MD5(arrayStringConcat(arrayMap(x -> x.2, arraySort(x -> x.1, groupArray((id, concat(${chRow}))))), ','))))) AS h
         FROM ${target} FINAL`,
    )
  )[0];
  return { source: src, warehouse: { n: wh.n, h: wh.h } };
}

export async function expectTablesEqual(
  db: SourceDb,
  platform: RunningPlatform,
  source: string,
  target: string,
  cols: { pg: string; ch: string }[],
  timeoutMs = 60_000,
) {
  await eventually(async () => {
    const f = await fingerprints(db, platform, source, target, cols);
    if (f.source.n !== f.warehouse.n || f.source.h !== f.warehouse.h) {
      // Name a few keys that differ, so a failure says where to look.
      const pgIds = new Set((await db.admin.query(`SELECT id::text AS id FROM ${source}`)).rows.map((r) => r.id as string));
      const chIds = new Set((await query(platform, `SELECT toString(id) AS id FROM ${target} FINAL`)).map((r) => r.id as string));
      const missing = [...pgIds].filter((id) => !chIds.has(id)).slice(0, 5);
      const extra = [...chIds].filter((id) => !pgIds.has(id)).slice(0, 5);
      throw new Error(`${target} differs from ${source}: ${JSON.stringify({ ...f, missing, extra })}`);
    }
  }, timeoutMs);
}

/** The fidelity table compared column by column (every type, NULLs, unicode, microseconds). */
export async function expectFidelityEqual(db: SourceDb, platform: RunningPlatform, target: string, timeoutMs = 60_000) {
  await eventually(async () => {
    const expected = await expectedRows(db.admin);
    const actual = (await query(platform, WAREHOUSE_CANONICAL(target))).map(canonicalWarehouseRow);
    const diffs = diffRows(expected, actual);
    if (diffs.length) throw new Error(`${target} differs: ${JSON.stringify(diffs, null, 1)}`);
  }, timeoutMs);
}
