import { fieldText, type KitColumn } from '../kit';
import { TSV_NULL } from '../../warehouse/tsv';

/**
 * Pendo objects as TabSeparated rows (the kit's objectRow, plus one Pendo rule): Pendo writes 0 for a time that
 * never happened (`resetAt`, `expiresAfter` of a guide that never expires, `publishedAt` of a draft), which lands
 * as NULL rather than 1970-01-01. The `metadata` column keeps the groups exactly as Pendo sent them.
 */
function valueAt(object: Record<string, unknown>, column: KitColumn): unknown {
  if (!column.path) return object[column.sourceName];
  let v: unknown = object;
  for (const k of column.path) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

export function pendoRow(columns: KitColumn[], object: Record<string, unknown>, version: bigint): string {
  const fields = columns.map((c) => {
    const v = valueAt(object, c);
    return c.kind === 'timestamp_ms' && v === 0 ? TSV_NULL : fieldText(c.kind, v);
  });
  fields.push(version.toString(), '0');
  return fields.join('\t') + '\n';
}
