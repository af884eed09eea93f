import type { Catalog } from '../catalog';
import { unsealConfig } from '../catalog';
import { getSchema, type SchemaRow } from '../catalog/schemas';
import { getSource, type SourceRow } from '../catalog/sources';
import { connectorFor } from '../connectors/registry';
import type { Connector } from '../connectors/types';
import type { Logger } from '../platform/logger';
import type { Warehouse } from '../warehouse/client';
import type { WarehouseColumn } from '../warehouse/columns';
import { engineErrorName, permanentEngineError } from '../warehouse/errors';
import { warehouseTableName } from '../warehouse/tables';
import { ApplicationFailure } from '@temporalio/activity';

/** What activities are built from: the stores they read and write. */
export interface ActivityDeps {
  catalog: Catalog;
  warehouse: Warehouse;
  log: Logger;
  /** Size of the byte batches a read is cut into (default: the connector's). */
  batchBytes?: number;
}

export interface SchemaContext {
  schema: SchemaRow;
  source: SourceRow;
  connector: Connector<Record<string, unknown>>;
  /** Decrypted and validated connection config: lives only inside the activity. */
  config: Record<string, unknown>;
  targetTable: string;
}

/** Loads a schema with its source and connector; a schema deleted meanwhile fails the run for good. */
export async function loadSchemaContext(deps: ActivityDeps, schemaId: string): Promise<SchemaContext> {
  const schema = await getSchema(deps.catalog.db, schemaId);
  if (!schema) throw ApplicationFailure.nonRetryable(`Schema ${schemaId} no longer exists`, 'NotFound');
  const source = await getSource(deps.catalog.db, schema.source_id);
  if (!source) throw ApplicationFailure.nonRetryable(`Source ${schema.source_id} no longer exists`, 'NotFound');
  const connector = connectorFor(source.source_type);
  if (!connector) throw ApplicationFailure.nonRetryable(`Unknown source type ${source.source_type}`, 'NotFound');
  const config = connector.configSchema.parse(unsealConfig(deps.catalog.secrets, source));
  return { schema, source, connector, config, targetTable: warehouseTableName(source.prefix, schema.name) };
}

export const stagingTableName = (target: string, jobId: string) => `${target}__loading_${jobId.replace(/-/g, '').slice(0, 12)}`;

/** The schema's primary-key columns (source names) as warehouse column names. */
export function warehouseKey(keys: string[] | null, columns: WarehouseColumn[]): string[] {
  return (keys ?? []).flatMap((k) => columns.filter((c) => c.sourceName === k).map((c) => c.name));
}

/**
 * Rethrows `err`, as a non-retryable failure when no retry can fix it (the warehouse refuses the statement as it
 * stands): the job or mirror then reaches Error at once, saying why, instead of retrying the same refusal.
 */
export function rethrowForGood(err: unknown): never {
  const engine = permanentEngineError(err);
  if (engine) throw ApplicationFailure.nonRetryable(`the warehouse refused it (${engineErrorName(engine.code)}): ${(err as Error).message}`, 'WarehouseRejected');
  throw err;
}
