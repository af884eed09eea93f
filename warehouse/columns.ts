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

/** Lowercase snake case, the one naming rule for warehouse tables and columns. */
export function snakeCase(s: string): string {
  return s
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * Warehouse names for a table's source columns, in order: snake case (so every name is a plain
 * identifier in any SQL, and `"Item Id"` is queried as `item_id`), starting with a letter or _,
 * and made unique with a numeric suffix when two source names collapse to one.
 */
export function warehouseColumnNames(sourceNames: string[]): string[] {
  const used = new Set<string>();
  return sourceNames.map((src) => {
    // A leading underscore is kept: `_id` is not `id`.
    let base = (src.startsWith('_') ? '_' : '') + snakeCase(src) || 'column';
    if (base === '_') base = 'column';
    if (/^[0-9]/.test(base)) base = `_${base}`;
    if (base.startsWith('_tributary_')) base = `source${base}`;
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  });
}

export const rawColumnName = (name: string) => `_tributary_raw_${name}`;

/** The column names an insert lists, in the order the connector renders its values. */
export function insertColumnNames(columns: WarehouseColumn[], extra: string[] = []): string[] {
  return [...columns.map((c) => (c.viaRaw ? rawColumnName(c.name) : c.name)), ...extra];
}
