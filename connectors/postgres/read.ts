import { to as copyTo } from 'pg-copy-streams';
import type { Batch, ReadRequest } from '../types';
import { insertColumnNames } from '../../warehouse/columns';
import { connect, qualified } from './connection';
import type { PostgresConfig } from './config';
import type { MappedColumn } from './types';

const NEWLINE = 0x0a;
const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;

function countRows(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

/**
 * Streams a table as TabSeparated bytes: Postgres renders every value in a form ClickHouse parses
 * (COPY text escaping is TabSeparated escaping), and the bytes are cut into batches at row ends.
 * Memory stays at about one batch whatever the table's size.
 */
export async function* readTable(config: PostgresConfig, req: ReadRequest): AsyncGenerator<Batch> {
  const columns = req.columns as MappedColumn[];
  if (req.mode !== 'full_refresh') {
    throw new Error(`The Postgres connector does not support sync type "${req.mode}" yet`);
  }
  const selectList = [...columns.map((c) => c.selectExpr), `${req.version.toString()}::bigint`].join(', ');
  const sql = `COPY (SELECT ${selectList} FROM ${qualified(config.schema, req.table)}) TO STDOUT`;
  const insertColumns = insertColumnNames(columns, ['_tributary_version']);
  const batchBytes = req.batchBytes ?? DEFAULT_BATCH_BYTES;

  const client = await connect(config);
  try {
    const stream = client.query(copyTo(sql));
    let chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size < batchBytes) continue;
      const buf = Buffer.concat(chunks, size);
      const cut = buf.lastIndexOf(NEWLINE) + 1;
      const data = buf.subarray(0, cut);
      const rest = buf.subarray(cut);
      chunks = rest.length ? [Buffer.from(rest)] : [];
      size = rest.length;
      yield { format: 'TabSeparated', columns: insertColumns, data, rows: countRows(data) };
    }
    if (size > 0) {
      const data = Buffer.concat(chunks, size);
      yield { format: 'TabSeparated', columns: insertColumns, data, rows: countRows(data) };
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
