import { KIND_LABELS } from '../kit';
import type { DiscoveredTable } from '../types';
import { callStripe, listPage, StripePermissionDenied } from './client';
import type { StripeConfig } from './config';
import { objectColumns } from './rows';
import { STRIPE_TABLES, type StripeTable } from './tables';

/** Lists one object of the table (nested: of the first customer's): a refusal names the permission it lacks. */
async function probe(config: StripeConfig, table: StripeTable): Promise<string | undefined> {
  try {
    if (!table.nested) {
      await callStripe(config, (s) => listPage(s, table.name, { limit: 1, ...table.listParams }));
      return undefined;
    }
    const customers = await callStripe(config, (s) => listPage(s, 'Customer', { limit: 1 }));
    const first = customers.data[0];
    if (first) await callStripe(config, (s) => listPage(s, table.name, { limit: 1 }, String(first.id)));
    return undefined;
  } catch (err) {
    if (err instanceof StripePermissionDenied) return err.message;
    throw err;
  }
}

function describeTable(table: StripeTable, refused: string | undefined): string {
  const parts = [`Stripe ${table.objectType} objects (${table.path}), keyed by id; nested objects are JSON text, expandable references keep the id.`];
  if (refused) parts.push(`Stripe refused to list them with this key: "${refused}". Give the restricted key ${table.permission}.`);
  parts.push('Webhook (recommended): Stripe pushes each change within seconds; a scheduled full listing is the safety net.');
  if (table.nested) {
    parts.push('Listed per customer, so only full refresh and webhook are offered.');
  } else {
    parts.push(
      `Append only reads objects created since the last sync (cursor "${table.cursorField}") and misses every update to existing rows — a subscription cancelled later stays active.`,
    );
    parts.push(
      table.events.length
        ? 'Incremental reads new objects plus the Events API (kept 30 days), so updates and deletions land too; a gap of more than 30 days falls back to a full refresh.'
        : `Stripe sends no events for ${table.objectType} objects (they never change), so incremental and webhook bring new rows only.`,
    );
  }
  return parts.join(' ');
}

export async function discoverStripe(config: StripeConfig): Promise<DiscoveredTable[]> {
  const refusals = await Promise.all(STRIPE_TABLES.map((t) => probe(config, t)));
  return STRIPE_TABLES.map((table, i) => {
    const columns = objectColumns(table.objectType);
    return {
      table: table.name,
      should_sync: false,
      rows: null,
      incremental_available: !table.nested,
      append_available: !table.nested,
      cdc_available: false,
      supports_webhooks: true,
      incremental_fields: table.nested ? [] : [{ field: table.cursorField, type: 'datetime', label: table.cursorField, nullable: false }],
      detected_primary_keys: ['id'],
      available_columns: columns.map((c) => ({ field: c.name, type: KIND_LABELS[c.kind], nullable: c.nullable })),
      description: describeTable(table, refusals[i]),
    };
  });
}
