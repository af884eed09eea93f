import type { WarehouseColumn } from '../../warehouse/columns';
import { tsvEscape, TSV_NULL, unixSecondsText } from '../../warehouse/tsv';

/**
 * JSON objects as typed warehouse rows. A connector declares each column's kind and where it sits in the
 * object (`path`: `metadata.auto.lastvisit` is ['metadata', 'auto', 'lastvisit']); the kit gives it its
 * ClickHouse type and renders its TabSeparated text. Kinds:
 *
 *   string → String · int → Int64 · float → Float64 · bool → Bool ·
 *   timestamp (Unix seconds) → DateTime64(0, 'UTC') · timestamp_ms (Unix milliseconds) → DateTime64(3, 'UTC') ·
 *   id (an expandable reference) → String holding the id, even when the API returned the object ·
 *   json (objects, arrays) → String of JSON text, queryable with JSONExtract* · strings → Array(String).
 *
 * A value of the wrong JSON type becomes NULL rather than a wrong value (an int column never holds 1.5).
 */
export type ColumnKind = 'string' | 'int' | 'float' | 'bool' | 'timestamp' | 'timestamp_ms' | 'id' | 'json' | 'strings';

export const CLICKHOUSE_TYPES: Record<ColumnKind, string> = {
  string: 'String',
  int: 'Int64',
  float: 'Float64',
  bool: 'Bool',
  timestamp: "DateTime64(0, 'UTC')",
  timestamp_ms: "DateTime64(3, 'UTC')",
  id: 'String',
  json: 'String',
  strings: 'Array(String)',
};

/** How discovery shows each kind (db-schema's available_columns). */
export const KIND_LABELS: Record<ColumnKind, string> = {
  string: 'string',
  int: 'integer',
  float: 'number',
  bool: 'boolean',
  timestamp: 'timestamp',
  timestamp_ms: 'timestamp (ms)',
  id: 'id (expandable)',
  json: 'json',
  strings: 'array of strings',
};

export interface KitColumn extends WarehouseColumn {
  kind: ColumnKind;
  /** Where the value sits in the object (default: [sourceName]). */
  path?: string[];
}

/**
 * A declared column. Nullable unless `nullable: false` (APIs leave fields out); `strings` is never Nullable
 * (ClickHouse has no Nullable(Array)): a missing list is [].
 */
export function kitColumn(name: string, kind: ColumnKind, opts: { path?: string[]; nullable?: boolean; sourceName?: string } = {}): KitColumn {
  const nullable = kind !== 'strings' && (opts.nullable ?? true);
  const base = CLICKHOUSE_TYPES[kind];
  return { name, sourceName: opts.sourceName ?? name, kind, sourceType: kind, nullable, type: nullable ? `Nullable(${base})` : base, ...(opts.path ? { path: opts.path } : {}) };
}

/**
 * ClickHouse's TabSeparated form of an Array(String): ['a','b'], each element a quoted string with backslash, quote and
 * control characters escaped once. The field is not TSV-escaped again: ClickHouse reads an array straight from
 * the row, so a second escaping would land every backslash doubled (and break on a quote).
 */
function arrayText(values: unknown[]): string {
  const quoted = (v: unknown) => `'${(typeof v === 'string' ? v : JSON.stringify(v)).replace(/[\\'\t\n\r]/g, (c) => ARRAY_ESCAPES[c])}'`;
  return `[${values.map(quoted).join(',')}]`;
}
const ARRAY_ESCAPES: Record<string, string> = { '\\': '\\\\', "'": "\\'", '\t': '\\t', '\n': '\\n', '\r': '\\r' };

const pad3 = (n: number) => String(n).padStart(3, '0');

/** What DateTime64 holds: 1900-01-01 to 2299-12-31, as Unix milliseconds. */
const inDateTime64 = (ms: number) => Number.isFinite(ms) && ms >= -2_208_988_800_000 && ms < 10_413_792_000_000;

/** Unix milliseconds as DateTime64(3) text; NULL outside what DateTime64 holds. */
function unixMillisText(ms: number): string {
  if (!inDateTime64(ms)) return TSV_NULL;
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  return `${wholeSecondsText(seconds)}.${PAD3[whole - seconds * 1000]}`;
}

const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => pad3(i));
/** The date part ('2026-01-01 ') of days asked for: the times of a sync's rows fall on a few thousand days at most. */
const dayTexts = new Map<number, string>();

/**
 * unixSecondsText of a whole number of seconds, without a Date for each: the day's text is kept, the time of day
 * is arithmetic (a Unix day has 86,400 seconds, leap seconds are not counted).
 */
function wholeSecondsText(seconds: number): string {
  const day = Math.floor(seconds / 86_400);
  let dayText = dayTexts.get(day);
  if (dayText === undefined) {
    if (dayTexts.size >= 20_000) dayTexts.clear();
    const text = unixSecondsText(day * 86_400);
    dayText = text.slice(0, text.indexOf(' ') + 1);
    dayTexts.set(day, dayText);
  }
  const t = seconds - day * 86_400;
  const h = Math.floor(t / 3600);
  const m = Math.floor((t - h * 3600) / 60);
  return `${dayText}${PAD2[h]}:${PAD2[m]}:${PAD2[t - h * 3600 - m * 60]}`;
}

/** One value's TabSeparated text for its kind. */
export function fieldText(kind: ColumnKind, value: unknown): string {
  if (kind === 'strings') return arrayText(Array.isArray(value) ? value : []);
  if (value === null || value === undefined) return TSV_NULL;
  switch (kind) {
    case 'int':
      return Number.isSafeInteger(value) ? String(value) : typeof value === 'string' && /^-?\d{1,18}$/.test(value) ? value : TSV_NULL;
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : TSV_NULL;
    case 'bool':
      return typeof value === 'boolean' ? (value ? 'true' : 'false') : TSV_NULL;
    case 'timestamp':
      return typeof value === 'number' && inDateTime64(value * 1000) ? (Number.isInteger(value) ? wholeSecondsText(value) : unixSecondsText(value)) : TSV_NULL;
    case 'timestamp_ms':
      return typeof value === 'number' ? unixMillisText(value) : TSV_NULL;
    case 'id':
      if (typeof value === 'object') return typeof (value as { id?: unknown }).id === 'string' ? tsvEscape((value as { id: string }).id) : TSV_NULL;
      return tsvEscape(String(value));
    case 'json':
      return tsvEscape(JSON.stringify(value));
    default:
      return tsvEscape(typeof value === 'string' ? value : JSON.stringify(value));
  }
}

function valueAt(object: Record<string, unknown>, column: KitColumn): unknown {
  if (!column.path) return object[column.sourceName];
  let v: unknown = object;
  for (const key of column.path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** One TabSeparated line: the columns in order, then `_tributary_version` and `_tributary_is_deleted`. */
export function objectRow(columns: KitColumn[], object: Record<string, unknown>, version: bigint, deleted: boolean): string {
  const fields = columns.map((c) => fieldText(c.kind, valueAt(object, c)));
  fields.push(version.toString(), deleted ? '1' : '0');
  return fields.join('\t') + '\n';
}

/** The columns a rendered line fills, in order. */
export const rowColumns = (columns: KitColumn[]) => [...columns.map((c) => c.name), '_tributary_version', '_tributary_is_deleted'];
