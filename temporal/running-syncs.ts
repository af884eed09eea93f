import { Client, ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { warehouseTableName } from '../warehouse/tables';
import { syncScheduleId } from './ids';

/**
 * Stopping the sync runs of a schema before its table is dropped or renamed, or its source deleted:
 * otherwise a run in flight would re-create the table (a full refresh's swap) or write into it.
 */

/** Workflow ids of the schema's runs in flight: the schedule knows the ones it started; visibility knows the rest. */
async function runningWorkflowIds(client: Client, source: SourceRow, schema: SchemaRow): Promise<Set<string>> {
  const table = warehouseTableName(source.prefix, schema.name);
  const ids = new Set<string>();
  try {
    const desc = await client.schedule.getHandle(syncScheduleId(table)).describe();
    for (const a of desc.info.runningActions) ids.add(a.workflow.workflowId);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  const query = `TributaryTable = "${table}" AND TributarySourceId = "${source.id}" AND ExecutionStatus = "Running"`;
  for await (const wf of client.workflow.list({ query })) ids.add(wf.workflowId);
  return ids;
}

/** Terminates every run in flight of the schema; returns how many were stopped. */
export async function terminateRunningSyncs(client: Client, source: SourceRow, schema: SchemaRow, reason: string): Promise<number> {
  let stopped = 0;
  for (const id of await runningWorkflowIds(client, source, schema)) {
    try {
      await client.workflow.getHandle(id).terminate(reason);
      stopped++;
    } catch (err) {
      // Finished (or gone) between listing and terminating: nothing left to stop.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return stopped;
}
