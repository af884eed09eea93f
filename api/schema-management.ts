import { clearSnapshots } from '../catalog/cdc';
import { cdcTablesChanged, isCdc } from './cdc-control';
import { unsealConfig } from '../catalog';
import { hasCompletedJob } from '../catalog/jobs';
import { getSchema, getSchemasByIds, setLinkedColumns, updateSchemaSettings, type SchemaRow, type SchemaSettings } from '../catalog/schemas';
import { getSource, type SourceRow } from '../catalog/sources';
import { ONE_MINUTE_ONLY_FOR_CDC } from '../common/frequencies';
import type { DiscoveredTable } from '../connectors/types';
import { applySchedule, pauseSchedule } from '../temporal/schedules';
import { tableExists, warehouseTableName } from '../warehouse/tables';
import type { ApiDeps } from './context';
import { ApiError, badRequest, conflict } from './errors';
import type { BulkAction, PatchSchemaBody } from './schema-requests';
import {
  effectivePrimaryKey,
  frequencyViolation,
  linkedViolations,
  schemaWarnings,
  tableRuleViolations,
  throwIfAny,
  type SchemaSettingsInput,
} from './schema-rules';
import { againstSource, parseConnectionConfig, resolveConnector } from './source-setup';
import { awaitOperation, OPERATION_WAIT_MS, type PendingOperation } from './operations';
import { startSchemaReset, startSync, syncBlocker, withLiveRunState, type Selected, type Skipped } from './sync-control';
import { followWebhookTables, isWebhook } from './webhook-management';
import { isLinked, linkSchema, unlinkSchema } from './linked-tables';

/** Changing one schema (PATCH /api/schemas/:id) and many at once (POST /api/schemas/bulk). */

/** Keys whose change needs the table as the source has it now (cursor candidates, columns). */
const NEEDS_DISCOVERY = ['sync_type', 'incremental_field', 'incremental_field_type', 'primary_key_columns'] as const;

async function discoverTable(deps: ApiDeps, source: SourceRow, name: string): Promise<DiscoveredTable> {
  const connector = resolveConnector(source.source_type);
  const config = parseConnectionConfig(connector, unsealConfig(deps.catalog.secrets, source));
  const tables = await againstSource(() => connector.discover(config, { warehouse: deps.warehouse }));
  const table = tables.find((t) => t.table === name);
  if (!table) throw conflict(`table "${name}" no longer exists in the source`, [{ field: 'name', message: 'not found in the source' }]);
  return table;
}

const sameKey = (a: string[] | null, b: string[] | null) => JSON.stringify(a ?? []) === JSON.stringify(b ?? []);

/** Seed 000: once an incremental sync has completed, the key is fixed until the synced data is deleted. */
async function primaryKeyLocked(deps: ApiDeps, source: SourceRow, schema: SchemaRow): Promise<boolean> {
  if (schema.sync_type !== 'incremental') return false;
  if (!(await hasCompletedJob(deps.catalog.db, schema.id))) return false;
  return tableExists(deps.warehouse, warehouseTableName(source.prefix, schema.name));
}

