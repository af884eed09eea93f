/**
 * A warehouse column as a connector describes it: the ClickHouse type it lands as, and how the
 * connector's text for it is loaded. Most columns load directly; a few (bytes, arrays) arrive in a
 * text form ClickHouse cannot parse as the final type, so they go through an EPHEMERAL raw column
 * whose DEFAULT expression converts them inside the engine — still no per-row work in JavaScript.
 */
export interface WarehouseColumn {
  /** Column name, exactly as in the source. */
  name: string;
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

export const rawColumnName = (name: string) => `_tributary_raw_${name}`;

/** The column names an insert lists, in the order the connector renders its values. */
export function insertColumnNames(columns: WarehouseColumn[], extra: string[] = []): string[] {
  return [...columns.map((c) => (c.viaRaw ? rawColumnName(c.name) : c.name)), ...extra];
}
