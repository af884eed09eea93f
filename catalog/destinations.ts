import type { DestinationSecrets, HealthState, WebhookDestinationConfig } from '../destinations/types';
import type { Queryable } from './db';

/** A destination as stored (migrations/004_change_log.sql). `secrets` is sealed: open it with the catalog's SecretBox. */
export interface DestinationRow {
  id: string;
  name: string;
  type: 'webhook';
  config: WebhookDestinationConfig;
  secrets: string | null;
  enabled: boolean;
  health_state: HealthState;
  health: Record<string, unknown>;
  disabled_until: Date | null;
  /** A bigint, as text. */
  checkpoint_batch: string;
  checkpoint_seq: number;
  latest_error: string | null;
  created_at: Date;
  updated_at: Date;
}

export type { DestinationSecrets };

// checkpoint_seq as float8: a JS number, and exact up to END_OF_BATCH_SEQ (2^32 - 1), which int4 cannot hold.
const COLUMNS = `id, name, type, config, secrets, enabled, health_state, health, disabled_until, checkpoint_batch::text AS checkpoint_batch,
  checkpoint_seq::float8 AS checkpoint_seq, latest_error, created_at, updated_at`;

export async function getDestination(db: Queryable, id: string): Promise<DestinationRow | undefined> {
  return (await db.query<DestinationRow>(`SELECT ${COLUMNS} FROM destinations WHERE id = $1`, [id])).rows[0];
}

export async function listDestinations(db: Queryable): Promise<DestinationRow[]> {
  return (await db.query<DestinationRow>(`SELECT ${COLUMNS} FROM destinations ORDER BY created_at, id`)).rows;
}

export async function insertDestination(
  db: Queryable,
  d: { id: string; name: string; type: 'webhook'; config: WebhookDestinationConfig; secrets: string | null; enabled: boolean; checkpoint_batch: bigint; checkpoint_seq?: number },
): Promise<DestinationRow> {
  const r = await db.query<DestinationRow>(
    `INSERT INTO destinations (id, name, type, config, secrets, enabled, checkpoint_batch, checkpoint_seq) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
     RETURNING ${COLUMNS}`,
    [d.id, d.name, d.type, JSON.stringify(d.config), d.secrets, d.enabled, d.checkpoint_batch.toString(), d.checkpoint_seq ?? 0],
  );
  return r.rows[0];
}

/** The delivery's checkpoint: the last change delivered or skipped. Never moves back. */
export async function saveDestinationCheckpoint(db: Queryable, id: string, batch: bigint, seq: number): Promise<void> {
  await db.query(
    `UPDATE destinations SET checkpoint_batch = $2, checkpoint_seq = $3
      WHERE id = $1 AND (checkpoint_batch, checkpoint_seq) < ($2::bigint, $3::bigint)`,
    [id, batch.toString(), seq],
  );
}

export async function deleteDestination(db: Queryable, id: string): Promise<boolean> {
  return ((await db.query<{ id: string }>('DELETE FROM destinations WHERE id = $1 RETURNING id', [id])).rows.length > 0);
}

/**
 * "After every change of batch N": a checkpoint's seq past any seq a batch has (the change log's seq is a
 * UInt32 counting a batch's changes from 1). The delivery uses the same value (activities/deliver.ts).
 */
export const END_OF_BATCH_SEQ = 4_294_967_295;

/** Where a destination starting "now" checkpoints: after the batches written so far (0 when none). */
export async function latestChangeBatch(db: Queryable, leaseMs = 600_000): Promise<bigint> {
  // Just before the lowest batch still being written: its changes landed as the destination was made, and a
  // checkpoint past it would skip them for good.
  const r = await db.query<{ batch: string | null }>(
    `SELECT coalesce((SELECT min(batch) - 1 FROM change_batches WHERE state = 'open' AND opened_at > now() - ($1::bigint * interval '1 millisecond')), (SELECT max(batch) FROM change_batches))::text AS batch`,
    [leaseMs],
  );
  return r.rows[0].batch === null ? 0n : BigInt(r.rows[0].batch);
}

/** The fields an edit may change; `resetHealth` makes it healthy again (an edit of a disabled destination). */
export async function updateDestination(
  db: Queryable,
  id: string,
  d: {
    name?: string;
    config?: WebhookDestinationConfig;
    secrets?: string | null;
    enabled?: boolean;
    checkpoint?: { batch: bigint; seq: number };
    resetHealth?: boolean;
  },
): Promise<DestinationRow | undefined> {
  const sets: string[] = ['updated_at = now()'];
  const params: unknown[] = [id];
  const set = (col: string, v: unknown, cast = '') => {
    params.push(v);
    sets.push(`${col} = $${params.length}${cast}`);
  };
  if (d.name !== undefined) set('name', d.name);
  if (d.config !== undefined) set('config', JSON.stringify(d.config), '::jsonb');
  if (d.secrets !== undefined) set('secrets', d.secrets);
  if (d.enabled !== undefined) set('enabled', d.enabled);
  if (d.checkpoint) {
    set('checkpoint_batch', d.checkpoint.batch.toString(), '::bigint');
    set('checkpoint_seq', d.checkpoint.seq, '::bigint');
  }
  if (d.resetHealth) sets.push(`health_state = 'healthy'`, `health = '{}'::jsonb`, 'disabled_until = NULL', 'latest_error = NULL');
  const r = await db.query<DestinationRow>(`UPDATE destinations SET ${sets.join(', ')} WHERE id = $1 RETURNING ${COLUMNS}`, params);
  return r.rows[0];
}