/** A linked table's settings: enabled or not, and the column types over the inferred ones. */
async function patchLinked(deps: ApiDeps, source: SourceRow, schema: SchemaRow, body: PatchSchemaBody) {
  if (body.sync_type !== undefined && body.sync_type !== 'linked' && isLinked(schema)) {
    throw badRequest(`schema "${schema.name}" is linked: its sync type cannot be changed here`, [{ field: 'sync_type', message: 'a linked table stays linked' }]);
  }
  throwIfAny(linkedViolations(body, schema.name, (f) => f));
  let current = schema;
  if (!isLinked(schema)) {
    const table = await discoverTable(deps, source, schema.name);
    throwIfAny(tableRuleViolations({ name: schema.name, should_sync: true, sync_type: 'linked' }, table, (f) => f));
    await updateSchemaSettings(deps.catalog.db, schema.id, { sync_type: 'linked' });
    current = (await setLinkedColumns(deps.catalog.db, schema.id, table.available_columns.map((c) => ({ name: c.field, type: c.type })), null))!;
  }
  if (body.column_types) {
    const known = new Set((current.linked_columns ?? []).map((c) => c.name));
    const details = Object.keys(body.column_types)
      .filter((c) => !known.has(c))
      .map((c) => ({ field: `column_types.${c}`, message: `schema "${schema.name}" has no column "${c}" (columns: ${[...known].join(', ')})` }));
    for (const [c, t] of Object.entries(body.column_types)) {
      if (t === null || !known.has(c)) continue;
      // The engine's own parser says whether the type exists.
      const bad = await deps.warehouse.queryRows('SELECT defaultValueOfTypeName({t:String}) AS v', { params: { t } }).then(() => undefined, (err: Error) => err.message.split(':')[0]);
      if (bad) details.push({ field: `column_types.${c}`, message: `"${t}" is not a ClickHouse type (${bad})` });
    }
    throwIfAny(details);
    const overrides = { ...(current.linked_type_overrides ?? {}) };
    for (const [c, t] of Object.entries(body.column_types)) {
      if (t === null) delete overrides[c];
      else overrides[c] = t;
    }
    current = (await setLinkedColumns(deps.catalog.db, schema.id, null, overrides))!;
  }
  if (body.should_sync !== undefined) current = (await updateSchemaSettings(deps.catalog.db, schema.id, { should_sync: body.should_sync }))!;
  if (current.should_sync) await linkSchema(deps, source, current);
  else await unlinkSchema(deps, source, current);
  return { schema: current, source, warnings: [] as string[], pending: undefined as PendingOperation | undefined };
}

export async function patchSchema(deps: ApiDeps, schema: SchemaRow, body: PatchSchemaBody) {
  const source = (await getSource(deps.catalog.db, schema.source_id))!;
  // An imported table's rows are in a MergeTree of the name the linked view would take, with a schedule: no swap in place.
  if (body.sync_type === 'linked' && !isLinked(schema) && schema.sync_type) {
    throw badRequest(`schema "${schema.name}" is imported (${schema.sync_type}): it cannot become linked here`, [
      { field: 'sync_type', message: 'an imported table stays imported' },
    ]);
  }
  if (isLinked(schema) || body.sync_type === 'linked') return patchLinked(deps, source, schema, body);
  if (body.column_types !== undefined) {
    throw badRequest(`column_types applies to linked tables only; "${schema.name}" is ${schema.sync_type ?? 'not set up'}`, [{ field: 'column_types', message: 'linked tables only' }]);
  }
  const pick = <K extends keyof PatchSchemaBody & keyof SchemaRow>(k: K) => (body[k] !== undefined ? body[k] : schema[k]) as SchemaRow[K];
  const next: SchemaSettingsInput & Required<Pick<SchemaSettingsInput, 'sync_type'>> = {
    name: schema.name,
    should_sync: pick('should_sync'),
    sync_type: pick('sync_type'),
    sync_frequency: pick('sync_frequency'),
    incremental_field: pick('incremental_field'),
    incremental_field_type: pick('incremental_field_type'),
    primary_key_columns: pick('primary_key_columns'),
  };
  const at = (f: string) => f;
  const enabling = next.should_sync && !schema.should_sync;
  if (next.should_sync && !next.sync_type) {
    throw badRequest(`schema "${schema.name}" has no sync method: an enabled schema needs sync_type (send it with should_sync)`, [
      { field: 'sync_type', message: 'required while the schema is enabled' },
    ]);
  }
  // The URL names the schema, so the message is the rule's own words.
  throwIfAny(frequencyViolation(next, 'sync_frequency'));

  let warnings: string[] = [];
  let table: DiscoveredTable | undefined;
  if (NEEDS_DISCOVERY.some((k) => body[k] !== undefined) || enabling) {
    table = await discoverTable(deps, source, schema.name);
    throwIfAny(tableRuleViolations(next, table, at));
    warnings = schemaWarnings(next, table);
  }
  // Clearing the key means "the detected one", as on create: the warehouse table is keyed by what is stored.
  const newKey = body.primary_key_columns === null ? effectivePrimaryKey(next, table) : body.primary_key_columns;
  if (newKey !== undefined && !sameKey(newKey, schema.primary_key_columns)) {
    if (await primaryKeyLocked(deps, source, schema)) {
      throw conflict(
        `primary_key_columns of "${schema.name}" are locked: an incremental sync has completed. Delete the synced data first (POST /api/schemas/bulk with action delete_tables), then change them`,
        [{ field: 'primary_key_columns', message: 'locked after the first incremental sync' }],
      );
    }
  }

  const changes: SchemaSettings = {};
  for (const k of ['should_sync', 'sync_type', 'sync_frequency', 'incremental_field', 'incremental_field_type', 'primary_key_columns'] as const) {
    if (body[k] !== undefined) (changes as Record<string, unknown>)[k] = body[k];
  }
  if (newKey !== undefined) changes.primary_key_columns = newKey;
  // A new sync type or cursor changes what the table holds: rebuild the same table from scratch, in place.
  // Incremental and append tables are dropped (their engine and cursor depend on both); a full refresh
  // replaces the table by itself at its next run.
  const rebuild =
    (schema.last_synced_at !== null || schema.status !== null) &&
    ((body.sync_type !== undefined && body.sync_type !== schema.sync_type) ||
      (body.incremental_field !== undefined && body.incremental_field !== schema.incremental_field));
  let updated: SchemaRow;
  let pending: PendingOperation | undefined;
  if (rebuild) {
    // Stopping the runs, dropping the data and storing the new settings are one operation (resetSchema):
    // a crash between them does not leave a dropped table under the old settings.
    const dropData = next.sync_type === 'incremental' || next.sync_type === 'append' || next.sync_type === 'webhook';
    const handle = await startSchemaReset(deps, source, schema, {
      why: 'sync settings changed',
      dropData,
      settings: changes,
      start: Boolean(next.should_sync),
      wasCdc: isCdc(schema),
    });
    const outcome = await awaitOperation(handle, { sync_type: next.sync_type });
    if (!outcome.done) pending = outcome.pending;
    updated = (await getSchema(deps.catalog.db, schema.id))!;
  } else {
    updated = (await updateSchemaSettings(deps.catalog.db, schema.id, changes))!;
    await applySchedule(deps.temporal, deps.taskQueue, source, updated);
  }
  if (isWebhook(schema) || isWebhook(updated)) {
    // The registered endpoint sends exactly the webhook tables' events.
    if (schema.should_sync !== updated.should_sync || schema.sync_type !== updated.sync_type) warnings.push(...(await followWebhookTables(deps, source)));
    if (isWebhook(schema) && schema.should_sync && !updated.should_sync) warnings.push(WEBHOOK_DISABLE_WARNING(schema.name));
  }
  if (rebuild) return { schema: updated, source, warnings, pending };
  if (isCdc(schema) || isCdc(updated)) {
    // Joining or leaving CDC (or a new key): the mirror takes the table in or out, with a snapshot.
    if (enabling) await clearSnapshots(deps.catalog.db, [schema.id]);
    await cdcTablesChanged(deps, source);
  } else if (updated.should_sync && enabling && !syncBlocker((await withLiveRunState(deps, [updated]))[0])) await startSync(deps, source, updated);
  return { schema: updated, source, warnings, pending };
}

