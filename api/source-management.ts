import { cdcTablesChanged, isCdc, stopCdcForDeletion } from './cdc-control';
import { MASK } from '../catalog/secrets';
import { sealConfig, unsealConfig } from '../catalog';
import { insertSchema, listSchemas, type SchemaRow } from '../catalog/schemas';
import { deleteSource, getSourceByPrefix, updateSource, type SourceRow } from '../catalog/sources';
import { DEFAULT_SYNC_FREQUENCY } from '../common/frequencies';
import { secretFieldNames } from '../connectors/types';
import { deleteSchedule, pauseSchedule, scheduleExists, upsertSchedule } from '../temporal/schedules';
import { existingTables, renameTables } from '../warehouse/table-admin';
import { dropTable, warehouseTableName } from '../warehouse/tables';
import { forgetWebhookEventsTable, webhookEventsTable } from '../warehouse/webhook-events';
import { removeWebhook } from './webhook-management';
import type { ApiDeps } from './context';
import { badRequest, conflict } from './errors';
import { againstSource, parseConnectionConfig, resolveConnector } from './source-setup';
import { stopSyncs } from './sync-control';

/** Managing a source after it is created: pull new schemas, change it, delete it. */

/** The stored connection config, decrypted, and the source's connector. */
function liveConfig(deps: ApiDeps, source: SourceRow) {
  const connector = resolveConnector(source.source_type);
  return { connector, config: parseConnectionConfig(connector, unsealConfig(deps.catalog.secrets, source)) };
}

/** "Pull new schemas": tables found at the source and not in the catalog are added, disabled. Nothing syncs. */
export async function refreshSchemas(deps: ApiDeps, source: SourceRow) {
  const { connector, config } = liveConfig(deps, source);
  const tables = await againstSource(() => connector.discover(config));
  const existing = await listSchemas(deps.catalog.db, source.id);
  const known = new Set(existing.map((s) => s.name));
  const added: SchemaRow[] = [];
  for (const t of tables) {
    if (known.has(t.table)) continue;
    added.push(
      await insertSchema(deps.catalog.db, source.id, {
        name: t.table,
        should_sync: false,
        sync_type: null,
        sync_frequency: DEFAULT_SYNC_FREQUENCY,
        incremental_field: null,
        incremental_field_type: null,
        primary_key_columns: t.detected_primary_keys.length ? t.detected_primary_keys : null,
      }),
    );
  }
  const found = new Set(tables.map((t) => t.table));
  // Kept, not deleted: their warehouse data and history stay until the user removes them.
  const gone = existing.filter((s) => !found.has(s.name)).map((s) => s.name);
  return { added, gone };
}

/** Deletes a source: schedules, runs in flight, catalog rows; warehouse tables only when asked. */
export async function removeSource(deps: ApiDeps, source: SourceRow, opts: { deleteData: boolean }) {
  const schemas = await listSchemas(deps.catalog.db, source.id);
  const droppedTables: string[] = [];
  for (const schema of schemas) {
    // Paused first, so the schedule starts nothing between stopping the runs and deleting it.
    await pauseSchedule(deps.temporal, source, schema, 'source being deleted');
    await stopSyncs(deps, source, schema, 'source deleted', { dropData: opts.deleteData });
    await deleteSchedule(deps.temporal, source, schema);
    if (opts.deleteData) droppedTables.push(warehouseTableName(source.prefix, schema.name));
  }
  // An unreachable source must not keep its catalog entry alive: the deletion goes on, and says so.
  const warnings: string[] = [];
  const { connector, config } = liveConfig(deps, source);
  // The mirror goes first: its stream holds the slot that cleanup drops.
  await stopCdcForDeletion(deps, source);
  warnings.push(...(await removeWebhook(deps, source, config, connector)));
  if (opts.deleteData && connector.webhooks) {
    const raw = webhookEventsTable(source.prefix);
    await dropTable(deps.warehouse, raw);
    forgetWebhookEventsTable(raw);
    droppedTables.push(raw);
  }
  if (connector.cleanup) {
    await connector.cleanup(config, { id: source.id, prefix: source.prefix }).catch((err: Error) => {
      warnings.push(`cleanup at the source failed: ${err.message}`);
    });
  }
  await deleteSource(deps.catalog.db, source.id);
  deps.log.info({ sourceId: source.id, prefix: source.prefix, deleteData: opts.deleteData }, 'source deleted');
  return { id: source.id, deleted: true as const, dropped_tables: droppedTables, warnings };
}

