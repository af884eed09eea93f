import type { Queryable } from '../catalog/db';
import { listSchemas } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import type { ChangeRow } from '../warehouse/change-log';
import { quoteIdent, sqlString, type Warehouse } from '../warehouse/client';
import { checkReadQuery, UnsafeQueryError } from '../warehouse/read-query';
import { warehouseTableName } from '../warehouse/tables';
import { ALERTS_TABLE } from '../warehouse/alerts-stream';
import { webhookEventsTable } from '../warehouse/webhook-events';
import type { ChangeOperation, DestinationFilters } from './types';

/**
 * A destination's filters: which source, which warehouse tables, which operations, and an expression over the
 * row — a ClickHouse SQL boolean expression (`status = 'paid' AND amount > 100`), the language users already
 * write in /api/query. The engine evaluates it over each change's row, with the row's columns typed as the
 * table's own (JSONExtract per column, types from system.columns), on the read-only session under the user query
 * limits. Checked at create/patch time with /api/query's guard (warehouse/read-query.ts) plus: a bare expression
 * (no subquery, no table, no SETTINGS, no aggregate or window function, no arrayJoin, no dictionary or join
 * lookups) that the engine types as a boolean for every table of the filter. An expression needs `tables`: their
 * columns are its names. A column the row lacks is NULL (a delete's row is its key: its other columns come from
 * its old row where the source gave one). A NULL result (a NULL column compared) does not match.
 */

export const CHANGE_OPERATIONS: readonly ChangeOperation[] = ['insert', 'update', 'delete'];

export interface FilterProblem {
  /** `filters.expression`, `filters.tables.1`… */
  path: string;
  message: string;
}

export interface FilterDeps {
  catalog: { db: Queryable };
  warehouse: Warehouse;
}

interface TableColumn {
  table: string;
  name: string;
  type: string;
}

/** The columns a change's row carries, per table, in order (bookkeeping and computed-only columns aside). */
async function columnsOf(wh: Warehouse, tables: string[]): Promise<Map<string, TableColumn[]>> {
  const out = new Map<string, TableColumn[]>(tables.map((t) => [t, []]));
  if (!tables.length) return out;
  const rows = await wh.queryRows<TableColumn>(
    `SELECT table, name, type FROM system.columns
      WHERE database = {db:String} AND table IN {tables:Array(String)}
        AND default_kind NOT IN ('EPHEMERAL', 'ALIAS') AND NOT startsWith(name, '_tributary_')
      ORDER BY table, position`,
    { params: { db: wh.database, tables } },
  );
  for (const r of rows) out.get(r.table)?.push(r);
  return out;
}

const INDEX = '_tributary_index';
const PAIR = '_tributary_pair';

