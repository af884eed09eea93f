import { ALERT_KINDS, raiseAlert, clearAlert, reconcileAlerts, alertKey, type AlertCondition, type AlertRow } from '../catalog/alerts';
import { lagStatus, LAG_CRITICAL_BYTES, LAG_WARNING_BYTES } from '../api/cdc-control';
import { frequencyMs, type SyncFrequency } from '../common/frequencies';
import { recordChanges } from './change-recorder';
import { ALERTS_TABLE, ALERT_COLUMNS, ensureAlertsTable } from '../warehouse/alerts-stream';
import { rowJsonExpr } from '../warehouse/change-log';
import { quoteIdent, sqlString } from '../warehouse/client';
import type { ActivityDeps } from './context';

/** A schema is stale when its last completed run is older than this many times its frequency (TRIBUTARY_ALERT_STALE_FACTOR, default 2). */
export function staleFactor(): number {
  const v = Number(process.env.TRIBUTARY_ALERT_STALE_FACTOR);
  return Number.isFinite(v) && v > 0 ? v : 2;
}

const STREAM_TYPES = ['cdc', 'webhook'];
// A mirror in Error for one of these reasons has lost changes: only a resync helps (activities/cdc.ts says which).
const SLOT_LOST = /replication slot \S+ (was invalidated|disappeared)/;

/** Every alert condition true in the catalog at `now`. */
export async function findAlertConditions(deps: Pick<ActivityDeps, 'catalog'>, now: Date): Promise<AlertCondition[]> {
  const db = deps.catalog.db;
  const out: AlertCondition[] = [];
  const schemas = await db.query<{
    id: string; name: string; source_id: string; prefix: string; sync_type: string | null; sync_frequency: SyncFrequency; created_at: Date;
    last_status: string | null; last_error: string | null; last_success: Date | null;
  }>(
    `SELECT s.id, s.name, s.source_id, src.prefix, s.sync_type, s.sync_frequency, s.created_at,
            last.status AS last_status, last.latest_error AS last_error,
            (SELECT max(finished_at) FROM jobs j WHERE j.schema_id = s.id AND j.status = 'Completed') AS last_success
       FROM schemas s JOIN sources src ON src.id = s.source_id
       LEFT JOIN LATERAL (SELECT status, latest_error FROM jobs j WHERE j.schema_id = s.id AND j.finished_at IS NOT NULL
                           ORDER BY j.finished_at DESC LIMIT 1) last ON true
      WHERE s.should_sync AND s.sync_type IS NOT NULL`,
  );
  for (const s of schemas.rows) {
    const subject = { source_id: s.source_id, source_name: s.prefix, schema_id: s.id, schema_name: s.name };
    if (s.last_status === 'Failed') {
      out.push({ kind: 'sync_failed', severity: 'critical', subject, message: `sync of ${s.prefix}.${s.name} failed: ${s.last_error ?? 'unknown error'}` });
    }
    const every = frequencyMs(s.sync_frequency);
    if (every !== undefined && !STREAM_TYPES.includes(s.sync_type!)) {
      const since = new Date(s.last_success ?? s.created_at).getTime();
      const limit = every * staleFactor();
      if (now.getTime() - since > limit) {
        out.push({
          kind: 'schema_stale',
          severity: 'warning',
          subject,
          message: `${s.prefix}.${s.name} has not completed a sync ${s.last_success ? `since ${new Date(s.last_success).toISOString()}` : 'yet'} (every ${s.sync_frequency}; stale after ${Math.round(limit / 60_000)} min)`,
        });
      }
    }
  }
  const mirrors = await db.query<{ source_id: string; prefix: string; status: string; lag_bytes: string | null; latest_error: string | null }>(
    `SELECT m.source_id, src.prefix, m.status, m.lag_bytes, m.latest_error FROM cdc_mirrors m JOIN sources src ON src.id = m.source_id`,
  );
  for (const m of mirrors.rows) {
    const subject = { source_id: m.source_id, source_name: m.prefix };
    const lag = m.lag_bytes === null ? null : Number(m.lag_bytes);
    const level = lagStatus(lag);
    if (level === 'warning' || level === 'critical') {
      const bound = level === 'critical' ? LAG_CRITICAL_BYTES() : LAG_WARNING_BYTES();
      out.push({ kind: 'cdc_lag', severity: level, subject, message: `CDC of ${m.prefix}: the slot holds back ${lag} bytes of WAL (${level} above ${bound})` });
    }
    if (m.status === 'Error' && SLOT_LOST.test(m.latest_error ?? '')) {
      out.push({ kind: 'cdc_slot_lost', severity: 'critical', subject, message: `CDC of ${m.prefix}: ${m.latest_error}` });
    }
  }
  const destinations = await db.query<{ id: string; name: string; health_state: string; latest_error: string | null }>(
    `SELECT id, name, health_state, latest_error FROM destinations WHERE enabled AND health_state IN ('disabled', 'disabled_temporarily')`,
  );
  for (const d of destinations.rows) {
    const forGood = d.health_state === 'disabled';
    out.push({
      kind: 'destination_disabled',
      severity: forGood ? 'critical' : 'warning',
      subject: { destination_id: d.id, destination_name: d.name },
      message: `destination ${d.name} is disabled ${forGood ? 'until it is edited' : 'for a cool-down'}${d.latest_error ? `: ${d.latest_error}` : ''}`,
    });
  }
  return out;
}