/** Merges changed connection fields over the stored ones; a masked secret sent back means "unchanged". */
function mergedConfig(deps: ApiDeps, source: SourceRow, changes: Record<string, unknown>) {
  const connector = resolveConnector(source.source_type);
  if ('schemas' in changes) {
    throw badRequest('payload.schemas cannot be changed here: use PATCH /api/schemas/:id', [
      { field: 'payload.schemas', message: 'use PATCH /api/schemas/:id and POST /api/sources/:id/refresh-schemas' },
    ]);
  }
  const stored = unsealConfig(deps.catalog.secrets, source);
  const merged: Record<string, unknown> = { ...stored, ...changes };
  for (const name of secretFieldNames(connector.spec)) if (changes[name] === MASK) merged[name] = stored[name];
  return { connector, config: parseConnectionConfig(connector, merged) };
}

/** The warehouse renames a prefix change needs; refused if a run is in flight or a new name is taken. */
async function planRename(deps: ApiDeps, source: SourceRow, schemas: SchemaRow[], prefix: string) {
  if (await getSourceByPrefix(deps.catalog.db, prefix)) {
    throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
  }
  const running = schemas.filter((s) => s.should_sync && s.status === 'Running').map((s) => s.name);
  if (running.length) {
    throw conflict(`cannot rename while syncs are running (${running.join(', ')}): wait for them to finish`, [
      { field: 'prefix', message: 'syncs are running' },
    ]);
  }
  const pairs = schemas.map((s) => ({ from: warehouseTableName(source.prefix, s.name), to: warehouseTableName(prefix, s.name) }));
  // The raw webhook history moves with the tables.
  pairs.push({ from: webhookEventsTable(source.prefix), to: webhookEventsTable(prefix) });
  const present = await existingTables(deps.warehouse, [...pairs.map((p) => p.from), ...pairs.map((p) => p.to)]);
  const taken = pairs.filter((p) => present.has(p.to)).map((p) => p.to);
  if (taken.length) throw conflict(`warehouse tables already exist: ${taken.join(', ')}`, [{ field: 'prefix', message: 'tables with the new names exist' }]);
  return pairs.filter((p) => present.has(p.from));
}

/**
 * Changes a source: new connection fields are checked against the live source before anything is
 * stored; a new prefix renames the warehouse tables and moves the schedules to the new ids.
 */
export async function changeSource(deps: ApiDeps, source: SourceRow, body: { prefix?: string; payload?: Record<string, unknown> }) {
  const sealed = body.payload ? await (async () => {
    const { connector, config } = mergedConfig(deps, source, body.payload!);
    await againstSource(() => connector.check(config));
    return sealConfig(deps.catalog.secrets, connector.spec, config);
  })() : undefined;
  const newPrefix = body.prefix !== undefined && body.prefix !== source.prefix ? body.prefix : undefined;
  if (!newPrefix) return (await updateSource(deps.catalog.db, source.id, { ...sealed }))!;

  const schemas = await listSchemas(deps.catalog.db, source.id);
  const renames = await planRename(deps, source, schemas, newPrefix);
  // Every schedule moves to its new id, paused ones staying paused (upsert follows should_sync).
  const scheduled: SchemaRow[] = [];
  for (const s of schemas) if (await scheduleExists(deps.temporal, source, s)) scheduled.push(s);
  for (const s of scheduled) await deleteSchedule(deps.temporal, source, s);
  await renameTables(deps.warehouse, renames);
  for (const r of renames) forgetWebhookEventsTable(r.from);
  let updated: SourceRow;
  try {
    updated = (await updateSource(deps.catalog.db, source.id, { ...sealed, prefix: newPrefix }))!;
  } catch (err) {
    await renameTables(deps.warehouse, renames.map((r) => ({ from: r.to, to: r.from })));
    for (const s of scheduled) await upsertSchedule(deps.temporal, deps.taskQueue, source, s);
    if ((err as { code?: string }).code === '23505') throw conflict(`prefix "${newPrefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
    throw err;
  }
  for (const s of scheduled) await upsertSchedule(deps.temporal, deps.taskQueue, updated, s);
  // The mirror writes to the renamed tables from its next stream on.
  if (schemas.some((s) => s.should_sync && isCdc(s))) await cdcTablesChanged(deps, updated);
  deps.log.info({ sourceId: source.id, from: source.prefix, to: newPrefix, tables: renames.length }, 'source prefix changed');
  return updated;
}
