import type { Warehouse } from './client';
import { createTableDefsSql } from './cluster';

/**
 * Alerts as a stream destinations can subscribe to: every raise and clear is a row of the pseudo-table
 * `_tributary_alerts` in the change log (op insert when raised, update when cleared), so "post to Slack when a sync
 * fails" is an ordinary webhook destination with `filters.tables: ["_tributary_alerts"]` (and an expression over
 * its columns, e.g. `kind = 'sync_failed'`). The table also exists in the warehouse, holding each alert's latest
 * state: its columns are what filter expressions are typed against, and it can be queried like any other table.
 */
export const ALERTS_TABLE = '_tributary_alerts';

export async function ensureAlertsTable(wh: Warehouse): Promise<void> {
  const columns = [
    'id String',
    'kind LowCardinality(String)',
    'severity LowCardinality(String)',
    'state LowCardinality(String)',
    'source_id String',
    'source_name String',
    'schema_id String',
    'schema_name String',
    'destination_id String',
    'destination_name String',
    'message String',
    "raised_at DateTime64(6, 'UTC')",
    "cleared_at Nullable(DateTime64(6, 'UTC'))",
    '_tributary_version UInt64',
  ];
  await wh.command(createTableDefsSql(wh.database, ALERTS_TABLE, { columns, engine: 'ReplacingMergeTree(_tributary_version)', clauses: 'ORDER BY id' }, { cluster: wh.cluster, ifNotExists: true }));
}

export const ALERT_COLUMNS = ['id', 'kind', 'severity', 'state', 'source_id', 'source_name', 'schema_id', 'schema_name', 'destination_id', 'destination_name', 'message', 'raised_at', 'cleared_at'];