/** The type a column is read as: Nullable where ClickHouse allows it, so a column the row lacks is NULL, not 0 or ''. */
function nullableType(type: string): string {
  if (/^Nullable\(/.test(type)) return type;
  const lc = /^LowCardinality\((.*)\)$/.exec(type);
  if (lc) return /^Nullable\(/.test(lc[1]) ? type : `LowCardinality(Nullable(${lc[1]}))`;
  if (/^(Array|Map|Tuple|Nested|JSON|Object|Variant|Dynamic)\b/.test(type)) return type;
  return `Nullable(${type})`;
}

/**
 * The rows of one table's changes as typed columns. `rows` and `oldRows` are Array(String) of JSONEachRow objects
 * (query parameters or literals; '' for no old row), `indexes` an Array(UInt32) of their places in the caller's
 * list. A column is the row's value, or where the row lacks it (a delete's row is its key) the old row's: a delete
 * is judged on the row's last known values. A column neither has is NULL.
 */
function typedRowsSql(columns: TableColumn[], indexes: string, rows: string, oldRows: string): string {
  const cols = columns.map((c) => {
    const name = sqlString(c.name);
    const type = sqlString(nullableType(c.type));
    return `if(JSONHas(${PAIR}.2, ${name}) OR NOT JSONHas(${PAIR}.3, ${name}), JSONExtract(${PAIR}.2, ${name}, ${type}), JSONExtract(${PAIR}.3, ${name}, ${type})) AS ${quoteIdent(c.name)}`;
  });
  return `SELECT ${PAIR}.1 AS ${INDEX}${cols.map((c) => `, ${c}`).join('')}
            FROM (SELECT arrayJoin(arrayZip(${indexes}, ${rows}, ${oldRows})) AS ${PAIR})`;
}

/** Functions an expression over one row may not call: they read other data, or change the row count. */
const REFUSED_FUNCTIONS = /^(arrayJoin|joinGet|joinGetOrNull|dictGet\w*|dictHas|dictIsIn|getSetting|file|url|input|currentUser|currentProfiles|currentRoles)$/i;

/** ClickHouse's `failed at position N` as a position inside the expression, with what is there. */
function syntaxErrorMessage(message: string, expr: string, prefixLength: number): string {
  const pos = Number(/failed at position (\d+)/.exec(message)?.[1]);
  const expectedAll = /Expected (?:one of: )?(.*?)(?::\s*In scope|\.\s*$|$)/s.exec(message)?.[1]?.trim();
  // ClickHouse lists every token it could take: the first few say enough.
  const list = expectedAll?.split(', ').filter((t) => t !== 'token');
  const expected = list && (list.length > 6 ? `one of ${list.slice(0, 6).join(', ')}…` : list.join(', '));
  if (!Number.isFinite(pos) || pos === 0) return `syntax error: ${message.split(/\.?\s*In scope/)[0]}`;
  const at = pos - prefixLength;
  // Before the expression: the bracket around it did not close, so one inside it is left open.
  if (at < 1) return 'syntax error: a bracket is not closed';
  if (at > expr.length) return 'syntax error at the end of the expression: it ends too early';
  return `syntax error at position ${at} (${JSON.stringify(expr.slice(at - 1, at + 19))})${expected ? `: expected ${expected}` : ''}`;
}

/**
 * What is wrong with an expression as a filter over `columns` of `tables`, or null. `wh` answers on the
 * read-only session.
 */
async function expressionProblem(wh: Warehouse, expr: string, columns: Map<string, TableColumn[]>): Promise<string | null> {
  // The expression alone, parsed by ClickHouse: a newline either side so a comment cannot swallow the bracket.
  const prefix = 'SELECT (\n';
  const alone = `${prefix}${expr}\n) AS _tributary_match`;
  let lines: string[];
  try {
    // Parsed as given first, so the position of a syntax error is the expression's own.
    await wh.queryReadOnly('SELECT formatQuerySingleLine({sql:String}) AS q', { params: { sql: alone } });
    lines = await wh.explainAst(alone);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === '62') return syntaxErrorMessage(e.message, expr, prefix.length);
    return e.message.trim();
  }
  // One SELECT with one expression and no FROM: a subquery, a table, a second statement or SETTINGS show here.
  if (lines.filter((l) => /^\s*SelectQuery\b/.test(l)).length !== 1) return 'a subquery is not allowed in a filter expression (it is evaluated over the change\'s row alone)';
  if (lines.some((l) => /^\s*(Subquery|TablesInSelectQuery|TableExpression|TableIdentifier)\b/.test(l))) return 'a subquery or table is not allowed in a filter expression (it is evaluated over the change\'s row alone)';
  if (lines.some((l) => /^\s*Set\b/.test(l))) return 'SETTINGS are not allowed in a filter expression';
  if (lines.some((l) => /^\s*WindowDefinition\b/.test(l) || /^\s*Function \S+ .*\bover\b/i.test(l))) return 'a window function is not allowed in a filter expression';
  const functions = [...new Set(lines.map((l) => /^\s*Function (\S+)/.exec(l)?.[1]).filter((f): f is string => !!f))];
  const refused = functions.find((f) => REFUSED_FUNCTIONS.test(f));
  if (refused) return `function ${refused}() is not allowed in a filter expression`;
  if (functions.length) {
    const agg = await wh.queryRows<{ name: string }>(
      `SELECT name FROM system.functions WHERE is_aggregate AND (name IN {f:Array(String)} OR lower(name) IN {lf:Array(String)}) LIMIT 1`,
      { params: { f: functions, lf: functions.map((f) => f.toLowerCase()) } },
    );
    if (agg.length) return `aggregate function ${agg[0].name}() is not allowed in a filter expression (it is evaluated over one row)`;
  }
  // Typed by the engine over each table's columns (one empty row each): unknown columns and type errors show here.
  for (const [table, cols] of columns) {
    if (!cols.length) continue;
    const sql = `SELECT toTypeName((${expr}\n)) AS t FROM (${typedRowsSql(cols, '[0]', "['{}']", "['']")})`;
    try {
      const checked = await checkReadQuery(wh, sql);
      const r = await wh.queryReadOnly(checked);
      const type = String(r.data[0]?.t ?? '');
      if (!/^(Nullable\()?(Bool|UInt8)\)?$/.test(type.replace(/^LowCardinality\((.*)\)$/, '$1')) && type !== 'Nullable(Nothing)') {
        return `the expression must be a boolean (a condition such as status = 'paid'); over ${table}'s columns it is ${type}`;
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      if (err instanceof UnsafeQueryError) return e.message;
      const unknown = e.code === '47' ? /identifier [`'"]?([^`'"\s]+)[`'"]?/.exec(e.message)?.[1] : undefined;
      if (unknown) return `unknown column ${unknown}: ${table}'s columns are ${cols.map((c) => c.name).join(', ')}`;
      const message = e.message.trim().split(/\.?\s*[Ii]n scope /)[0].replace(/: While processing .*/s, '').replace(/:\s*$/, '');
      return `over ${table}'s columns: ${message}`;
    }
  }
  return null;
}

/** The warehouse tables a source writes: one per schema, and its webhook events table. */
async function sourceTables(db: Queryable, sourceId: string, prefix: string): Promise<Set<string>> {
  const schemas = await listSchemas(db, sourceId);
  return new Set([...schemas.map((s) => warehouseTableName(prefix, s.name)), webhookEventsTable(prefix)]);
}

/**
 * Every problem of a destination's filters (empty: none), each naming its path (`filters.tables.0`,
 * `filters.expression`). Tables must exist in the warehouse (and belong to `source_id` when given).
 */
export async function filterErrors(deps: FilterDeps, filters: DestinationFilters | undefined): Promise<FilterProblem[]> {
  const problems: FilterProblem[] = [];
  if (!filters) return problems;
  const wh = deps.warehouse;
  let owned: Set<string> | undefined;
  if (filters.source_id !== undefined) {
    const source = /^[0-9a-f-]{36}$/i.test(filters.source_id) ? await getSource(deps.catalog.db, filters.source_id) : undefined;
    if (!source) problems.push({ path: 'filters.source_id', message: `no source ${filters.source_id}` });
    else owned = await sourceTables(deps.catalog.db, source.id, source.prefix);
  }
  const tables = filters.tables ?? [];
  const existing = new Set(
    tables.length
      ? (
          await wh.queryRows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} AND name IN {t:Array(String)}', {
            params: { db: wh.database, t: tables },
          })
        ).map((r) => r.name)
      : [],
  );
  tables.forEach((t, i) => {
    if ((t.startsWith('_tributary_') && t !== ALERTS_TABLE) || !existing.has(t)) problems.push({ path: `filters.tables.${i}`, message: `no warehouse table ${t}` });
    else if (owned && t !== ALERTS_TABLE && !owned.has(t)) problems.push({ path: `filters.tables.${i}`, message: `table ${t} is not one of source ${filters.source_id}'s tables` });
  });
  (filters.operations ?? []).forEach((op, i) => {
    if (!CHANGE_OPERATIONS.includes(op)) problems.push({ path: `filters.operations.${i}`, message: `operation must be one of ${CHANGE_OPERATIONS.join(', ')}` });
  });
  if (filters.expression !== undefined) {
    if (!tables.length) {
      problems.push({ path: 'filters.tables', message: 'an expression needs the tables it is over (their columns are its names and types)' });
    } else if (!problems.some((p) => p.path.startsWith('filters.tables'))) {
      const problem = await expressionProblem(wh, filters.expression, await columnsOf(wh, tables));
      if (problem) problems.push({ path: 'filters.expression', message: problem });
    }
  }
  return problems;
}

