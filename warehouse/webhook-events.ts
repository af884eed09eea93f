import type { WebhookEvent } from '../connectors/types';
import { quoteIdent, type Warehouse } from './client';
import { createTableDefsSql } from './cluster';
import { warehouseTableName } from './tables';
import { tsvEscape, unixSecondsText } from './tsv';

/**
 * `{prefix}_webhook_events`: every delivery the intake accepted, as the source sent it. It is the durable
 * hand-off between the intake (which answers 200 only once the event is here) and the source's webhook
 * workflow, and a history users can query. One row per event id after FINAL.
 */
export const webhookEventsTable = (prefix: string) => warehouseTableName(prefix, 'webhook_events');

const created = new Set<string>();

export async function ensureWebhookEventsTable(wh: Warehouse, table: string): Promise<void> {
  if (created.has(table)) return;
  await wh.command(
    createTableDefsSql(wh.database, table, {
      columns: ['id String', 'type LowCardinality(String)', "created DateTime64(0, 'UTC')", 'applies_to LowCardinality(String)', 'object_id String', 'payload String', "received_at DateTime64(3, 'UTC') DEFAULT now64(3)"],
      engine: 'ReplacingMergeTree',
      clauses: 'ORDER BY id',
    }, { cluster: wh.cluster, ifNotExists: true }),
  );
  created.add(table);
}

/** Forgets that the table exists (it was dropped or renamed). */
export function forgetWebhookEventsTable(table: string): void {
  created.delete(table);
}

export async function webhookEventSeen(wh: Warehouse, table: string, id: string): Promise<boolean> {
  const rows = await wh.queryRows<{ n: string | number }>(`SELECT count() AS n FROM ${quoteIdent(wh.database)}.${quoteIdent(table)} WHERE id = {id:String}`, {
    params: { id },
  });
  return Number(rows[0]?.n ?? 0) > 0;
}

export async function storeWebhookEvent(wh: Warehouse, table: string, e: WebhookEvent): Promise<void> {
  const line = [e.id, e.type, unixSecondsText(e.created), e.table ?? '', e.objectId ?? '', e.payload].map(tsvEscape).join('\t') + '\n';
  await wh.insertBytes(table, ['id', 'type', 'created', 'applies_to', 'object_id', 'payload'], Buffer.from(line, 'utf8'), { format: 'TabSeparated' });
}

export interface StoredWebhookEvent {
  id: string;
  applies_to: string;
  object_id: string;
  created: string;
  payload: string;
}

export async function readWebhookEvents(wh: Warehouse, table: string, ids: string[]): Promise<StoredWebhookEvent[]> {
  return wh.queryRows(
    `SELECT id, applies_to, object_id, toUnixTimestamp(created) AS created, payload FROM ${quoteIdent(wh.database)}.${quoteIdent(table)} FINAL
      WHERE has({ids:Array(String)}, id) ORDER BY created, received_at`,
    { params: { ids } },
  );
}

/** The stored events of these objects (`<object id>@<unix second>`) in those seconds; a repeated id may show twice (no FINAL: it scans the whole history). */
export async function readEventsOfObjectSeconds(wh: Warehouse, table: string, appliesTo: string, keys: string[]): Promise<StoredWebhookEvent[]> {
  return wh.queryRows(
    `SELECT id, applies_to, object_id, toUnixTimestamp(created) AS created, payload FROM ${quoteIdent(wh.database)}.${quoteIdent(table)}
      WHERE applies_to = {appliesTo:String} AND has({keys:Array(String)}, concat(object_id, '@', toString(toUnixTimestamp(created))))`,
    { params: { appliesTo, keys } },
  );
}
