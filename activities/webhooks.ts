import { countAppliedEvents } from '../catalog/webhooks';
import { unsealConfig } from '../catalog';
import { listSchemas } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import { connectorFor } from '../connectors/registry';
import { SourceError } from '../connectors/types';
import { readEventsOfObjectSeconds, readWebhookEvents, webhookEventsTable, type StoredWebhookEvent } from '../warehouse/webhook-events';
import { createTableSql, dropTable, warehouseTableName } from '../warehouse/tables';
import { writtenChangesSql } from '../warehouse/change-diff';
import { quoteIdent } from '../warehouse/client';
import { createScratchTableLikeSql, dropScratchTableSql } from '../warehouse/cluster';
import { tableColumns } from '../warehouse/evolution';
import { recordChanges } from './change-recorder';
import { warehouseKey, type ActivityDeps } from './context';
import crypto from 'node:crypto';

export function createWebhookActivities(deps: ActivityDeps) {
  const { catalog, warehouse } = deps;

  /**
   * Two states of one object in the same second (Stripe's `created` is in seconds): only the source's own
   * order says which is newer, so those events are ranked by it, and the ones applied before (unranked, below
   * any rank) are applied again with their rank. Anything else keeps the unranked version: no source call.
   */
  async function rankWithinSeconds(
    prefix: string,
    table: string,
    mine: StoredWebhookEvent[],
    rank: (seconds: number[]) => Promise<Map<string, number>> | undefined,
  ): Promise<{ ranks: Map<string, number>; again: StoredWebhookEvent[] }> {
    const keyOf = (e: StoredWebhookEvent) => `${e.object_id}@${Number(e.created)}`;
    const keys = [...new Set(mine.filter((e) => e.object_id).map(keyOf))];
    const stored = keys.length ? await readEventsOfObjectSeconds(warehouse, webhookEventsTable(prefix), table, keys) : [];
    const all = new Map([...stored, ...mine].map((e) => [e.id, e]));
    const perKey = new Map<string, number>();
    for (const e of all.values()) if (e.object_id) perKey.set(keyOf(e), (perKey.get(keyOf(e)) ?? 0) + 1);
    const colliding = [...all.values()].filter((e) => (perKey.get(keyOf(e)) ?? 0) > 1);
    if (!colliding.length) return { ranks: new Map(), again: [] };
    let ranks: Map<string, number> | undefined;
    try {
      ranks = await rank([...new Set(colliding.map((e) => Number(e.created)))]);
    } catch (err) {
      // A key that may not read events: arrival order decides, as it would without ranks.
      if (!(err instanceof SourceError)) throw err;
      deps.log.warn({ table, err: err.message }, 'could not order webhook events within their second');
    }
    if (!ranks) return { ranks: new Map(), again: [] };
    const mineIds = new Set(mine.map((e) => e.id));
    return { ranks, again: colliding.filter((e) => !mineIds.has(e.id)) };
  }

  /**
   * A batch's rows as changes: they go into a scratch table shaped as the target (an insert into the
   * ReplacingMergeTree keeps only a key's newest row of a block), and each is compared with the key's state
   * before it (warehouse/change-diff.ts): no live row before → insert, a deletion → delete, otherwise update;
   * an unchanged row, or one older than what the table has (a late delivery), records nothing. Version: the row's.
   */
  async function recordWebhookChanges(sourceId: string, target: string, key: string[], batch: { columns: string[]; data: Buffer; format: string }) {
    if (!batch.data.length) return;
    const scratch = `${target}__changes_${crypto.randomBytes(6).toString('hex')}`;
    const db = quoteIdent(warehouse.database);
    await warehouse.command(createScratchTableLikeSql(warehouse.database, scratch, target));
    try {
      await warehouse.insertBytes(scratch, batch.columns, batch.data, { format: batch.format });
      const columns = await tableColumns(warehouse, target);
      const sql = writtenChangesSql({ database: warehouse.database, table: target, columns, key, written: { source: `${db}.${quoteIdent(scratch)}` } });
      await recordChanges({ catalog, warehouse }, { sourceId, table: target, sql });
    } finally {
      await warehouse.command(dropScratchTableSql(warehouse.database, scratch));
    }
  }

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

      const byTable = new Map<string, StoredWebhookEvent[]>();
      for (const e of events) if (webhookTables.has(e.applies_to)) byTable.set(e.applies_to, [...(byTable.get(e.applies_to) ?? []), e]);
      let applied = 0;
      for (const [table, mine] of byTable) {
        const target = warehouseTableName(source.prefix, table);
        // Events can arrive before the first polling load has made the table.
        const columns = await connector.describe(config, table);
        const orderBy = warehouseKey(webhookTables.get(table)!.primary_key_columns, columns);
        await warehouse.command(createTableSql(warehouse.database, target, columns, { kind: 'ReplacingMergeTree', orderBy }, { ifNotExists: true, cluster: warehouse.cluster }));
        const { ranks, again } = await rankWithinSeconds(source.prefix, table, mine, (seconds) => connector.webhooks!.rankEvents?.(config, table, seconds));
        const batch = connector.webhooks.toBatch(table, [...again, ...mine].map((e) => e.payload), ranks);
        const token = crypto.createHash('sha1').update(ids.join(',')).update(table).digest('hex');
        await warehouse.insertBytes(target, batch.columns, batch.data, { format: batch.format, settings: { insert_deduplication_token: token } });
        applied += Math.max(0, batch.rows - again.length);
        // The events' rows (those applied again with a rank changed nothing new) into the change log.
        if (orderBy.length) await recordWebhookChanges(sourceId, target, orderBy, again.length ? connector.webhooks.toBatch(table, mine.map((e) => e.payload), ranks) : batch);
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
