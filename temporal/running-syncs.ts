import { Client, ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { warehouseTableName } from '../warehouse/tables';
import { syncScheduleId } from './ids';

/**
 * Which sync runs of a schema are alive, as Temporal says: the catalog's `Running` is only what the run
 * last wrote, and a run terminated from the Temporal UI never writes again. Used to stop runs before a
 * table is dropped or renamed, and to correct the catalog's run state.
 */

export interface SyncRun {
  workflowId: string;
  runId?: string;
}

/** Whether this execution (the latest of the id when no run id) is still running. */
export async function runIsLive(client: Client, run: SyncRun): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(run.workflowId, run.runId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/**
 * The schema's runs in flight: those the schedule knows it started, those the catalog has open jobs for,
 * and (visibility, a moment behind) any other run with the schema's search attributes — runs started by an
 * older version under a table-named schedule among them. Each is confirmed running by describing it.
 */
export async function liveSyncRuns(client: Client, source: SourceRow, schema: SchemaRow, openJobs: SyncRun[] = []): Promise<SyncRun[]> {
  const candidates = new Map<string, SyncRun>();
  const add = (r: SyncRun) => candidates.set(`${r.workflowId}/${r.runId ?? ''}`, r);
  try {
    const desc = await client.schedule.getHandle(syncScheduleId(schema.id)).describe();
    for (const a of desc.info.runningActions) add({ workflowId: a.workflow.workflowId, runId: a.workflow.firstExecutionRunId });
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  for (const j of openJobs) add(j);
  const table = warehouseTableName(source.prefix, schema.name);
  const query = `TributaryTable = "${table}" AND TributarySourceId = "${source.id}" AND ExecutionStatus = "Running" AND WorkflowType = "syncSchema"`;
  for await (const wf of client.workflow.list({ query })) add({ workflowId: wf.workflowId, runId: wf.runId });
  const live: SyncRun[] = [];
  for (const r of candidates.values()) if (await runIsLive(client, r)) live.push(r);
  return live;
}

/** Terminates the given runs; returns how many were still running. */
export async function terminateRuns(client: Client, runs: SyncRun[], reason: string): Promise<number> {
  let stopped = 0;
  for (const r of runs) {
    try {
      await client.workflow.getHandle(r.workflowId, r.runId).terminate(reason);
      stopped++;
    } catch (err) {
      // Finished (or gone) between listing and terminating: nothing left to stop.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return stopped;
}
