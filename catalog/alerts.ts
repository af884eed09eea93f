import crypto from 'node:crypto';
import type { Queryable } from './db';

export const ALERT_KINDS = ['sync_failed', 'schema_stale', 'cdc_lag', 'cdc_slot_lost', 'destination_disabled'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
export type AlertSeverity = 'warning' | 'critical';

/** What an alert is about: the ids (and names, for messages and chat posts) of the source, schema or destination. */
export interface AlertSubject {
  source_id?: string;
  source_name?: string;
  schema_id?: string;
  schema_name?: string;
  destination_id?: string;
  destination_name?: string;
}

export interface AlertRow {
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  subject_key: string;
  subject: AlertSubject;
  message: string;
  raised_at: Date;
  cleared_at: Date | null;
}

/** A condition found true by a check: an open alert with the same key is the same incident. */
export interface AlertCondition {
  kind: AlertKind;
  severity: AlertSeverity;
  subject: AlertSubject;
  message: string;
}

export function alertKey(c: Pick<AlertCondition, 'kind' | 'severity' | 'subject'>): string {
  const s = c.subject;
  const ids = [s.source_id, s.schema_id, s.destination_id].map((x) => x ?? '-').join(':');
  // The two lag levels are two incidents: warning → critical clears the warning and raises the critical one.
  return c.kind === 'cdc_lag' ? `${c.kind}:${c.severity}:${ids}` : `${c.kind}:${ids}`;
}

/** Opens an incident unless one is open for the same key; answers the new row, or undefined when nothing was raised. */
export async function raiseAlert(db: Queryable, c: AlertCondition): Promise<AlertRow | undefined> {
  const r = await db.query<AlertRow>(
    `INSERT INTO alerts (id, kind, severity, subject_key, subject, message) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (subject_key) WHERE cleared_at IS NULL DO NOTHING RETURNING *`,
    [crypto.randomUUID(), c.kind, c.severity, alertKey(c), JSON.stringify(c.subject), c.message],
  );
  return r.rows[0];
}

/** Closes the open incident of a key; answers it, or undefined when none was open. */
export async function clearAlert(db: Queryable, subjectKey: string): Promise<AlertRow | undefined> {
  const r = await db.query<AlertRow>(`UPDATE alerts SET cleared_at = now() WHERE subject_key = $1 AND cleared_at IS NULL RETURNING *`, [subjectKey]);
  return r.rows[0];
}

export async function openAlerts(db: Queryable, kinds?: readonly AlertKind[]): Promise<AlertRow[]> {
  const r = kinds
    ? await db.query<AlertRow>(`SELECT * FROM alerts WHERE cleared_at IS NULL AND kind = ANY($1::text[])`, [kinds])
    : await db.query<AlertRow>(`SELECT * FROM alerts WHERE cleared_at IS NULL`);
  return r.rows;
}

/**
 * Makes the open incidents of `kinds` match `conditions` (everything a full check found true): raises the new
 * ones, clears those whose condition is gone. Answers what changed, for the log and the change log.
 */
export async function reconcileAlerts(
  db: Queryable,
  kinds: readonly AlertKind[],
  conditions: AlertCondition[],
): Promise<{ raised: AlertRow[]; cleared: AlertRow[] }> {
  const wanted = new Map(conditions.map((c) => [alertKey(c), c]));
  const raised: AlertRow[] = [];
  const cleared: AlertRow[] = [];
  for (const open of await openAlerts(db, kinds)) {
    if (!wanted.has(open.subject_key)) {
      const c = await clearAlert(db, open.subject_key);
      if (c) cleared.push(c);
    } else wanted.delete(open.subject_key);
  }
  for (const c of wanted.values()) {
    const r = await raiseAlert(db, c);
    if (r) raised.push(r);
  }
  return { raised, cleared };
}

export async function listAlerts(
  db: Queryable,
  filter: { state?: 'open' | 'cleared'; kind?: AlertKind; limit: number },
): Promise<AlertRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.state === 'open') where.push('cleared_at IS NULL');
  if (filter.state === 'cleared') where.push('cleared_at IS NOT NULL');
  if (filter.kind) where.push(`kind = $${params.push(filter.kind)}`);
  const sql = `SELECT * FROM alerts ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
               ORDER BY raised_at DESC, id LIMIT $${params.push(filter.limit)}`;
  return (await db.query<AlertRow>(sql, params)).rows;
}
