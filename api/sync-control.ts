import { ScheduleNotFoundError } from '@temporalio/client';
import { cancelRunningJobs } from '../catalog/jobs';
import { markSchemaFailed, resetSchemaSyncState, type SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { terminateRunningSyncs } from '../temporal/running-syncs';
import { triggerSync, upsertSchedule } from '../temporal/schedules';
import { dropSchemaTables } from '../warehouse/table-admin';
import { warehouseTableName } from '../warehouse/tables';
import { cdcTablesChanged } from './cdc-control';
import type { ApiDeps } from './context';

/** Starting and stopping a schema's syncs, shared by the source and schema routes. */

export interface Selected {
  id: string;
  name: string;
}
export interface Skipped extends Selected {
  reason: string;
}

/** Why a schema can't be synced now, or undefined when it can. */
export function syncBlocker(schema: SchemaRow): string | undefined {
  if (!schema.should_sync) return 'disabled';
  if (!schema.sync_type) return 'no sync method configured';
  if (schema.status === 'Running') return 'already syncing';
  return undefined;
}

/**
 * Triggers a run through the schema's schedule (created first if a restart or an old version lost it).
 * The schedule already matches the catalog (every settings change and every start apply it), so it is
 * triggered straight away: one RPC instead of the four of an upsert (describe, update, pause/unpause) first.
 */
export async function startSync(deps: ApiDeps, source: SourceRow, schema: SchemaRow): Promise<void> {
  if (schema.sync_type === 'cdc') return cdcTablesChanged(deps, source);
  try {
    await triggerSync(deps.temporal, source, schema);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await upsertSchedule(deps.temporal, deps.taskQueue, source, schema);
    await triggerSync(deps.temporal, source, schema);
  }
}

/** Starts every schema that can sync; the others are listed with the reason. */
export async function startSyncs(deps: ApiDeps, source: SourceRow, schemas: SchemaRow[]) {
  const started: Selected[] = [];
  const skipped: Skipped[] = [];
  for (const s of schemas) {
    const reason = syncBlocker(s);
    if (reason) skipped.push({ id: s.id, name: s.name, reason });
    else {
      await startSync(deps, source, s);
      started.push({ id: s.id, name: s.name });
    }
  }
  return { started, skipped };
}

/**
 * A terminated run's activity learns of it only at its next heartbeat, so it may still create or fill a
 * staging table after we dropped the leftovers: sweep once more after the worker's heartbeat timeout.
 */
const LATE_SWEEP_MS = 45_000;
function sweepStagingLater(deps: ApiDeps, table: string) {
  setTimeout(() => {
    dropSchemaTables(deps.warehouse, table, { keepLive: true }).catch((err) => deps.log.warn({ err, table }, 'late staging sweep failed'));
  }, LATE_SWEEP_MS).unref();
}

/**
 * Stops the schema's runs in flight, marks their jobs failed and closes them; when `dropData`, drops its
 * warehouse table and forgets the cursor so the next run imports from scratch. Staging tables a stopped
 * run left behind are dropped either way.
 */
export async function stopSyncs(deps: ApiDeps, source: SourceRow, schema: SchemaRow, why: string, opts: { dropData: boolean }): Promise<void> {
  const stopped = await terminateRunningSyncs(deps.temporal, source, schema, why);
  if (stopped) await cancelRunningJobs(deps.catalog.db, schema.id, `Cancelled: ${why}`);
  const table = warehouseTableName(source.prefix, schema.name);
  if (stopped) sweepStagingLater(deps, table);
  if (opts.dropData) {
    await dropSchemaTables(deps.warehouse, table, { keepLive: false });
    await resetSchemaSyncState(deps.catalog.db, schema.id);
  } else if (stopped) {
    await dropSchemaTables(deps.warehouse, table, { keepLive: true });
    await markSchemaFailed(deps.catalog.db, schema.id, `Cancelled: ${why}`);
  }
}
