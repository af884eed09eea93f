import { MASK } from '../catalog/secrets';
import { sealConfig, unsealConfig } from '../catalog';
import { insertSchema, listSchemas, type SchemaRow } from '../catalog/schemas';
import { getSource, getSourceByPrefix, updateSource, type SourceRow } from '../catalog/sources';
import { DEFAULT_SYNC_FREQUENCY } from '../common/frequencies';
import { secretFieldNames } from '../connectors/types';
import { sourceAdminWorkflowId } from '../temporal/ids';
import { existingTables } from '../warehouse/table-admin';
import { warehouseTableName } from '../warehouse/tables';
import type { changePrefix, deleteSource as deleteSourceWorkflow, DeleteSourceResult } from '../workflows/source-admin';
import type { ApiDeps } from './context';
import { badRequest, conflict } from './errors';
import { awaitOperation, startOperation, type PendingOperation } from './operations';
import { againstSource, parseConnectionConfig, resolveConnector } from './source-setup';
import { withLiveRunState } from './sync-control';
import { isLinked, linkSchema, unlinkSource } from './linked-tables';

/** Managing a source after it is created: pull new schemas, change it, delete it. */

/** The stored connection config, decrypted, and the source's connector. */
function liveConfig(deps: ApiDeps, source: SourceRow) {
  const connector = resolveConnector(source.source_type);
  return { connector, config: parseConnectionConfig(connector, unsealConfig(deps.catalog.secrets, source)) };
}

/** "Pull new schemas": tables found at the source and not in the catalog are added, disabled. Nothing syncs. */
export async function refreshSchemas(deps: ApiDeps, source: SourceRow) {
  const { connector, config } = liveConfig(deps, source);
  const tables = await againstSource(() => connector.discover(config, { warehouse: deps.warehouse }));
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

/**
 * Deletes a source (workflows/source-admin.ts deleteSource): schedules, runs in flight, streams, what it set
 * up at the source, catalog rows; warehouse tables only when asked. Done when this returns, or — past the
 * wait bound — still going, with the operation's id.
 */
export async function removeSource(deps: ApiDeps, source: SourceRow, opts: { deleteData: boolean }) {
  // Linked tables hold no data of their own: they go with the source whatever delete_data says.
  if (source.source_type === 'Files') await unlinkSource(deps, source, await listSchemas(deps.catalog.db, source.id));
  const handle = await startOperation<typeof deleteSourceWorkflow>(
    deps,
    'deleteSource',
    sourceAdminWorkflowId(source.id),
    [{ sourceId: source.id, deleteData: opts.deleteData }],
    { source, summary: `delete source "${source.prefix}"${opts.deleteData ? ' and its tables' : ''}`, what: `source "${source.prefix}"` },
  );
  return awaitOperation<DeleteSourceResult>(handle, { deleted: true });
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

/** A prefix change is refused (409) if the prefix is taken, a run is in flight, or a new table name is taken. */
async function checkRename(deps: ApiDeps, source: SourceRow, prefix: string) {
  if (await getSourceByPrefix(deps.catalog.db, prefix)) {
    throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
  }
  const schemas = await withLiveRunState(deps, await listSchemas(deps.catalog.db, source.id));
  const running = schemas.filter((s) => s.should_sync && s.status === 'Running').map((s) => s.name);
  if (running.length) {
    throw conflict(`cannot rename while syncs are running (${running.join(', ')}): wait for them to finish`, [
      { field: 'prefix', message: 'syncs are running' },
    ]);
  }
  // The raw webhook history moves with the tables.
  const targets = [...schemas.map((s) => s.name), 'webhook_events'].map((n) => warehouseTableName(prefix, n));
  const taken = [...(await existingTables(deps.warehouse, targets))];
  if (taken.length) throw conflict(`warehouse tables already exist: ${taken.join(', ')}`, [{ field: 'prefix', message: 'tables with the new names exist' }]);
}

/**
 * Changes a source: new connection fields are checked against the live source before anything is stored;
 * a new prefix is a workflow (workflows/source-admin.ts changePrefix) that renames the warehouse tables and
 * gives the schedules (same ids) the new names. Returns the operation still running past the wait bound.
 */
export async function changeSource(
  deps: ApiDeps,
  source: SourceRow,
  body: { prefix?: string; payload?: Record<string, unknown> },
): Promise<{ pending?: PendingOperation }> {
  const sealed = body.payload ? await (async () => {
    const { connector, config } = mergedConfig(deps, source, body.payload!);
    await againstSource(() => connector.check(config, { warehouse: deps.warehouse }));
    return sealConfig(deps.catalog.secrets, connector.spec, config);
  })() : undefined;
  const newPrefix = body.prefix !== undefined && body.prefix !== source.prefix ? body.prefix : undefined;
  if (newPrefix) await checkRename(deps, source, newPrefix);
  if (sealed) await updateSource(deps.catalog.db, source.id, { ...sealed });
  // Linked tables read with the new keys and patterns at once (their named collection is altered in place).
  if (sealed && source.source_type === 'Files') {
    const updated = (await getSource(deps.catalog.db, source.id))!;
    for (const s of (await listSchemas(deps.catalog.db, source.id)).filter((x) => isLinked(x) && x.should_sync)) await linkSchema(deps, updated, s);
  }
  if (!newPrefix) return {};
  const handle = await startOperation<typeof changePrefix>(
    deps,
    'changePrefix',
    sourceAdminWorkflowId(source.id),
    [{ sourceId: source.id, from: source.prefix, to: newPrefix }],
    { source, summary: `prefix change of source "${source.prefix}" to "${newPrefix}"`, what: `source "${source.prefix}"` },
  );
  const outcome = await awaitOperation(handle, { prefix: newPrefix });
  return outcome.done ? {} : { pending: outcome.pending };
}
