import { getCdcMirror, setCdcPaused, type CdcMirrorRow } from '../catalog/cdc';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { cdcWorkflowId, signalCdc, terminateCdc } from '../temporal/cdc-mirrors';
import type { ApiDeps } from './context';
import { ApiError } from './errors';

/** Slot lag thresholds (bytes of WAL the slot holds back), as the source shows them. */
const lagThreshold = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
export const LAG_WARNING_BYTES = () => lagThreshold('TRIBUTARY_CDC_LAG_WARNING_BYTES', 1024 ** 3);
export const LAG_CRITICAL_BYTES = () => lagThreshold('TRIBUTARY_CDC_LAG_CRITICAL_BYTES', 10 * 1024 ** 3);

export const PAUSE_WARNING =
  'CDC is paused: the replication slot keeps every WAL segment from now on, so the source database grows its pg_wal until you resume (watch lag_bytes)';

export function lagStatus(lagBytes: number | null): 'ok' | 'warning' | 'critical' | 'unknown' {
  if (lagBytes === null) return 'unknown';
  if (lagBytes >= LAG_CRITICAL_BYTES()) return 'critical';
  if (lagBytes >= LAG_WARNING_BYTES()) return 'warning';
  return 'ok';
}

export function presentCdc(source: SourceRow, m: CdcMirrorRow) {
  const lag = m.lag_bytes === null ? null : Number(m.lag_bytes);
  return {
    workflow_id: cdcWorkflowId(source),
    status: m.status,
    paused: m.paused,
    slot_name: m.slot_name,
    publication_name: m.publication_name,
    checkpoint_lsn: m.checkpoint_lsn,
    changes_synced: Number(m.changes_synced),
    lag_bytes: lag,
    lag_status: lagStatus(lag),
    lag_checked_at: m.lag_checked_at ? new Date(m.lag_checked_at).toISOString() : null,
    lag_seconds: m.last_commit_at && m.last_applied_at ? (new Date(m.last_applied_at).getTime() - new Date(m.last_commit_at).getTime()) / 1000 : null,
    last_commit_at: m.last_commit_at ? new Date(m.last_commit_at).toISOString() : null,
    latest_error: m.latest_error,
    warnings: [
      ...(m.paused ? [PAUSE_WARNING] : []),
      ...(lagStatus(lag) === 'critical' ? [`the slot holds back ${lag} bytes of WAL (critical above ${LAG_CRITICAL_BYTES()})`] : []),
      ...(lagStatus(lag) === 'warning' ? [`the slot holds back ${lag} bytes of WAL (warning above ${LAG_WARNING_BYTES()})`] : []),
    ],
  };
}

/** Adds the mirror to a presented source; a mirror in Error puts the whole source in Error, with its reason. */
export function withCdc<T extends { status: string; latest_error: string | null }>(source: SourceRow, presented: T, mirror: CdcMirrorRow | undefined) {
  if (!mirror) return presented;
  const failed = mirror.status === 'Error';
  return {
    ...presented,
    status: failed ? 'Error' : presented.status,
    latest_error: failed ? mirror.latest_error : presented.latest_error,
    cdc: presentCdc(source, mirror),
  };
}

export const isCdc = (s: Pick<SchemaRow, 'sync_type'>) => s.sync_type === 'cdc';

/** The source's CDC tables changed in the catalog: its mirror workflow reconciles (started if needed). */
export async function cdcTablesChanged(deps: ApiDeps, source: SourceRow): Promise<void> {
  const mirror = await getCdcMirror(deps.catalog.db, source.id);
  await signalCdc(deps.temporal, deps.taskQueue, source, 'tablesChanged', { paused: mirror?.paused ?? false });
}

async function mirrorOr409(deps: ApiDeps, source: SourceRow): Promise<CdcMirrorRow> {
  const mirror = await getCdcMirror(deps.catalog.db, source.id);
  if (!mirror) throw new ApiError(409, 'conflict', `source "${source.prefix}" has no CDC mirror: enable a table with sync_type "cdc" first`);
  return mirror;
}

export async function pauseCdc(deps: ApiDeps, source: SourceRow) {
  await mirrorOr409(deps, source);
  await setCdcPaused(deps.catalog.db, source.id, true);
  await signalCdc(deps.temporal, deps.taskQueue, source, 'pause', { paused: true });
  return { paused: true, warnings: [PAUSE_WARNING] };
}

export async function resumeCdc(deps: ApiDeps, source: SourceRow) {
  await mirrorOr409(deps, source);
  await setCdcPaused(deps.catalog.db, source.id, false);
  await signalCdc(deps.temporal, deps.taskQueue, source, 'resume');
  return { paused: false, warnings: [] as string[] };
}

/** The explicit way out of a lost slot: a new slot and fresh snapshots of every CDC table. */
export async function resyncCdc(deps: ApiDeps, source: SourceRow) {
  const mirror = await mirrorOr409(deps, source);
  await signalCdc(deps.temporal, deps.taskQueue, source, 'resync', { paused: mirror.paused });
  return { resyncing: true, warnings: ['every CDC table of the source is dropped and snapshotted again'] };
}

export async function stopCdcForDeletion(deps: ApiDeps, source: SourceRow): Promise<void> {
  await terminateCdc(deps.temporal, source, 'source deleted');
}
