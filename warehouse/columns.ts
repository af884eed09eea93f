import { transliterate } from 'transliteration';

/**
 * A warehouse column as a connector describes it: the ClickHouse type it lands as, and how the
 * connector's text for it is loaded. Most columns load directly; a few (bytes, arrays) arrive in a
 * text form ClickHouse cannot parse as the final type, so they go through an EPHEMERAL raw column
 * whose DEFAULT expression converts them inside the engine — still no per-row work in JavaScript.
 */
export interface WarehouseColumn {
  /** Column name in the warehouse: lowercase snake case, unique within the table (see `warehouseColumnNames`). */
  name: string;
  /** Column name exactly as in the source. */
  sourceName: string;
  /** ClickHouse type, including Nullable(...) when the source column is nullable. */
  type: string;
  /** Source type as the source reports it (kept for reports and schema-change messages). */
  sourceType: string;
  nullable: boolean;
  /** Load through `_tributary_raw_<name> <rawType> EPHEMERAL`, converted by `convert(raw)`. */
  viaRaw?: { rawType: string; convert: (rawIdent: string) => string };
}

export const BOOKKEEPING_COLUMNS = [
  { name: '_tributary_synced_at', type: "DateTime64(6, 'UTC')", default: 'now64(6)' },
  { name: '_tributary_version', type: 'UInt64', default: '0' },
  { name: '_tributary_is_deleted', type: 'UInt8', default: '0' },
] as const;

/** Lowercase snake case of ASCII letters and digits; anything else separates words (table names use it as is). */
export function snakeCase(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * A name in Latin letters: accents folded (`ünïcödé` → `unicode`: NFKD, then the combining marks go) and
 * other scripts transliterated (`中文` → `Zhong Wen`) by the `transliteration` package, whose tables cover
 * the scripts snake case would otherwise erase whole.
 */
export function latinName(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return transliterate(s.normalize('NFKD').replace(/\p{M}/gu, ''), { unknown: ' ' });
}

/** Plain identifiers from `word`, unique within the list: `_` kept in front, a digit or our own prefix guarded, `_2`… on a clash. */
function uniqueIdentifiers(sourceNames: string[], word: (s: string) => string): string[] {
  const used = new Set<string>();
  return sourceNames.map((src) => {
    // A leading underscore is kept: `_id` is not `id`.
    let base = (src.startsWith('_') ? '_' : '') + word(src) || 'column';
    if (base === '_') base = 'column';
    if (/^[0-9]/.test(base)) base = `_${base}`;
    if (base.startsWith('_tributary_')) base = `source${base}`;
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  });
}

/**
 * Warehouse names for a table's source columns, in order: snake case of the Latin spelling (so every name
 * is a plain identifier in any SQL, `"Item Id"` is queried as `item_id` and `"中文"` as `zhong_wen`),
 * starting with a letter or _, and made unique with a numeric suffix when two source names collapse to one.
 */
export function warehouseColumnNames(sourceNames: string[]): string[] {
  return uniqueIdentifiers(sourceNames, (s) => snakeCase(latinName(s)));
}

/** The rule before letters were kept: whatever was not ASCII was dropped (`ünïcödé` → `n_c_d`, `中文` → `column`). */
export function legacyColumnNames(sourceNames: string[]): string[] {
  return uniqueIdentifiers(sourceNames, snakeCase);
}

/**
 * The columns to load into a live table: a table first synced under the old rule keeps it, for every
 * column (so its names stay unique together), or a re-sync would add `unicode` beside the `n_c_d` that
 * holds the data and fill both halves with NULLs. Detected from the table itself: a column that differs
 * between the rules is there under its old name and not its new one. A table dropped and synced afresh
 * (or a new one) takes the new names.
 */
export function keepExistingColumnNames<C extends WarehouseColumn>(columns: C[], existingNames: Iterable<string>): C[] {
  const existing = new Set(existingNames);
  const fresh = columns.map((c) => c.name);
  const sourceNames = columns.map((c) => c.sourceName);
  // Only columns named by this module's rule: a connector that names its own (Stripe) had no old rule.
  if (warehouseColumnNames(sourceNames).some((n, i) => n !== fresh[i])) return columns;
  const legacy = legacyColumnNames(sourceNames);
  const oldRule = legacy.some((l, i) => l !== fresh[i] && existing.has(l) && !existing.has(fresh[i]));
  return oldRule ? columns.map((c, i) => ({ ...c, name: legacy[i] })) : columns;
}

export const rawColumnName = (name: string) => `_tributary_raw_${name}`;

/** The column names an insert lists, in the order the connector renders its values. */
export function insertColumnNames(columns: WarehouseColumn[], extra: string[] = []): string[] {
  return [...columns.map((c) => (c.viaRaw ? rawColumnName(c.name) : c.name)), ...extra];
}