/** Rows' bytes per matching query at most. */
const MATCH_QUERY_BYTES = 512 * 1024;

/** The indexes among `indexes` whose change's row passes `expr`: one engine query, a UNION ALL branch per table. */
async function matchOnce(wh: Warehouse, expr: string, columns: Map<string, TableColumn[]>, changes: ChangeRow[], indexes: number[]): Promise<number[]> {
  const byTable = new Map<string, number[]>();
  for (const i of indexes) {
    const list = byTable.get(changes[i].table);
    if (list) list.push(i);
    else byTable.set(changes[i].table, [i]);
  }
  const params: Record<string, unknown> = {};
  const branches: string[] = [];
  for (const [table, idx] of byTable) {
    const cols = columns.get(table) ?? [];
    if (!cols.length) continue;
    const n = branches.length;
    params[`i${n}`] = idx;
    params[`r${n}`] = idx.map((i) => changes[i].row);
    params[`o${n}`] = idx.map((i) => changes[i].old_row ?? '');
    branches.push(`SELECT ${INDEX} AS i, toUInt8(ifNull((${expr}\n), 0)) AS m FROM (${typedRowsSql(cols, `{i${n}:Array(UInt32)}`, `{r${n}:Array(String)}`, `{o${n}:Array(String)}`)})`);
  }
  if (!branches.length) return [];
  const r = await wh.queryReadOnly(`SELECT i FROM (${branches.join('\nUNION ALL\n')}) WHERE m = 1`, { params });
  return r.data.map((row) => Number(row.i));
}

