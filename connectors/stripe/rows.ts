import type { WarehouseColumn } from '../../warehouse/columns';
import { tsvEscape, TSV_NULL, unixSecondsText } from '../../warehouse/tsv';
import { OBJECT_COLUMNS } from './columns.generated';

/**
 * Stripe objects as warehouse rows. Columns are the object's top-level properties at the pinned API
 * version, typed from Stripe's OpenAPI spec; every column but `id` is Nullable, because Stripe leaves
 * fields out by object subtype (a card payment method has no `sepa_debit`). Kinds:
 *
 *   string → String · int → Int64 (amounts are integers in the currency's minor unit) · float → Float64 ·
 *   bool → Bool · timestamp (Unix seconds) → DateTime64(0, 'UTC') · id (an expandable reference) → String
 *   holding the id, even when the API returned the object · json (nested objects, lists) → String of JSON ·
 *   strings → Array(String).
 */
const CLICKHOUSE_TYPES: Record<string, string> = {
  string: 'String',
  int: 'Int64',
  float: 'Float64',
  bool: 'Bool',
  timestamp: "DateTime64(0, 'UTC')",
  id: 'String',
  json: 'String',
  strings: 'Array(String)',
};

export interface StripeColumn extends WarehouseColumn {
  kind: string;
}

export function objectColumns(objectType: string): StripeColumn[] {
  const spec = OBJECT_COLUMNS[objectType];
  if (!spec) throw new Error(`no columns for Stripe object "${objectType}"`);
  return spec.split(' ').map((entry) => {
    const [name, kind] = entry.split(':');
    const base = CLICKHOUSE_TYPES[kind];
    const nullable = name !== 'id' && kind !== 'strings';
    return { name, sourceName: name, kind, sourceType: kind, nullable, type: nullable ? `Nullable(${base})` : base };
  });
}

/** ClickHouse's text form of an Array(String): ['a','b'] with \ and ' escaped. */
function arrayText(values: unknown[]): string {
  return `[${values.map((v) => `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(',')}]`;
}

function fieldText(kind: string, value: unknown): string {
  if (kind === 'strings') return tsvEscape(arrayText(Array.isArray(value) ? value : []));
  if (value === null || value === undefined) return TSV_NULL;
  switch (kind) {
    case 'int':
      return Number.isSafeInteger(value) ? String(value) : TSV_NULL;
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : TSV_NULL;
    case 'bool':
      return value ? 'true' : 'false';
    case 'timestamp':
      return typeof value === 'number' ? unixSecondsText(value) : TSV_NULL;
    case 'id':
      if (typeof value === 'object') return typeof (value as { id?: unknown }).id === 'string' ? tsvEscape((value as { id: string }).id) : TSV_NULL;
      return tsvEscape(String(value));
    case 'json':
      return tsvEscape(JSON.stringify(value));
    default:
      return tsvEscape(typeof value === 'string' ? value : JSON.stringify(value));
  }
}

/** One TabSeparated line: the columns in order, then `_tributary_version` and `_tributary_is_deleted`. */
export function objectRow(columns: StripeColumn[], object: Record<string, unknown>, version: bigint, deleted: boolean): string {
  const fields = columns.map((c) => fieldText(c.kind, object[c.sourceName]));
  fields.push(version.toString(), deleted ? '1' : '0');
  return fields.join('\t') + '\n';
}

export const rowColumns = (columns: StripeColumn[]) => [...columns.map((c) => c.name), '_tributary_version', '_tributary_is_deleted'];
