import { countAppliedEvents } from '../catalog/webhooks';
import { unsealConfig } from '../catalog';
import { listSchemas } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import { connectorFor } from '../connectors/registry';
import { readWebhookEvents, webhookEventsTable } from '../warehouse/webhook-events';
import { createTableSql, warehouseTableName } from '../warehouse/tables';
import { warehouseKey, type ActivityDeps } from './context';
import crypto from 'node:crypto';

export function createWebhookActivities(deps: ActivityDeps) {
  const { catalog, warehouse } = deps;

  return {
    /**
     * Applies accepted events to their tables: each event's object state, at a version from the event's
     * time, so a late or repeated delivery never overwrites a newer state. Events for tables that are not
     * (or no longer) synced by webhook are skipped; a deleted source ends the work.
     */
    async applyWebhookEvents(sourceId: string, ids: string[]): Promise<{ applied: number; skipped: number }> {
      const source = await getSource(catalog.db, sourceId);
      const connector = source && connectorFor(source.source_type);
      if (!source || !connector?.webhooks) return { applied: 0, skipped: ids.length };
      const config = connector.configSchema.parse(unsealConfig(catalog.secrets, source));
      const events = await readWebhookEvents(warehouse, webhookEventsTable(source.prefix), ids);
      const webhookTables = new Map(
        (await listSchemas(catalog.db, sourceId)).filter((s) => s.should_sync && s.sync_type === 'webhook').map((s) => [s.name, s]),
      );

      const byTable = new Map<string, string[]>();
      for (const e of events) if (webhookTables.has(e.applies_to)) byTable.set(e.applies_to, [...(byTable.get(e.applies_to) ?? []), e.payload]);
      let applied = 0;
      for (const [table, payloads] of byTable) {
        const target = warehouseTableName(source.prefix, table);
        // Events can arrive before the first polling load has made the table.
        const columns = await connector.describe(config, table);
        const orderBy = warehouseKey(webhookTables.get(table)!.primary_key_columns, columns);
        await warehouse.command(createTableSql(warehouse.database, target, columns, { kind: 'ReplacingMergeTree', orderBy }, { ifNotExists: true }));
        const batch = connector.webhooks.toBatch(table, payloads);
        const token = crypto.createHash('sha1').update(ids.join(',')).update(table).digest('hex');
        await warehouse.insertBytes(target, batch.columns, batch.data, { format: batch.format, settings: { insert_deduplication_token: token } });
        applied += batch.rows;
      }
      if (events.length) {
        const newest = Math.max(...events.map((e) => Number(e.created)));
        await countAppliedEvents(catalog.db, sourceId, applied, new Date(newest * 1000));
      }
      deps.log.debug({ sourceId, received: ids.length, applied }, 'webhook events applied');
      return { applied, skipped: ids.length - applied };
    },
  };
}

export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
