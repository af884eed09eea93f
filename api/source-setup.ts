import { cdcTablesChanged, isCdc } from './cdc-control';
import { sealConfig } from '../catalog';
import { insertSchema, setLinkedColumns, type SchemaRow } from '../catalog/schemas';
import { getSourceByPrefix, insertSource, type SourceRow } from '../catalog/sources';
import { DEFAULT_SYNC_FREQUENCY } from '../common/frequencies';
import { connectorFor, connectors } from '../connectors/registry';
import { SourceError, type Connector } from '../connectors/types';
import { triggerSync, upsertSchedule } from '../temporal/schedules';
import type { ApiDeps } from './context';
import { ApiError, badRequest, conflict, fromZod } from './errors';
import { effectivePrimaryKey, validateSchemaEntries } from './schema-rules';
import type { SchemaEntry } from './validation';
import { isLinked, linkSchema } from './linked-tables';

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
export function parseConnectionConfig(connector: Connector<Record<string, unknown>>, payload: Record<string, unknown>, at: string[] = ['payload']) {
  const { schemas: _schemas, ...fields } = payload;
  const parsed = connector.configSchema.safeParse(fields);
  if (!parsed.success) throw fromZod(parsed.error, at);
  return parsed.data;
}

/** Runs a source call; the source's own error message becomes a 400, verbatim. */
export async function againstSource<T>(fn: () => Promise<T>, at = 'payload'): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SourceError) {
      const field = [at, err.field].filter(Boolean).join('.') || '(body)';
      throw new ApiError(400, 'source_error', err.message, [{ field, message: err.message }]);
    }
    throw err;
  }
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
export async function createSource(deps: ApiDeps, input: CreateSourceInput): Promise<{ source: SourceRow; schemas: SchemaRow[]; warnings: string[] }> {
  const connector = resolveConnector(input.source_type);
  const config = parseConnectionConfig(connector, input.payload);
  const prefix = input.prefix ?? connector.spec.name.toLowerCase();
  if (await getSourceByPrefix(deps.catalog.db, prefix)) {
    throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
  }
  await againstSource(() => connector.check(config, { warehouse: deps.warehouse }));
  const tables = await againstSource(() => connector.discover(config, { warehouse: deps.warehouse }));
  const warnings = validateSchemaEntries(input.payload.schemas, tables);

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
            primary_key_columns: effectivePrimaryKey(e, byName.get(e.name)),
          }),
        );
      }
      return { source, schemas };
    })
    .catch((err: Error & { code?: string }) => {
      if (err.code === '23505') throw conflict(`prefix "${prefix}" is already used by another source`, [{ field: 'prefix', message: 'already taken' }]);
      throw err;
    });

  // Linked tables: the columns as inferred, and the table the engine reads the files through. Nothing is scheduled.
  for (const [i, schema] of created.schemas.entries()) {
    if (!isLinked(schema)) continue;
    const columns = byName.get(schema.name)?.available_columns.map((c) => ({ name: c.field, type: c.type })) ?? [];
    created.schemas[i] = (await setLinkedColumns(deps.catalog.db, schema.id, columns, null))!;
    if (schema.should_sync) await linkSchema(deps, created.source, created.schemas[i]);
  }
  for (const schema of created.schemas) {
    if (!schema.should_sync || isCdc(schema) || isLinked(schema)) continue;
    await upsertSchedule(deps.temporal, deps.taskQueue, created.source, schema);
    await triggerSync(deps.temporal, created.source, schema);
  }
  // CDC tables: one mirror workflow for the source sets up its slot, snapshots them and streams.
  if (created.schemas.some((s) => s.should_sync && isCdc(s))) await cdcTablesChanged(deps, created.source);
  deps.log.info({ sourceId: created.source.id, prefix, schemas: created.schemas.length }, 'source created');
  return { ...created, warnings };
}