/**
 * Whether each change passes the filters (source, tables, operations in JS; the expression in one engine query
 * over every change's typed row, on the read-only session — one per 512 KiB of rows). A change of a table the warehouse no longer has
 * does not match an expression.
 */
export async function matchChanges(wh: Warehouse, filters: DestinationFilters | undefined, changes: ChangeRow[]): Promise<boolean[]> {
  const result = changes.map(
    (c) =>
      (!filters?.source_id || c.source_id === filters.source_id) &&
      // Alerts reach only the destinations that name their stream: a destination of "every table" stays one of data.
      (filters?.tables?.length ? filters.tables.includes(c.table) : c.table !== ALERTS_TABLE) &&
      (!filters?.operations?.length || filters.operations.includes(c.op)),
  );
  const expr = filters?.expression;
  if (!expr || !result.some(Boolean)) return result;
  const candidates = result.flatMap((ok, i) => (ok ? [i] : []));
  const columns = await columnsOf(wh, [...new Set(candidates.map((i) => changes[i].table))]);
  const matched = new Set<number>();
  // One query for the page; a page whose rows go past MATCH_QUERY_BYTES is split (query parameters travel in the
  // request's URL to a ClickHouse server, which bounds its size).
  let start = 0;
  while (start < candidates.length) {
    let end = start;
    let bytes = 0;
    const size = (i: number) => changes[i].row.length + (changes[i].old_row?.length ?? 0);
    while (end < candidates.length && (end === start || bytes + size(candidates[end]) <= MATCH_QUERY_BYTES)) bytes += size(candidates[end++]);
    for (const i of await matchOnce(wh, expr, columns, changes, candidates.slice(start, end))) matched.add(i);
    start = end;
  }
  return result.map((ok, i) => ok && matched.has(i));
}
