import type { Queryable } from './db';

/** The catalog side of a source's webhook endpoint (see migrations/003_webhooks.sql). */
export interface WebhookRow {
  source_id: string;
  url: string;
  endpoint_id: string | null;
  enabled_events: string[] | null;
  /** Sealed: open it with the catalog's SecretBox, only to verify a delivery. */
  signing_secret: string | null;
  events_applied: string | number;
  last_event_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export async function getWebhook(db: Queryable, sourceId: string): Promise<WebhookRow | undefined> {
  return (await db.query<WebhookRow>('SELECT * FROM webhooks WHERE source_id = $1', [sourceId])).rows[0];
}

/** Records the endpoint; fields left undefined keep their stored value. */
export async function saveWebhook(
  db: Queryable,
  sourceId: string,
  w: { url: string; endpoint_id?: string | null; enabled_events?: string[] | null; signing_secret?: string | null },
): Promise<WebhookRow> {
  const r = await db.query<WebhookRow>(
    `INSERT INTO webhooks (source_id, url, endpoint_id, enabled_events, signing_secret) VALUES ($1, $2, $3, $4::jsonb, $5)
     ON CONFLICT (source_id) DO UPDATE SET url = EXCLUDED.url,
       endpoint_id = CASE WHEN $6::boolean THEN EXCLUDED.endpoint_id ELSE webhooks.endpoint_id END,
       enabled_events = CASE WHEN $7::boolean THEN EXCLUDED.enabled_events ELSE webhooks.enabled_events END,
       signing_secret = CASE WHEN $8::boolean THEN EXCLUDED.signing_secret ELSE webhooks.signing_secret END,
       updated_at = now()
     RETURNING *`,
    [
      sourceId,
      w.url,
      w.endpoint_id ?? null,
      w.enabled_events ? JSON.stringify(w.enabled_events) : null,
      w.signing_secret ?? null,
      w.endpoint_id !== undefined,
      w.enabled_events !== undefined,
      w.signing_secret !== undefined,
    ],
  );
  return r.rows[0];
}

export async function countAppliedEvents(db: Queryable, sourceId: string, applied: number, lastEventAt: Date): Promise<void> {
  await db.query(
    `UPDATE webhooks SET events_applied = events_applied + $2, last_event_at = GREATEST(last_event_at, $3), updated_at = now() WHERE source_id = $1`,
    [sourceId, applied, lastEventAt],
  );
}
