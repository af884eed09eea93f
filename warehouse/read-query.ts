import type { Warehouse } from './client';

/**
 * Table functions a user query may use: they only generate data. Everything else (file, url, s3,
 * postgresql, remote, executable, ...) reaches outside the warehouse and is refused.
 */
const SAFE_TABLE_FUNCTIONS = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'generate_series', 'generateSeries', 'generateRandom', 'values', 'null', 'view']);
/** Scalar functions that read the host. */
const UNSAFE_FUNCTIONS = new Set(['file', 'filesystemAvailable', 'filesystemCapacity', 'filesystemUnreserved']);

export class UnsafeQueryError extends Error {}

/**
 * Parses a user's SQL with ClickHouse's own parser and returns it re-rendered as exactly one
 * statement, after checking its syntax tree: no table function that reaches outside the
 * warehouse, no host-reading function, no INTO OUTFILE. `readonly` then refuses any write.
 */
export async function checkReadQuery(wh: Warehouse, sql: string, signal?: AbortSignal): Promise<string> {
  // formatQuery parses exactly one statement: "SELECT 1; DROP ..." is a syntax error here.
  const formatted = await wh.queryReadOnly('SELECT formatQuerySingleLine({sql:String}) AS q', { params: { sql }, signal });
  const single = String(formatted.data[0].q);
  const lines = await wh.explainAst(single, { signal });
  lines.forEach((line, i) => {
    const fn = /^\s*Function (\S+)/.exec(line)?.[1];
    if (!fn) return;
    const isTableFunction = /^\s*TableExpression\b/.test(lines[i - 1] ?? '');
    if (isTableFunction && !SAFE_TABLE_FUNCTIONS.has(fn)) throw new UnsafeQueryError(`Table function ${fn}() is not allowed in queries`);
    if (UNSAFE_FUNCTIONS.has(fn)) throw new UnsafeQueryError(`Function ${fn}() is not allowed in queries`);
  });
  // The limits on user queries are the platform's (the engine refuses SETTINGS too; a server's profile may not).
  if (lines.some((l) => /^\s*Set\b/.test(l))) throw new UnsafeQueryError('SET and SETTINGS are not allowed in queries: the limits on queries are set by the platform (TRIBUTARY_QUERY_*)');
  // A Literal directly under the root is an INTO OUTFILE target.
  if (lines.some((l) => /^ Literal /.test(l))) throw new UnsafeQueryError('INTO OUTFILE is not allowed in queries');
  return single;
}