/** Loads the selected schemas with their sources; an unknown id is a 404 naming it, before anything changes. */
async function loadSelection(deps: ApiDeps, ids: string[]) {
  const unique = [...new Set(ids)];
  const schemas = await getSchemasByIds(deps.catalog.db, unique);
  const found = new Set(schemas.map((s) => s.id));
  const missing = ids.flatMap((id, i) => (found.has(id) ? [] : [{ field: `schema_ids.${i}`, message: `no schema ${id}` }]));
  if (missing.length) throw new ApiError(404, 'not_found', `${missing.length} selected schema(s) not found`, missing);
  const sources = new Map<string, SourceRow>();
  for (const s of schemas) if (!sources.has(s.source_id)) sources.set(s.source_id, (await getSource(deps.catalog.db, s.source_id))!);
  return (await withLiveRunState(deps, schemas)).map((schema) => ({ schema, source: sources.get(schema.source_id)! }));
}

const ref = (s: SchemaRow): Selected => ({ id: s.id, name: s.name });

const WEBHOOK_DISABLE_WARNING = (name: string) =>
  `"${name}" no longer takes webhook events: events the source sends while it is disabled are dropped; re-enabling it runs a full refresh`;

/** Seed 000: disabling CDC or webhook schemas loses changes until a full resync, so it must be confirmed. */
export function requireDisableConfirmation(schemas: Pick<SchemaRow, 'name' | 'should_sync' | 'sync_type'>[], confirm: boolean | undefined): void {
  const pushFed = schemas.filter((s) => s.should_sync && (s.sync_type === 'cdc' || s.sync_type === 'webhook'));
  if (pushFed.length && confirm !== true) {
    throw badRequest(
      `confirm: true is required: ${pushFed.map((s) => `"${s.name}" (${s.sync_type})`).join(', ')} stop receiving changes, and re-enabling them requires a full resync`,
      [{ field: 'confirm', message: 'must be true when cdc or webhook schemas are selected' }],
    );
  }
}

