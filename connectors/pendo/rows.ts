import { fieldText, memberJson, type KitColumn, type ScannedItem } from '../kit';
import { tsvEscape, TSV_NULL } from '../../warehouse/tsv';

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

/**
 * `scanned`: the object as the scanner cut it out. A top-level JSON column (a visitor's `metadata`, most of its
 * bytes) is then its text as Pendo sent it when that text is what JSON.stringify would write (memberJson proves
 * it), instead of the parsed value serialized again.
 */
export function pendoRow(columns: KitColumn[], object: Record<string, unknown>, version: bigint, scanned?: ScannedItem): string {
  let line = '';
  for (const c of columns) {
    const v = valueAt(object, c);
    let text: string | undefined;
    if (c.kind === 'timestamp_ms' && v === 0) text = TSV_NULL;
    else if (c.kind === 'json' && scanned && !c.path && v !== null && v !== undefined) {
      const raw = memberJson(scanned, c.sourceName);
      if (raw !== undefined) text = scanned.backslashes ? tsvEscape(raw) : raw;
    }
    line += (text ?? fieldText(c.kind, v)) + '\t';
  }
  return `${line}${version}\t0\n`;
}
