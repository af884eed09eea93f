import type { Queryable } from './db';

/** The catalog side of a CDC mirror (see migrations/002_cdc.sql). */
export interface CdcMirrorRow {
  source_id: string;
  slot_name: string;
  publication_name: string;
  checkpoint_lsn: string | null;
  status: string;
  paused: boolean;
  changes_synced: string | number;
  lag_bytes: string | number | null;
  lag_checked_at: Date | null;
  last_commit_at: Date | null;
  last_applied_at: Date | null;
  latest_error: string | null;
  updated_at: Date;
}

export async function getCdcMirror(db: Queryable, sourceId: string): Promise<CdcMirrorRow | undefined> {
  return (await db.query<CdcMirrorRow>('SELECT * FROM cdc_mirrors WHERE source_id = $1', [sourceId])).rows[0];
}

export async function listCdcMirrors(db: Queryable): Promise<Map<string, CdcMirrorRow>> {
  const rows = (await db.query<CdcMirrorRow>('SELECT * FROM cdc_mirrors')).rows;
  return new Map(rows.map((r) => [r.source_id, r]));
}

export async function ensureCdcMirror(db: Queryable, sourceId: string, slot: string, publication: string): Promise<CdcMirrorRow> {
  await db.query(
    `INSERT INTO cdc_mirrors (source_id, slot_name, publication_name) VALUES ($1, $2, $3) ON CONFLICT (source_id) DO NOTHING`,
    [sourceId, slot, publication],
  );
  return (await getCdcMirror(db, sourceId))!;
}

export async function setCdcStatus(db: Queryable, sourceId: string, status: string, error: string | null = null): Promise<void> {
  await db.query(`UPDATE cdc_mirrors SET status = $2, latest_error = $3, updated_at = now() WHERE source_id = $1`, [sourceId, status, error]);
}

export async function setCdcPaused(db: Queryable, sourceId: string, paused: boolean): Promise<void> {
  await db.query(`UPDATE cdc_mirrors SET paused = $2, updated_at = now() WHERE source_id = $1`, [sourceId, paused]);
}

/**
 * Saved after the warehouse has every change up to `lsn`, and before the slot is acknowledged. `commitAt` (the
 * source's commit time of that commit) and the moment it became durable give the replication delay.
 */
export async function saveCdcCheckpoint(db: Queryable, sourceId: string, lsn: string, changes: number, commitAt: Date | null = null): Promise<void> {
  await db.query(
    `UPDATE cdc_mirrors SET checkpoint_lsn = $2, changes_synced = changes_synced + $3, updated_at = now(),
            last_commit_at = coalesce($4::timestamptz, last_commit_at), last_applied_at = CASE WHEN $4::timestamptz IS NULL THEN last_applied_at ELSE now() END
      WHERE source_id = $1`,
    [sourceId, lsn, changes, commitAt],
  );
}

export async function resetCdcCheckpoint(db: Queryable, sourceId: string): Promise<void> {
  await db.query(`UPDATE cdc_mirrors SET checkpoint_lsn = NULL, lag_bytes = NULL, last_commit_at = NULL, last_applied_at = NULL, updated_at = now() WHERE source_id = $1`, [sourceId]);
}

/** How long lag measurements are kept for the history (a day of one-minute checks is 1,440 rows a source). */
export const LAG_HISTORY_HOURS = 24;

export async function saveCdcLag(db: Queryable, sourceId: string, lagBytes: number | null): Promise<void> {
  await db.query(`UPDATE cdc_mirrors SET lag_bytes = $2, lag_checked_at = now() WHERE source_id = $1`, [sourceId, lagBytes]);
  if (lagBytes === null) return;
  await db.query(`INSERT INTO cdc_lag_samples (source_id, lag_bytes) VALUES ($1, $2)`, [sourceId, lagBytes]);
  // Pruned as it grows, so no sweeper is needed.
  await db.query(`DELETE FROM cdc_lag_samples WHERE source_id = $1 AND at < now() - make_interval(hours => $2)`, [sourceId, LAG_HISTORY_HOURS]);
}

/** The lag measurements of the last `hours`, oldest first. */
export async function cdcLagHistory(db: Queryable, sourceId: string, hours: number): Promise<{ at: string; lag_bytes: number }[]> {
  const rows = (
    await db.query<{ at: Date | string; lag_bytes: string | number }>(
      `SELECT at, lag_bytes FROM cdc_lag_samples WHERE source_id = $1 AND at >= now() - make_interval(hours => $2) ORDER BY at`,
      [sourceId, hours],
    )
  ).rows;
  return rows.map((r) => ({ at: new Date(r.at).toISOString(), lag_bytes: Number(r.lag_bytes) }));
}

export async function markSnapshotDone(db: Queryable, schemaId: string, rows: number): Promise<void> {
  await db.query(
    `UPDATE schemas SET cdc_snapshot_at = now(), status = 'Completed', last_synced_at = now(), rows_synced = $2, latest_error = NULL, updated_at = now() WHERE id = $1`,
    [schemaId, rows],
  );
}

/** A table leaving CDC (or being resynced) needs a new snapshot when it comes back. */
export async function clearSnapshots(db: Queryable, schemaIds: string[]): Promise<void> {
  if (schemaIds.length) await db.query(`UPDATE schemas SET cdc_snapshot_at = NULL WHERE id = ANY($1::uuid[])`, [schemaIds]);
}

/** Counts streamed changes per table onto its schema row, so the source list shows activity. */
export async function recordStreamedChanges(db: Queryable, sourceId: string, perTable: Map<string, number>): Promise<void> {
  for (const [name, n] of perTable) {
    await db.query(
      `UPDATE schemas SET rows_synced = coalesce(rows_synced, 0) + $3, last_synced_at = now(), status = 'Completed', updated_at = now()
        WHERE source_id = $1 AND name = $2`,
      [sourceId, name, n],
    );
  }
}
