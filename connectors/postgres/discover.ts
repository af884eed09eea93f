import type pg from 'pg';
import type { DiscoveredTable } from '../types';
import { listColumns, listPrimaryKeys, listTables } from './catalog-queries';
import { readServerFacts, readTableFacts, tableSupportsCdc } from './cdc-prerequisites';
import { qualified } from './connection';
import { cursorFieldType, type PgColumn } from './types';
import type { PostgresConfig } from './config';

const DESCRIPTION =
  'Full refresh reloads the whole table each sync and sees deletions. Incremental and append read rows whose ' +
  'cursor is at or past the last value synced; they do not see deleted rows, and rows whose cursor is NULL are skipped.';

async function rowCount(client: pg.Client, schema: string, table: string, estimate: number): Promise<number | null> {
  if (estimate >= 0) return estimate;
  // Never analysed: count exactly, but never let discovery hang on a huge table.
  try {
    await client.query(`SET statement_timeout = '5s'`);
    const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(schema, table)}`);
    return Number(r.rows[0].n);
  } catch {
    return null;
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
  }
}

export function primaryKeysFor(columns: PgColumn[], constraintKeys: string[] | undefined): string[] {
  if (constraintKeys?.length) return constraintKeys;
  return columns.some((c) => c.name === 'id') ? ['id'] : [];
}

export async function discoverTables(client: pg.Client, config: PostgresConfig): Promise<DiscoveredTable[]> {
  // One connection runs one query at a time.
  const tables = await listTables(client, config.schema);
  const columns = await listColumns(client, config.schema);
  const pks = await listPrimaryKeys(client, config.schema);
  // CDC availability: two queries for the whole schema, not one per table.
  const server = await readServerFacts(client, config.schema);
  const cdcFacts = new Map((await readTableFacts(client, config.schema)).map((t) => [t.name, t]));
  const out: DiscoveredTable[] = [];
  for (const t of tables) {
    const cols = columns.get(t.name) ?? [];
    const incremental_fields = cols.flatMap((c) => {
      const type = cursorFieldType(c.typname);
      return type ? [{ field: c.name, type, label: c.name, nullable: c.nullable }] : [];
    });
    out.push({
      table: t.name,
      should_sync: false,
      rows: await rowCount(client, config.schema, t.name, Number(t.estimate)),
      incremental_available: incremental_fields.length > 0,
      append_available: incremental_fields.length > 0,
      cdc_available: cdcFacts.has(t.name) && tableSupportsCdc(server, cdcFacts.get(t.name)!),
      supports_webhooks: false,
      incremental_fields,
      detected_primary_keys: primaryKeysFor(cols, pks.get(t.name)),
      available_columns: cols.map((c) => ({ field: c.name, type: c.formatted, nullable: c.nullable })),
      description: t.comment ? `${t.comment}\n\n${DESCRIPTION}` : DESCRIPTION,
    });
  }
  return out;
}
