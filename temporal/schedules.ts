import crypto from 'node:crypto';
import { Client, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleOptions } from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import { frequencyMs, type SyncFrequency } from '../common/frequencies';
import type { SyncSchemaInput } from '../common/types';
import type { SchemaRow } from '../catalog/schemas';
import type { SourceRow } from '../catalog/sources';
import { warehouseTableName } from '../warehouse/tables';
import { legacySyncScheduleId, syncScheduleId, syncWorkflowId } from './ids';
import { SA } from './search-attributes';

/**
 * One Temporal Schedule per synced schema, with the schema's id as its id (temporal/ids.ts): a prefix
 * change updates its summary and search attributes, nothing else. The catalog is the truth; these
 * functions make the schedule match it. Overlap policy SKIP: a schema never has two runs at once.
 *
 * An admin operation (workflows/source-admin.ts) may *hold* a schedule: paused with a note starting with
 * HOLD_NOTE, which every upsert keeps (a restart's reconciliation among them) until the operation releases it.
 */
const HOLD_NOTE = 'held: ';

/** Spreads start times across the interval, seeded by the schema id, so "every 6 hours" isn't everyone at :00. */
export function scheduleOffsetMs(schemaId: string, everyMs: number): number {
  const h = crypto.createHash('sha256').update(schemaId).digest();
  return h.readUInt32BE(0) % everyMs;
}

function searchAttributes(source: SourceRow, schema: SchemaRow, table: string): SearchAttributePair[] {
  return [
    { key: SA.sourceId, value: source.id },
    { key: SA.sourceType, value: source.source_type },
    { key: SA.table, value: table },
    { key: SA.syncType, value: schema.sync_type ?? 'full_refresh' },
  ];
}

function scheduleOptions(taskQueue: string, source: SourceRow, schema: SchemaRow): ScheduleOptions {
  const table = warehouseTableName(source.prefix, schema.name);
  const every = frequencyMs(schema.sync_frequency as SyncFrequency) ?? frequencyMs('24hour')!;
  const syncType = schema.sync_type ?? 'full_refresh';
  const args: [SyncSchemaInput] = [{ schemaId: schema.id }];
  return {
    scheduleId: syncScheduleId(schema.id),
    spec: { intervals: [{ every, offset: scheduleOffsetMs(schema.id, every) }] },
    action: {
      type: 'startWorkflow',
      workflowType: 'syncSchema',
      workflowId: syncWorkflowId(schema.id),
      taskQueue,
      args,
      staticSummary: `${syncType} sync of ${source.source_type} table "${schema.name}" into ${table}`,
      typedSearchAttributes: searchAttributes(source, schema, table),
    },
    memo: { table, schema: schema.name, sourceId: source.id },
    typedSearchAttributes: searchAttributes(source, schema, table),
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    state: {
      paused: !schema.should_sync || schema.sync_frequency === 'never',
      note: schema.sync_frequency === 'never' ? 'frequency "never": runs only when triggered' : undefined,
    },
  };
}

/**
 * Creates the schema's schedule, or brings an existing one in line with the catalog. A held schedule stays
 * paused unless `release` (the operation that held it is done).
 */
export async function upsertSchedule(client: Client, taskQueue: string, source: SourceRow, schema: SchemaRow, opts: { release?: boolean } = {}): Promise<void> {
  // CDC tables stream through their source's mirror workflow: a schedule would only get in the way.
  if (schema.sync_type === 'cdc') return pauseSchedule(client, source, schema, 'CDC: changes stream through the source mirror');
  const o = scheduleOptions(taskQueue, source, schema);
  const handle = client.schedule.getHandle(o.scheduleId);
  let held = false;
  try {
    await handle.update((prev) => {
      held = !opts.release && Boolean(prev.state.paused && prev.state.note?.startsWith(HOLD_NOTE));
      return {
        ...prev,
        spec: o.spec,
        action: o.action,
        policies: o.policies,
        typedSearchAttributes: new TypedSearchAttributes(o.typedSearchAttributes as SearchAttributePair[]),
        state: held ? prev.state : { ...prev.state, ...o.state },
      };
    });
    if (held) return;
    if (o.state?.paused) await handle.pause(o.state.note);
    else await handle.unpause();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
    await client.schedule.create(o);
    // A deployment from before schedule ids followed schema ids: its schedule goes once this one exists.
    await deleteById(client, legacySyncScheduleId(warehouseTableName(source.prefix, schema.name)));
  }
}

/**
 * "Sync now": runs the schedule's action at once — or, when a run of this schema is still in flight,
 * right after it (BUFFER_ONE): never two runs at once, and a request made as a run finishes is not lost.
 */
export async function triggerSync(client: Client, _source: SourceRow, schema: SchemaRow): Promise<void> {
  if (schema.sync_type === 'cdc') return;
  await client.schedule.getHandle(syncScheduleId(schema.id)).trigger(ScheduleOverlapPolicy.BUFFER_ONE);
}

async function deleteById(client: Client, id: string): Promise<void> {
  try {
    await client.schedule.getHandle(id).delete();
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/** Deletes the schema's schedule, and its predecessor named after the table if an old version left one. */
export async function deleteSchedule(client: Client, source: SourceRow, schema: SchemaRow): Promise<void> {
  await deleteById(client, syncScheduleId(schema.id));
  await deleteById(client, legacySyncScheduleId(warehouseTableName(source.prefix, schema.name)));
}

/** Pauses the schema's schedule if it has one (a disabled schema keeps its schedule, paused, until re-enabled). */
export async function pauseSchedule(client: Client, _source: SourceRow, schema: SchemaRow, note = 'schema disabled'): Promise<void> {
  try {
    await client.schedule.getHandle(syncScheduleId(schema.id)).pause(note);
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
}

/** Holds the schedule for an admin operation: paused, and kept paused by every upsert until released. */
export async function holdSchedule(client: Client, source: SourceRow, schema: SchemaRow, why: string): Promise<void> {
  await pauseSchedule(client, source, schema, HOLD_NOTE + why);
}

/** Whether an admin operation holds the schema's schedule. */
export async function scheduleHeld(client: Client, schema: SchemaRow): Promise<boolean> {
  try {
    const d = await client.schedule.getHandle(syncScheduleId(schema.id)).describe();
    return Boolean(d.state.paused && d.state.note?.startsWith(HOLD_NOTE));
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/**
 * Makes Temporal match the catalog for one schema: an enabled, configured schema has a live schedule;
 * any other keeps an existing schedule paused and gets none created. `release` lifts an operation's hold.
 */
export async function applySchedule(client: Client, taskQueue: string, source: SourceRow, schema: SchemaRow, opts: { release?: boolean } = {}): Promise<void> {
  // CDC tables stream through their source's mirror workflow, not a schedule.
  if (schema.should_sync && schema.sync_type && schema.sync_type !== 'cdc') return upsertSchedule(client, taskQueue, source, schema, opts);
  if (opts.release || !(await scheduleHeld(client, schema))) await pauseSchedule(client, source, schema);
}

export async function scheduleExists(client: Client, _source: SourceRow, schema: SchemaRow): Promise<boolean> {
  try {
    await client.schedule.getHandle(syncScheduleId(schema.id)).describe();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}
