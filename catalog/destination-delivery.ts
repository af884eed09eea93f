import type { Health } from '../destinations/health';
import type { Queryable } from './db';

/**
 * What the delivery (activities/deliver.ts) writes to a destination's row: its checkpoint, its health (as
 * destinations/health.ts keeps it) and the latest error. Every write is conditional on the row's `updated_at`
 * being the version the delivery read: an edit through the API (a new config, a reset health, a replay's
 * checkpoint moved back) is never overwritten by a delivery that has not yet seen it. A write that finds the row
 * edited (or gone) answers false, and the delivery stops to read it again.
 */

/** The row's version: `updated_at` in microseconds since the epoch, as text. */
export async function destinationVersion(db: Queryable, id: string): Promise<string | undefined> {
  const r = await db.query<{ v: string }>(`SELECT (extract(epoch FROM updated_at) * 1000000)::bigint::text AS v FROM destinations WHERE id = $1`, [id]);
  return r.rows[0]?.v;
}

const SAME_VERSION = `(extract(epoch FROM updated_at) * 1000000)::bigint = $2::bigint`;

/** Moves the checkpoint forward (never back) to (batch, seq): the last change delivered, rejected or filtered. */
export async function saveDeliveryCheckpoint(db: Queryable, id: string, version: string, batch: bigint, seq: number): Promise<boolean> {
  const r = await db.query(
    `UPDATE destinations SET
        checkpoint_batch = CASE WHEN (checkpoint_batch, checkpoint_seq) < ($3::bigint, $4::bigint) THEN $3::bigint ELSE checkpoint_batch END,
        checkpoint_seq = CASE WHEN (checkpoint_batch, checkpoint_seq) < ($3::bigint, $4::bigint) THEN $4::bigint ELSE checkpoint_seq END
      WHERE id = $1 AND ${SAME_VERSION} RETURNING id`,
    [id, version, batch.toString(), seq],
  );
  return r.rows.length > 0;
}

export async function saveDestinationHealth(db: Queryable, id: string, version: string, health: Health, latestError?: string | null): Promise<boolean> {
  const r = await db.query(
    `UPDATE destinations SET health_state = $3, health = $4::jsonb, disabled_until = $5${latestError !== undefined ? ', latest_error = $6' : ''}
      WHERE id = $1 AND ${SAME_VERSION} RETURNING id`,
    [
      id,
      version,
      health.state,
      JSON.stringify(health),
      health.disabledUntil === null ? null : new Date(health.disabledUntil),
      ...(latestError !== undefined ? [latestError] : []),
    ],
  );
  return r.rows.length > 0;
}