export async function runBulkAction(deps: ApiDeps, body: BulkAction) {
  const selection = await loadSelection(deps, body.schema_ids);
  const applied: Selected[] = [];
  const skipped: Skipped[] = [];
  const pending: PendingOperation[] = [];

  switch (body.action) {
    case 'disable': {
      requireDisableConfirmation(selection.map((s) => s.schema), body.confirm);
      for (const { schema, source } of selection) {
        if (!schema.should_sync) {
          skipped.push({ ...ref(schema), reason: 'already disabled' });
          continue;
        }
        await updateSchemaSettings(deps.catalog.db, schema.id, { should_sync: false });
        await pauseSchedule(deps.temporal, source, schema);
        applied.push(ref(schema));
      }
      break;
    }
    case 'set_frequency': {
      const notCdc = selection.filter(({ schema }) => schema.sync_type !== 'cdc');
      if (body.frequency === '1min' && notCdc.length) {
        throw badRequest(ONE_MINUTE_ONLY_FOR_CDC, notCdc.map(({ schema }) => ({ field: 'frequency', message: `"${schema.name}" is not a CDC schema` })));
      }
      for (const { schema, source } of selection) {
        const updated = (await updateSchemaSettings(deps.catalog.db, schema.id, { sync_frequency: body.frequency }))!;
        await applySchedule(deps.temporal, deps.taskQueue, source, updated);
        applied.push(ref(schema));
      }
      break;
    }
    case 'sync_now': {
      for (const { schema, source } of selection) {
        const reason = syncBlocker(schema);
        if (reason) skipped.push({ ...ref(schema), reason });
        else {
          await startSync(deps, source, schema);
          applied.push(ref(schema));
        }
      }
      break;
    }
    case 'delete_tables':
    case 'delete_and_resync': {
      // One resetSchema operation per table, all started before any is waited for.
      const started: { schema: SchemaRow; handle: Awaited<ReturnType<typeof startSchemaReset>> }[] = [];
      for (const { schema, source } of selection) {
        const resync = body.action === 'delete_and_resync';
        // delete_tables disables too: a schedule left running would import the table again at its next tick.
        const reason = resync ? syncBlocker({ ...schema, status: null }) : undefined;
        try {
          const handle = await startSchemaReset(deps, source, schema, {
            why: resync ? 'deleted for a resync' : 'synced data deleted',
            dropData: true,
            settings: resync ? undefined : { should_sync: false },
            start: resync && !reason,
            wasCdc: isCdc(schema),
          });
          started.push({ schema, handle });
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 409)) throw err;
          skipped.push({ ...ref(schema), reason: err.message });
          continue;
        }
        if (reason) skipped.push({ ...ref(schema), reason: `table deleted; not resynced: ${reason}` });
        else applied.push(ref(schema));
      }
      const deadline = Date.now() + OPERATION_WAIT_MS();
      for (const { handle } of started) {
        const outcome = await awaitOperation(handle, { data_deleted: true }, Math.max(0, deadline - Date.now()));
        if (!outcome.done) pending.push(outcome.pending);
      }
      break;
    }
  }
  // Registered webhook endpoints follow their sources' webhook tables.
  if (body.action === 'disable' || body.action === 'delete_tables') {
    const webhookSources = new Map(selection.filter(({ schema }) => isWebhook(schema)).map(({ source }) => [source.id, source]));
    for (const source of webhookSources.values()) {
      for (const w of await followWebhookTables(deps, source)) deps.log.warn({ sourceId: source.id }, w);
    }
  }
  // Mirrors whose CDC tables were disabled or changed reconcile once per source (a reset tells its own).
  const cdcSources = new Map(selection.filter(({ schema }) => isCdc(schema)).map(({ source }) => [source.id, source]));
  if (body.action === 'disable' || body.action === 'set_frequency') for (const source of cdcSources.values()) await cdcTablesChanged(deps, source);
  return { action: body.action, applied, skipped, ...(pending.length ? { operations: pending } : {}) };
}
