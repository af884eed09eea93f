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

const COLUMNS = `id, name, type, config, secrets, enabled, health_state, health, disabled_until, checkpoint_batch::text AS checkpoint_batch,
  checkpoint_seq::int AS checkpoint_seq, latest_error, created_at, updated_at`;

export async function getDestination(db: Queryable, id: string): Promise<DestinationRow | undefined> {
  return (await db.query<DestinationRow>(`SELECT ${COLUMNS} FROM destinations WHERE id = $1`, [id])).rows[0];
}

export async function listDestinations(db: Queryable): Promise<DestinationRow[]> {
  return (await db.query<DestinationRow>(`SELECT ${COLUMNS} FROM destinations ORDER BY created_at, id`)).rows;
}

export async function insertDestination(
  db: Queryable,
  d: { id: string; name: string; type: 'webhook'; config: WebhookDestinationConfig; secrets: string | null; enabled: boolean; checkpoint_batch: bigint },
): Promise<DestinationRow> {
  const r = await db.query<DestinationRow>(
    `INSERT INTO destinations (id, name, type, config, secrets, enabled, checkpoint_batch) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
     RETURNING ${COLUMNS}`,
    [d.id, d.name, d.type, JSON.stringify(d.config), d.secrets, d.enabled, d.checkpoint_batch.toString()],
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
