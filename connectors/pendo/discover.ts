import { KIND_LABELS } from '../kit';
import type { DiscoveredTable } from '../types';
import { AggregationRefused, pendoApi, setupError } from './client';
import type { PendoConfig } from './config';
import { aggregationBody } from './pipeline';
import { INCREMENTAL_FIELD, PENDO_TABLES, type PendoTable } from './tables';

/**
 * Asks the aggregation endpoint for one visitor: a key without write access is refused there (403) while the
 * list endpoints still answer, so the refusal is described on visitors and accounts instead of failing the source.
 */
export async function probeAggregation(config: PendoConfig): Promise<string | undefined> {
  try {
    await pendoApi(config).json('POST', '/api/v1/aggregation', { body: aggregationBody({ source: 'visitors', key: 'visitorId', limit: 1 }) });
    return undefined;
  } catch (err) {
    const mapped = setupError(err, config, 'POST /api/v1/aggregation', true);
    if (mapped instanceof AggregationRefused) return mapped.message;
    throw mapped;
  }
}

function describeTable(table: PendoTable, refused: string | undefined): string {
  if (table.kind === 'list') {
    return (
      `Pendo ${table.name} (GET ${table.path}?expand=*, every app of the subscription), keyed by id. Times are DateTime64(3, 'UTC'), ` +
      'nested objects and arrays JSON text. Full refresh only: Pendo lists them whole, without paging or a change filter.'
    );
  }
  const parts = [
    `Pendo ${table.name} from the aggregation endpoint (POST /api/v1/aggregation, source "${table.source}"), keyed by ${table.key}, read in pages by id.`,
    '`metadata` holds every metadata group whole (auto, agent, custom, auto__<appId>, integrations) as JSON text for JSONExtract; ' +
      'the common metadata.auto fields also have their own columns.',
  ];
  if (refused) parts.push(`Not readable with this key yet: ${refused}.`);
  parts.push(
    'Full refresh is the safe mode. Incremental reads only rows whose metadata.auto.lastupdated moved since the last run ' +
      `(column "${INCREMENTAL_FIELD}"): it never sees a ${table.source === 'visitors' ? 'visitor' : 'account'} deleted in Pendo, so run a full refresh now and then to drop them.`,
  );
  return parts.join(' ');
}

export async function discoverPendo(config: PendoConfig): Promise<DiscoveredTable[]> {
  const refused = await probeAggregation(config);
  return PENDO_TABLES.map((table) => {
    const aggregation = table.kind === 'aggregation';
    return {
      table: table.name,
      should_sync: false,
      rows: null,
      incremental_available: aggregation,
      append_available: false,
      cdc_available: false,
      supports_webhooks: false,
      incremental_fields: aggregation ? [{ field: INCREMENTAL_FIELD, type: 'datetime', label: 'metadata.auto.lastupdated', nullable: true }] : [],
      detected_primary_keys: [table.key],
      available_columns: table.columns.map((c) => ({ field: c.sourceName, type: KIND_LABELS[c.kind], nullable: c.nullable })),
      description: describeTable(table, aggregation ? refused : undefined),
    };
  });
}
