import { sealConfig } from '../catalog';
import { insertSchema, type SchemaRow } from '../catalog/schemas';
import { getSourceByPrefix, insertSource, type SourceRow } from '../catalog/sources';
import { DEFAULT_SYNC_FREQUENCY, ONE_MINUTE_ONLY_FOR_CDC } from '../common/frequencies';
import { connectorFor, connectors } from '../connectors/registry';
import { SourceError, type Connector, type DiscoveredTable } from '../connectors/types';
import { triggerSync, upsertSchedule } from '../temporal/schedules';
import type { ApiDeps } from './context';
import { ApiError, badRequest, conflict, fromZod } from './errors';
import type { SchemaEntry } from './validation';

/** Sync types each step of the roadmap has made real; others are refused with a clear message. */
const IMPLEMENTED_SYNC_TYPES = new Set(['full_refresh', 'incremental', 'append']);

export function resolveConnector(sourceType: string): Connector<Record<string, unknown>> {
  const connector = connectorFor(sourceType);
  if (!connector) {
    throw badRequest(`Unknown source_type "${sourceType}"; available: ${Object.keys(connectors).join(', ')}`, [
      { field: 'source_type', message: `must be one of ${Object.keys(connectors).join(', ')}` },
    ]);
  }
  return connector;
}

/** Validates the connection fields of a payload against the connector's config schema. */
export function parseConnectionConfig(connector: Connector<Record<string, unknown>>, payload: Record<string, unknown>) {
  const { schemas: _schemas, ...fields } = payload;
  const parsed = connector.configSchema.safeParse(fields);
  if (!parsed.success) throw fromZod(parsed.error, ['payload']);
  return parsed.data;
}

/** Runs a source call; the source's own error message becomes a 400, verbatim. */
export async function againstSource<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SourceError) {
      throw new ApiError(400, 'source_error', err.message, [{ field: err.field ? `payload.${err.field}` : 'payload', message: err.message }]);
    }
    throw err;
  }
}

/** Seed 001's schemas[] rules, each violation naming the schema and the field. */
export function validateSchemaEntries(entries: SchemaEntry[], tables: DiscoveredTable[]) {
  const known = new Map(tables.map((t) => [t.table, t]));
  const details: { field: string; message: string }[] = [];
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const at = (f: string) => `payload.schemas.${i}.${f}`;
    if (!known.has(e.name)) details.push({ field: at('name'), message: `schema "${e.name}": no such table in the source` });
    if (seen.has(e.name)) details.push({ field: at('name'), message: `schema "${e.name}" is listed twice` });
    seen.add(e.name);
    if (e.should_sync && !e.sync_type) details.push({ field: at('sync_type'), message: `schema "${e.name}": sync_type is required when should_sync is true` });
    if (e.sync_type && !IMPLEMENTED_SYNC_TYPES.has(e.sync_type)) {
      details.push({ field: at('sync_type'), message: `schema "${e.name}": sync_type "${e.sync_type}" is not available yet; use full_refresh, incremental or append` });
    }
    if ((e.sync_type === 'incremental' || e.sync_type === 'append') && known.has(e.name)) {
      const candidates = known.get(e.name)!.incremental_fields;
      const field = candidates.find((f) => f.field === e.incremental_field);
      if (!field) {
        details.push({ field: at('incremental_field'), message: `schema "${e.name}": ${e.sync_type} needs incremental_field, one of: ${candidates.map((f) => f.field).join(', ') || '(no suitable column)'}` });
      } else if (e.incremental_field_type !== field.type) {
        details.push({ field: at('incremental_field_type'), message: `schema "${e.name}": incremental_field_type must be "${field.type}" for ${field.field}` });
      }
    }
    if (e.sync_frequency === '1min' && e.sync_type !== 'cdc') details.push({ field: at('sync_frequency'), message: `schema "${e.name}": ${ONE_MINUTE_ONLY_FOR_CDC}` });
  });
  if (details.length) throw new ApiError(400, 'validation_error', details.map((d) => d.message).join('; '), details);
}

export interface CreateSourceInput {
  source_type: string;
  prefix?: string;
  payload: Record<string, unknown> & { schemas: SchemaEntry[] };
}

/**
 * Creates a source: credentials are checked live before anything is stored, then the source and its
 * schemas are stored in one transaction, schedules created and the first syncs triggered.
 */
export async function createSource(deps: ApiDeps, input: CreateSourceInput): Promise<{ source: SourceRow; schemas: SchemaRow[] }> {
  const connector = resolveConnector(input.source_type);
  const config = parseConnectionConfig(connector, input.payload);
  const prefix = input.prefix ?? connector.spec.name.toLowerCase();
  if (await getSourceByPrefix(deps.catalog.db, prefix)) {
    throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
  }
  await againstSource(() => connector.check(config));
  const tables = await againstSource(() => connector.discover(config));
  validateSchemaEntries(input.payload.schemas, tables);

  const byName = new Map(tables.map((t) => [t.table, t]));
  const sealed = sealConfig(deps.catalog.secrets, connector.spec, config);
  const created = await deps.catalog.db
    .transaction(async (tx) => {
      const source = await insertSource(tx, { source_type: connector.spec.name, prefix, ...sealed });
      const schemas: SchemaRow[] = [];
      for (const e of input.payload.schemas) {
        schemas.push(
          await insertSchema(tx, source.id, {
            name: e.name,
            should_sync: e.should_sync,
            sync_type: e.sync_type ?? null,
            sync_frequency: e.sync_frequency ?? DEFAULT_SYNC_FREQUENCY,
            incremental_field: e.incremental_field ?? null,
            incremental_field_type: e.incremental_field_type ?? null,
            primary_key_columns: e.primary_key_columns ?? byName.get(e.name)?.detected_primary_keys ?? null,
          }),
        );
      }
      return { source, schemas };
    })
    .catch((err: Error & { code?: string }) => {
      if (err.code === '23505') throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
      throw err;
    });

  for (const schema of created.schemas) {
    if (!schema.should_sync) continue;
    await upsertSchedule(deps.temporal, deps.taskQueue, created.source, schema);
    await triggerSync(deps.temporal, created.source, schema);
  }
  deps.log.info({ sourceId: created.source.id, prefix, schemas: created.schemas.length }, 'source created');
  return created;
}
