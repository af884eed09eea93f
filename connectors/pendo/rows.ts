import { fieldText as kitFieldText, memberJson as kitMemberJson, type KitColumn, type ScannedItem } from '../kit';
import { tsvEscape as escape, TSV_NULL } from '../../warehouse/tsv';

/**
 * Pendo objects as TabSeparated rows (the kit's objectRow, plus one Pendo rule): Pendo writes 0 for a time that
 * never happened (`resetAt`, `expiresAfter` of a guide that never expires, `publishedAt` of a draft), which lands
 * as NULL rather than 1970-01-01. The `metadata` column keeps the groups exactly as Pendo sent them.
 */

// Bound once: an imported name is a property read through the module's export getters at each use (tsx's CJS
// output), and these run for every field of every row.
const fieldText = kitFieldText;
const memberJson = kitMemberJson;
const tsvEscape = escape;

/** The value at `path` from `object`, as the kit's valueAt: undefined past anything that is not an object. */
function walk(object: unknown, path: string[], length: number): unknown {
  let v = object;
  for (let j = 0; j < length; j++) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[path[j]] : undefined;
  return v;
}

interface Field {
  kind: KitColumn['kind'];
  /** Top-level field name, or the last key of the path. */
  key: string;
  /** Index of the parent object in the row's parents (-1: the object itself). */
  parent: number;
  /** A top-level JSON column: its text may be passed on as Pendo sent it. */
  raw: boolean;
}

/**
 * The renderer of rows of `columns`. Columns under the same object (the lifted `metadata.auto.*`) look that object up
 * once a row. `scanned`: the object as the scanner cut it out; a top-level JSON column (a visitor's `metadata`, most
 * of its bytes) is then its text as Pendo sent it when that text is what JSON.stringify would write (memberJson
 * proves it), instead of the parsed value serialized again.
 */
export function pendoRowRenderer(columns: KitColumn[]): (object: Record<string, unknown>, version: bigint, scanned?: ScannedItem) => string {
  const parents: string[][] = [];
  const parentIds = new Map<string, number>();
  const fields: Field[] = columns.map((c) => {
    if (!c.path) return { kind: c.kind, key: c.sourceName, parent: -1, raw: c.kind === 'json' };
    if (!c.path.length) throw new Error(`column ${c.name}: a path names at least one key`);
    const up = c.path.slice(0, -1);
    const id = JSON.stringify(up);
    let parent = parentIds.get(id);
    if (parent === undefined) parentIds.set(id, (parent = parents.push(up) - 1));
    return { kind: c.kind, key: c.path[c.path.length - 1], parent, raw: false };
  });
  const at: unknown[] = new Array(parents.length);
  return (object, version, scanned) => {
    for (let p = 0; p < parents.length; p++) at[p] = walk(object, parents[p], parents[p].length);
    let line = '';
    for (const f of fields) {
      let v: unknown;
      if (f.parent < 0) v = object[f.key];
      else {
        const o = at[f.parent];
        v = o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>)[f.key] : undefined;
      }
      let text: string | undefined;
      if (v === 0 && f.kind === 'timestamp_ms') text = TSV_NULL;
      else if (f.raw && scanned && v !== null && v !== undefined) {
        const json = memberJson(scanned, f.key);
        if (json !== undefined) text = scanned.backslashes ? tsvEscape(json) : json;
      }
      line += (text ?? fieldText(f.kind, v)) + '\t';
    }
    return `${line}${version}\t0\n`;
  };
}

const renderers = new WeakMap<KitColumn[], ReturnType<typeof pendoRowRenderer>>();

/** One row of `columns` (pendoRowRenderer, kept per column list). */
export function pendoRow(columns: KitColumn[], object: Record<string, unknown>, version: bigint, scanned?: ScannedItem): string {
  let render = renderers.get(columns);
  if (!render) renderers.set(columns, (render = pendoRowRenderer(columns)));
  return render(object, version, scanned);
}