/** Writes an alert's raise (insert) or clear (update) into the alerts table and the change log, for destinations. */
export async function publishAlert(deps: Pick<ActivityDeps, 'catalog' | 'warehouse'>, a: AlertRow, op: 'insert' | 'update'): Promise<void> {
  const wh = deps.warehouse;
  await ensureAlertsTable(wh);
  const s = a.subject;
  const ts = (d: Date | null) => (d ? `toDateTime64(${sqlString(new Date(d).toISOString().replace('T', ' ').replace('Z', ''))}, 6, 'UTC')` : 'NULL');
  const version = Date.now() * 1000 + (op === 'update' ? 1 : 0);
  const table = `${quoteIdent(wh.database)}.${ALERTS_TABLE}`;
  await wh.command(
    `INSERT INTO ${table} (${ALERT_COLUMNS.join(', ')}, _tributary_version) SELECT ${[a.id, a.kind, a.severity, a.cleared_at ? 'cleared' : 'open', s.source_id ?? '', s.source_name ?? '', s.schema_id ?? '', s.schema_name ?? '', s.destination_id ?? '', s.destination_name ?? '', a.message]
      .map(sqlString)
      .join(', ')}, ${ts(a.raised_at)}, ${ts(a.cleared_at)}, ${version}`,
  );
  await recordChanges(deps, {
    sourceId: s.source_id ?? null,
    table: ALERTS_TABLE,
    sql: `SELECT ${sqlString(op)} AS op, toJSONString(tuple(id) :: Tuple(id String)) AS key, ${rowJsonExpr(ALERT_COLUMNS)} AS row, CAST(NULL, 'Nullable(String)') AS old_row, _tributary_version AS version
            FROM ${table} FINAL WHERE id = ${sqlString(a.id)}`,
  });
}

async function announce(deps: ActivityDeps, raised: AlertRow[], cleared: AlertRow[]): Promise<void> {
  for (const a of raised) {
    deps.log.warn({ alert: { id: a.id, kind: a.kind, severity: a.severity, subject: a.subject } }, `alert raised: ${a.message}`);
    await publishAlert(deps, a, 'insert');
  }
  for (const a of cleared) {
    deps.log.info({ alert: { id: a.id, kind: a.kind, subject: a.subject } }, `alert cleared: ${a.message}`);
    await publishAlert(deps, a, 'update');
  }
}

export function createAlertActivities(deps: ActivityDeps) {
  return {
    /** The watchAlerts workflow's check: raises what became true, clears what stopped being true. `nowMs` for tests. */
    async checkAlerts(nowMs?: number): Promise<{ raised: number; cleared: number; open: number }> {
      const conditions = await findAlertConditions(deps, new Date(nowMs ?? Date.now()));
      const { raised, cleared } = await reconcileAlerts(deps.catalog.db, ALERT_KINDS, conditions);
      await announce(deps, raised, cleared);
      return { raised: raised.length, cleared: cleared.length, open: conditions.length };
    },
  };
}

/**
 * Where a run ends: a failure is an alert at once (not a minute later), a success clears the schema's failure.
 * Never fails the caller: alerting is a side effect of the run, and the next check repeats it.
 */
export async function alertOnRunEnd(deps: ActivityDeps, condition: AlertCondition, failed: boolean): Promise<void> {
  try {
    if (failed) {
      const a = await raiseAlert(deps.catalog.db, condition);
      if (a) await announce(deps, [a], []);
    } else {
      const a = await clearAlert(deps.catalog.db, alertKey(condition));
      if (a) await announce(deps, [], [a]);
    }
  } catch (err) {
    deps.log.warn({ err }, 'could not record the alert now; the next check will');
  }
}
