import type { Queryable } from './db';

/**
 * The change log's numbering (migrations/004_change_log.sql): a writer opens a batch, inserts its rows into
 * `_tributary_changes` carrying the number, then closes it. Readers stop before the lowest batch still open.
 */
export async function openChangeBatch(db: Queryable, sourceId: string | null, table: string): Promise<bigint> {
  const r = await db.query<{ batch: string }>('INSERT INTO change_batches (source_id, table_name) VALUES ($1, $2) RETURNING batch::text AS batch', [sourceId, table]);
  return BigInt(r.rows[0].batch);
}

export async function closeChangeBatch(db: Queryable, batch: bigint, changes: number): Promise<void> {
  await db.query(`UPDATE change_batches SET state = 'done', changes = $2, closed_at = now() WHERE batch = $1`, [batch.toString(), changes]);
}

/** A writer that failed: its batch is closed (whatever rows landed are readable, duplicates are allowed). */
export async function failChangeBatch(db: Queryable, batch: bigint): Promise<void> {
  await db.query(`UPDATE change_batches SET state = 'failed', closed_at = now() WHERE batch = $1 AND state = 'open'`, [batch.toString()]);
}

/**
 * The highest batch a reader past `after` may read up to: every batch number between is closed. A batch still
 * open is waited for unless it was opened more than `leaseMs` ago (a writer killed holding it: what it wrote is
 * read late rather than block every destination for ever). A number missing from the table (a writer's
 * transaction not committed yet, or a nextval rolled back) is waited for while the batch after it is younger
 * than `gapMs`.
 */
export async function readableChangeHorizon(db: Queryable, after: bigint, opts: { leaseMs: number; gapMs?: number; scan?: number }): Promise<bigint> {
  const r = await db.query<{ batch: string; state: string; age_ms: number }>(
    `SELECT batch::text AS batch, state, (extract(epoch FROM now() - opened_at) * 1000)::float8 AS age_ms
       FROM change_batches WHERE batch > $1 ORDER BY batch LIMIT $2`,
    [after.toString(), opts.scan ?? 10_000],
  );
  let horizon = after;
  for (const row of r.rows) {
    const batch = BigInt(row.batch);
    const age = Number(row.age_ms);
    if (batch !== horizon + 1n && age < (opts.gapMs ?? 5_000)) break;
    if (row.state === 'open' && age < opts.leaseMs) break;
    horizon = batch;
  }
  return horizon;
}

/** The first batch opened at or after `at` (for "replay from time T"): a checkpoint just before it. */
export async function firstChangeBatchSince(db: Queryable, at: Date): Promise<bigint | null> {
  const r = await db.query<{ batch: string | null }>('SELECT min(batch)::text AS batch FROM change_batches WHERE opened_at >= $1', [at]);
  return r.rows[0].batch === null ? null : BigInt(r.rows[0].batch);
}

/** Forgets the numbering of batches older than the change log keeps (closed ones: done or failed). */
export async function pruneChangeBatches(db: Queryable, olderThan: Date): Promise<number> {
  const r = await db.query<{ n: string }>(`WITH gone AS (DELETE FROM change_batches WHERE state IN ('done', 'failed') AND opened_at < $1 RETURNING 1) SELECT count(*)::text AS n FROM gone`, [olderThan]);
  return Number(r.rows[0].n);
}

/**
 * At the start of the only process that can write the catalog (the embedded one): every batch still open was left
 * by a process that died writing it. Closed as failed (what it wrote is readable), so readers go on at once
 * instead of waiting out the lease. Returns how many.
 */
export async function failOrphanedChangeBatches(db: Queryable): Promise<number> {
  const r = await db.query<{ n: string }>(`WITH gone AS (UPDATE change_batches SET state = 'failed', closed_at = now() WHERE state = 'open' RETURNING 1) SELECT count(*)::text AS n FROM gone`);
  return Number(r.rows[0].n);
}
