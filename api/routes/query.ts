import { Router } from 'express';
import { checkReadQuery, UnsafeQueryError } from '../../warehouse/read-query';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { querySchema } from '../validation';

/**
 * Read-only SQL over the warehouse. The query is parsed and checked by ClickHouse's own parser,
 * then run under `readonly = 2`, which refuses writes and DDL inside the engine itself. 64-bit
 * integers and decimals come back as strings so JSON rounds no value.
 */
export function queryRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post('/query', async (req, res) => {
    const { sql } = querySchema.parse(req.body ?? {});
    try {
      const checked = await checkReadQuery(deps.warehouse, sql);
      const result = await deps.warehouse.queryReadOnly(checked, {
        settings: {
          max_result_rows: '1000000',
          output_format_json_quote_64bit_integers: 1,
          output_format_json_quote_decimals: 1,
          output_format_decimal_trailing_zeros: 1,
          output_format_json_quote_denormals: 1,
        },
      });
      res.json({ columns: result.meta, rows: result.data, row_count: result.rows });
    } catch (err) {
      const message = (err as Error).message.trim();
      const code = err instanceof UnsafeQueryError ? 'forbidden_query' : /readonly/i.test(message) ? 'read_only' : 'query_error';
      throw new ApiError(400, code, message, [{ field: 'sql', message }]);
    }
  });
  return r;
}
