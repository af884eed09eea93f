import { ScheduleNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { stagingPrefix } from '../activities/context';
import { STAGING_SWEEP_DELAY_MS } from '../activities/admin';
import { warehouseTableName } from '../warehouse/tables';
import { failJobs, openJobs } from '../catalog/jobs';
import { failStaleRun, getSchema, listRunningSchemas, type SchemaRow } from '../catalog/schemas';
import { getSource, type SourceRow } from '../catalog/sources';
import { schemaAdminWorkflowId } from '../temporal/ids';
import { liveSyncRuns } from '../temporal/running-syncs';
import { triggerSync, upsertSchedule } from '../temporal/schedules';
import type { ResetSchemaInput, sweepStaging } from '../workflows/source-admin';
import { cdcTablesChanged } from './cdc-control';
import type { ApiDeps } from './context';
import { startOperation } from './operations';

/** Starting and stopping a schema's syncs, shared by the source and schema routes. */

export interface Selected {
  id: string;
  name: string;
}
export interface Skipped extends Selected {
  reason: string;
}

/** Why a schema can't be synced now, or undefined when it can. Its status must be live (withLiveRunState). */
export function syncBlocker(schema: SchemaRow): string | undefined {
  if (!schema.should_sync) return 'disabled';
  if (!schema.sync_type) return 'no sync method configured';
  if (schema.sync_type === 'linked') return 'linked: read from storage on every query, there is nothing to sync';
  if (schema.status === 'Running') return 'already syncing';
  return undefined;
}

export const STALE_RUN = 'the run ended without recording its outcome (terminated or timed out in Temporal)';

/**
 * The catalog's `Running` is what a run last wrote; Temporal knows whether it is alive. A run that is not
 * (terminated in the Temporal UI, say) gets its job closed and its schema marked Failed, so it no longer
 * blocks a sync or a prefix change. CDC tables are the mirror's, not runs': left as they are.
 * Returns the rows as corrected.
 */
export async function withLiveRunState(deps: ApiDeps, schemas: SchemaRow[]): Promise<SchemaRow[]> {
  const sources = new Map<string, SourceRow | undefined>();
  const out: SchemaRow[] = [];
  for (const s of schemas) {
    if (s.status !== 'Running' || s.sync_type === 'cdc') {
      out.push(s);
      continue;
    }
    if (!sources.has(s.source_id)) sources.set(s.source_id, await getSource(deps.catalog.db, s.source_id));
    const source = sources.get(s.source_id);
    const jobs = await openJobs(deps.catalog.db, s.id);
    const runs = source
      ? await liveSyncRuns(deps.temporal, source, s, jobs.flatMap((j) => (j.workflow_id ? [{ workflowId: j.workflow_id, runId: j.workflow_run_id ?? undefined }] : [])))
      : [];
    if (runs.length) {
      // Alive but its job closed: the run is recording its outcome (completeJob), so it blocks nothing.
      out.push(jobs.length ? s : { ...s, status: null });
      continue;
    }
    await failJobs(deps.catalog.db, jobs.map((j) => j.id), STALE_RUN);
    if (source && jobs.length) await sweepStagingOf(deps, source, s, jobs.map((j) => j.id));
    if (await failStaleRun(deps.catalog.db, s.id, STALE_RUN)) deps.log.warn({ schemaId: s.id, name: s.name }, STALE_RUN);
    out.push((await getSchema(deps.catalog.db, s.id)) ?? s);
  }
  return out;
}

/**
 * A run that ended unseen may have left its staging table, or its activity may still be filling it until its
 * next heartbeat: the sweepStaging workflow drops those tables (by job id: never a later run's) a while later.
 */
async function sweepStagingOf(deps: ApiDeps, source: SourceRow, schema: SchemaRow, jobIds: string[]): Promise<void> {
  const table = warehouseTableName(source.prefix, schema.name);
  const args: [{ tables: string[]; delayMs: number }] = [{ tables: jobIds.map((id) => stagingPrefix(table, id)), delayMs: STAGING_SWEEP_DELAY_MS() }];
  await deps.temporal.workflow
    .start<typeof sweepStaging>('sweepStaging', { workflowId: `sweep-stale-${jobIds[0]}`, taskQueue: deps.taskQueue, args })
    .catch((err) => {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    });
}

/** Corrects every schema the catalog says is running (of one source, or all), before a listing shows them. */
export async function refreshRunState(deps: ApiDeps, sourceId?: string): Promise<void> {
  // A listing still answers, from the catalog alone, while Temporal is unreachable.
  await withLiveRunState(deps, await listRunningSchemas(deps.catalog.db, sourceId)).catch((err) =>
    deps.log.warn({ err: (err as Error).message }, 'run state not checked against Temporal'),
  );
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
  for (const s of await withLiveRunState(deps, schemas)) {
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
 * Starts the schema's reset (workflows/source-admin.ts resetSchema): its runs stopped, their staging tables
 * dropped (again, later, by job id: never a new run's), the data dropped when asked, settings stored, a run
 * started when asked.
 */
export async function startSchemaReset(deps: ApiDeps, source: SourceRow, schema: SchemaRow, input: Omit<ResetSchemaInput, 'schemaId'>) {
  return startOperation<typeof import('../workflows/source-admin').resetSchema>(
    deps,
    'resetSchema',
    schemaAdminWorkflowId(schema.id),
    [{ schemaId: schema.id, ...input }],
    { source, summary: `${input.why}: table "${schema.name}" of source "${source.prefix}"`, what: `table "${schema.name}"` },
  );
}
