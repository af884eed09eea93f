import crypto from 'node:crypto';
import { Client, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import { frequencyMs, type SyncFrequency } from '../common/frequencies';
import type { SyncSchemaInput } from '../common/types';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { warehouseTableName } from '../warehouse/tables';
import { syncScheduleId, syncWorkflowId } from './ids';
import { SA } from './search-attributes';

/**
 * One Temporal Schedule per synced schema. The catalog is the truth; these functions make the
 * schedule match it. Overlap policy SKIP: a schema never has two runs at once, however triggered.
 */

/** Spreads start times across the interval, seeded by the schema id, so "every 6 hours" isn't everyone at :00. */
export function scheduleOffsetMs(schemaId: string, everyMs: number): number {
  const h = crypto.createHash('sha256').update(schemaId).digest();
  return h.readUInt32BE(0) % everyMs;
}

function scheduleOptions(taskQueue: string, source: SourceRow, schema: SchemaRow): ScheduleOptions {
  const table = warehouseTableName(source.prefix, schema.name);
  const every = frequencyMs(schema.sync_frequency as SyncFrequency) ?? frequencyMs('24hour')!;
  const syncType = schema.sync_type ?? 'full_refresh';
  const args: [SyncSchemaInput] = [{ schemaId: schema.id }];
  return {
    scheduleId: syncScheduleId(table),
    spec: { intervals: [{ every, offset: scheduleOffsetMs(schema.id, every) }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'syncSchema',
      workflowId: syncWorkflowId(table),
      taskQueue,
      args,
      staticSummary: `${syncType} sync of ${source.source_type} table "${schema.name}" into ${table}`,
      typedSearchAttributes: [
        { key: SA.sourceId, value: source.id },
        { key: SA.sourceType, value: source.source_type },
        { key: SA.table, value: table },
        { key: SA.syncType, value: syncType },
      ],
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    state: {
      paused: !schema.should_sync || schema.sync_frequency === 'never',
      note: schema.sync_frequency === 'never' ? 'frequency "never": runs only when triggered' : undefined,
    },
  };
}

/** Creates the schema's schedule, or brings an existing one in line with the catalog. */
export async function upsertSchedule(client: Client, taskQueue: string, source: SourceRow, schema: SchemaRow): Promise<void> {
  // CDC tables stream through their source's mirror workflow: a schedule would only get in the way.
  if (schema.sync_type === 'cdc') return pauseSchedule(client, source, schema, 'CDC: changes stream through the source mirror');
  const opts = scheduleOptions(taskQueue, source, schema);
  const handle = client.schedule.getHandle(opts.scheduleId);
  try {
    await handle.update((prev) => ({ ...prev, spec: opts.spec, action: opts.action, policies: opts.policies, state: { ...prev.state, ...opts.state } }));
    if (opts.state?.paused) await handle.pause(opts.state.note);
    else await handle.unpause();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create(opts);
  }
}

/**
 * "Sync now": runs the schedule's action at once — or, when a run of this schema is still in flight,
 * right after it (BUFFER_ONE): never two runs at once, and a request made as a run finishes is not lost.
 */
export async function triggerSync(client: Client, source: SourceRow, schema: SchemaRow): Promise<void> {
  if (schema.sync_type === 'cdc') return;
  const id = syncScheduleId(warehouseTableName(source.prefix, schema.name));
  await client.schedule.getHandle(id).trigger(ScheduleOverlapPolicy.BUFFER_ONE);
}

export async function deleteSchedule(client: Client, source: SourceRow, schema: SchemaRow): Promise<void> {
  try {
    await client.schedule.getHandle(syncScheduleId(warehouseTableName(source.prefix, schema.name))).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/** Pauses the schema's schedule if it has one (a disabled schema keeps its schedule, paused, until re-enabled). */
export async function pauseSchedule(client: Client, source: SourceRow, schema: SchemaRow, note = 'schema disabled'): Promise<void> {
  try {
    await client.schedule.getHandle(syncScheduleId(warehouseTableName(source.prefix, schema.name))).pause(note);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/**
 * Makes Temporal match the catalog for one schema: an enabled, configured schema has a live schedule;
 * any other keeps an existing schedule paused and gets none created.
 */
export async function applySchedule(client: Client, taskQueue: string, source: SourceRow, schema: SchemaRow): Promise<void> {
  // CDC tables stream through their source's mirror workflow, not a schedule.
  if (schema.should_sync && schema.sync_type && schema.sync_type !== 'cdc') await upsertSchedule(client, taskQueue, source, schema);
  else await pauseSchedule(client, source, schema);
}

export async function scheduleExists(client: Client, source: SourceRow, schema: SchemaRow): Promise<boolean> {
  try {
    await client.schedule.getHandle(syncScheduleId(warehouseTableName(source.prefix, schema.name))).describe();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}
