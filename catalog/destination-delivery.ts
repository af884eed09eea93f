import type { Health } from '../destinations/health';
import type { Queryable } from './db';

/**
 * What the delivery (activities/deliver.ts) writes to a destination's row besides its checkpoint
 * (catalog/destinations.ts saveDestinationCheckpoint): its health, as destinations/health.ts keeps it, and the
 * latest error. The API shows them; a PATCH that re-enables the destination resets them.
 */
export async function saveDestinationHealth(db: Queryable, id: string, health: Health, latestError?: string | null): Promise<void> {
  await db.query(
    `UPDATE destinations SET health_state = $2, health = $3::jsonb, disabled_until = $4${latestError !== undefined ? ', latest_error = $5' : ''}
      WHERE id = $1`,
    [
      id,
      health.state,
      JSON.stringify(health),
      health.disabledUntil === null ? null : new Date(health.disabledUntil),
      ...(latestError !== undefined ? [latestError] : []),
    ],
  );
}
