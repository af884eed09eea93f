import { ParentClosePolicy, proxyActivities, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { AdminActivities } from '../activities/admin';
import type { SchemaSettings } from '../catalog/schemas';

/**
 * Changes that touch Temporal, the warehouse and the catalog together, as workflows (PeerDB's drop and setup
 * flows): each step is an idempotent activity, so a worker killed between two steps leaves an operation that
 * the next worker finishes, never one half done. The API validates, starts the workflow and waits for it
 * (for a bound). Schedules are *held* (paused, and kept paused by a restart) while the tables move.
 */

const admin = proxyActivities<AdminActivities>({
  startToCloseTimeout: '10 minutes',
  // Admin activities heartbeat on a timer: a dead worker is noticed this fast and the step retried elsewhere.
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20, nonRetryableErrorTypes: ['Conflict', 'NotFound'] },
});

/** Waiting for runs in flight to finish: about five minutes, then the operation gives up (and releases). */
const waiting = proxyActivities<AdminActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 1, maximumAttempts: 150 },
});

export interface ChangePrefixInput {
  sourceId: string;
  from: string;
  to: string;
}

/** A new prefix: the tables are renamed, the catalog follows, the schedules (same ids) get the new names. */
export async function changePrefix({ sourceId, from, to }: ChangePrefixInput): Promise<{ prefix: string; renamed: string[] }> {
  await admin.holdSourceSchedules(sourceId, `prefix change "${from}" to "${to}"`);
  let renamed: string[];
  try {
    await waiting.waitForNoRuns(sourceId);
    renamed = await admin.renameSourceTables(sourceId, from, to);
    try {
      await admin.setSourcePrefix(sourceId, to);
    } catch (err) {
      await admin.renameSourceTables(sourceId, to, from);
      throw err;
    }
  } finally {
    await admin.releaseSourceSchedules(sourceId);
  }
  await admin.sourceTablesChanged(sourceId);
  return { prefix: to, renamed };
}

export interface ResetSchemaInput {
  schemaId: string;
  why: string;
  /** Drop the warehouse table and forget the cursor (the next run imports from scratch). */
  dropData: boolean;
  /** Settings stored once the runs are stopped (a new sync type, or should_sync false). */
  settings?: SchemaSettings;
  /** Start a run afterwards (or hand a CDC table to its mirror for a snapshot). */
  start: boolean;
  /** The table was CDC before the change: its mirror lets it go. */
  wasCdc?: boolean;
}

/** Stops a schema's runs and resets its data: delete_tables, delete_and_resync, a sync type change. */
export async function resetSchema(input: ResetSchemaInput): Promise<{ stopped: number; started: boolean }> {
  await admin.holdSchema(input.schemaId, input.why);
  let stopped: { stopped: number; staging: string[]; sweepAfterMs: number };
  try {
    stopped = await admin.stopSchemaRuns(input.schemaId, { why: input.why, dropData: input.dropData, deleteSchedule: false });
    if (input.settings) await admin.applySchemaSettings(input.schemaId, input.settings);
  } finally {
    await admin.releaseSchema(input.schemaId);
  }
  const started = await admin.schemaReset(input.schemaId, { start: input.start, dataDropped: input.dropData, wasCdc: input.wasCdc });
  await sweepLater(stopped.staging, stopped.sweepAfterMs);
  return { stopped: stopped.stopped, started };
}

export interface DeleteSourceInput {
  sourceId: string;
  deleteData: boolean;
}
export interface DeleteSourceResult {
  id: string;
  deleted: true;
  dropped_tables: string[];
  warnings: string[];
}

/** Deletes a source: runs, schedules, streams, what it set up at the source, catalog rows; tables when asked. */
export async function deleteSource({ sourceId, deleteData }: DeleteSourceInput): Promise<DeleteSourceResult> {
  // Disables every schema first: from here on nothing of the source starts again, not even after a restart.
  const plan = await admin.planSourceDeletion(sourceId);
  if (!plan) return { id: sourceId, deleted: true, dropped_tables: [], warnings: [] };
  const staging: string[] = [];
  let sweepAfterMs = 0;
  for (const schemaId of plan.schemaIds) {
    const r = await admin.stopSchemaRuns(schemaId, { why: 'source deleted', dropData: deleteData, deleteSchedule: true });
    staging.push(...r.staging);
    sweepAfterMs = r.sweepAfterMs;
  }
  const cleanup = await admin.cleanupSource(sourceId, deleteData);
  await admin.deleteSourceRows(sourceId);
  await sweepLater(staging, sweepAfterMs);
  return { id: sourceId, deleted: true, dropped_tables: [...(deleteData ? plan.tables : []), ...cleanup.dropped], warnings: cleanup.warnings };
}

/**
 * A terminated run's activity learns of it only at its next heartbeat, so it may still create or fill its
 * staging table after the operation dropped it. Those tables — the stopped runs' own, by job id, never a
 * new run's — are dropped again later, by a workflow of their own so the operation need not wait for it.
 */
async function sweepLater(tables: string[], delayMs: number): Promise<void> {
  if (!tables.length) return;
  const { workflowId, runId } = workflowInfo();
  await startChild(sweepStaging, {
    workflowId: `sweep-${workflowId}-${runId}`,
    args: [{ tables, delayMs }],
    parentClosePolicy: ParentClosePolicy.ABANDON,
  });
}

export async function sweepStaging({ tables, delayMs }: { tables: string[]; delayMs: number }): Promise<void> {
  await sleep(delayMs);
  await admin.dropTables(tables);
}
