import { Router } from 'express';
import type { ApiDeps } from '../context';
import { ApiError } from '../errors';
import { querySchema } from '../validation';

/**
 * Read-only SQL over the warehouse. ClickHouse's `readonly = 2` refuses writes, DDL and setting
 * changes inside the engine itself; 64-bit integers and decimals come back as strings so no value
 * is rounded by JSON.
 */
export function queryRoutes(deps: ApiDeps): Router {
  const r = Router();
  r.post('/query', async (req, res) => {
    const { sql } = querySchema.parse(req.body ?? {});
    try {
      const result = await deps.warehouse.queryJson(sql, {
        // 2: reads only, but the query may still set output settings of its own.
        readonly: '2',
        max_result_rows: '1000000',
        output_format_json_quote_64bit_integers: 1,
        output_format_json_quote_decimals: 1,
        output_format_decimal_trailing_zeros: 1,
        output_format_json_quote_denormals: 1,
      });
      res.json({ columns: result.meta, rows: result.data, row_count: result.rows });
    } catch (err) {
      const message = (err as Error).message;
      throw new ApiError(400, /readonly/i.test(message) ? 'read_only' : 'query_error', message.trim(), [{ field: 'sql', message: message.trim() }]);
    }
  });
  return r;
}
