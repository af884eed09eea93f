import { Router } from 'express';
import { QUERY_LIMIT_ENV } from '../../warehouse/query-limits';
import { checkReadQuery, UnsafeQueryError } from '../../warehouse/read-query';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { querySchema } from '../validation';
import { relinkLocal } from '../linked-tables';

/** ClickHouse's error for each user query limit (warehouse/query-limits.ts), and what to tell the user. */
function limitError(err: { code?: string; message: string }): ApiError | undefined {
  const over = (code: string, what: string, env: string) =>
    new ApiError(400, code, `${err.message.trim()} The query went over the limit on ${what}; set ${env} to change it.`, [
      { field: 'sql', message: `over the limit on ${what} (${env})` },
    ]);
  switch (err.code) {
    case '159': // TIMEOUT_EXCEEDED
      return over('query_timeout', "a query's running time", QUERY_LIMIT_ENV.timeoutSeconds);
    case '241': // MEMORY_LIMIT_EXCEEDED
      return over('query_memory_limit', "a query's memory", QUERY_LIMIT_ENV.maxMemoryBytes);
    case '396': // TOO_MANY_ROWS_OR_BYTES
      return /max bytes/i.test(err.message)
        ? over('query_result_too_large', "a result's size in bytes", QUERY_LIMIT_ENV.maxResultBytes)
        : over('query_result_too_large', "a result's rows", QUERY_LIMIT_ENV.maxResultRows);
  }
  const setting = /Cannot modify '(\w+)' setting in readonly mode/.exec(err.message)?.[1];
  if (setting) {
    return new ApiError(400, 'forbidden_setting', `Queries cannot change settings (${setting}): the limits on queries are set by the platform (TRIBUTARY_QUERY_*)`, [
      { field: 'sql', message: `a SETTINGS clause or SET (${setting}) is not allowed` },
    ]);
  }
  return undefined;
}

/**
 * Read-only SQL over the warehouse. The query is parsed and checked by ClickHouse's own parser, then run
 * under the user query limits with `readonly = 1`, which refuses writes, DDL and any change of a setting
 * inside the engine itself. 64-bit integers and decimals come back as strings so JSON rounds no value.
 */
export function queryRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post('/query', async (req, res) => {
    const { sql } = querySchema.parse(req.body ?? {});
    // A client that goes away no longer waits: its query is dropped if the engine has not started it.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort(new Error('the client closed the request'));
    });
    try {
      const checked = await checkReadQuery(deps.warehouse, sql, gone.signal);
      await relinkLocal(deps, checked);
      const result = await deps.warehouse.queryReadOnly(checked, { signal: gone.signal });
      res.json({ columns: result.meta, rows: result.data, row_count: result.rows });
    } catch (err) {
      if (gone.signal.aborted) return;
      if (err instanceof ApiError) throw err;
      const e = err as Error & { code?: string };
      const limit = limitError(e);
      if (limit) throw limit;
      const message = e.message.trim();
      const code = err instanceof UnsafeQueryError ? 'forbidden_query' : /readonly/i.test(message) ? 'read_only' : 'query_error';
      throw new ApiError(400, code, message, [{ field: 'sql', message }]);
    }
  });
  return r;
}
