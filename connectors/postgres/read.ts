import { to as copyTo } from 'pg-copy-streams';
import type { Batch, ReadRequest } from '../types';
import { insertColumnNames } from '../../warehouse/columns';
import { SourceError } from '../types';
import { connect, qualified, quotePgIdent } from './connection';
import type { PostgresConfig } from './config';
import type { MappedColumn } from './types';

const NEWLINE = 0x0a;
// 4 MiB: as fast as larger batches here, and two of them in flight keep memory small.
const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

function countRows(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) n++;
  return n;
}

/** The text of field `index` in the last row of `data` (rows end with a newline); the cursor reached. */
function lastRowField(data: Buffer, index: number): string | undefined {
  if (index < 0 || data.length === 0) return undefined;
  const start = data.lastIndexOf(NEWLINE, data.length - 2) + 1;
  const field = data.subarray(start, data.length - 1).toString('utf8').split('\t')[index];
  return field === '\\N' ? undefined : field;
}

/** Cursor literals are inlined (COPY takes no parameters), so each must look like its type. */
const CURSOR_TEXT: Record<string, RegExp> = {
  int2: /^-?\d+$/,
  int4: /^-?\d+$/,
  int8: /^-?\d+$/,
  numeric: /^-?\d+(\.\d+)?$/,
  date: /^\d{4}-\d{2}-\d{2}$/,
  timestamp: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/,
  timestamptz: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/,
};

/**
 * Incremental reads rows at or past the cursor (a closed start: rows sharing the last value are read
 * again and deduplicated by primary key); append reads strictly past it, so it never repeats a row.
 * Rows whose cursor is NULL are never read.
 */
export function cursorCondition(col: MappedColumn, req: Pick<ReadRequest, 'mode' | 'cursor'>): string {
  const ident = quotePgIdent(col.sourceName);
  if (req.cursor === undefined || req.cursor === null) return `${ident} IS NOT NULL`;
  const text = String(req.cursor);
  const pattern = CURSOR_TEXT[col.pgType];
  if (!pattern) throw new SourceError(`column "${col.sourceName}" (${col.sourceType}) cannot be a cursor`, 'incremental_field');
  if (!pattern.test(text)) throw new Error(`stored cursor "${text}" is not a valid ${col.pgType} value`);
  // The cursor text is what COPY rendered: timestamptz in UTC.
  const literal = col.pgType === 'timestamptz' ? `('${text}'::timestamp AT TIME ZONE 'UTC')` : `'${text}'::${col.pgType}`;
  return `${ident} ${req.mode === 'append' ? '>' : '>='} ${literal}`;
}

/**
 * Streams a table as TabSeparated bytes: Postgres renders every value in a form ClickHouse parses
 * (COPY text escaping is TabSeparated escaping), and the bytes are cut into batches at row ends.
 * Memory stays at about one batch whatever the table's size.
 */
export async function* readTable(config: PostgresConfig, req: ReadRequest): AsyncGenerator<Batch> {
  const columns = req.columns as MappedColumn[];
  const selectList = [...columns.map((c) => c.selectExpr), `${req.version.toString()}::bigint`].join(', ');
  const cursorIndex = req.mode === 'full_refresh' ? -1 : columns.findIndex((c) => c.sourceName === req.cursorField);
  if (req.mode !== 'full_refresh' && cursorIndex < 0) {
    throw new SourceError(`cursor column "${req.cursorField}" is not in table "${req.table}"`, 'incremental_field');
  }
  // Ordered by cursor, then key: a resumed read yields exactly the batches an interrupted one did.
  const orderBy = [columns[cursorIndex]?.sourceName, ...(req.orderKey ?? [])].filter(Boolean).map((c) => quotePgIdent(c!)).join(', ');
  const where = cursorIndex < 0 ? '' : ` WHERE ${cursorCondition(columns[cursorIndex], req)} ORDER BY ${orderBy}`;
  const sql = `COPY (SELECT ${selectList} FROM ${qualified(config.schema, req.table)}${where}) TO STDOUT`;
  const insertColumns = insertColumnNames(columns, ['_tributary_version']);
  const batchBytes = req.batchBytes ?? DEFAULT_BATCH_BYTES;

  const client = await connect(config);
  try {
    const stream = client.query(copyTo(sql));
    for await (const data of cutAtRowEnds(stream as AsyncIterable<Buffer>, batchBytes)) {
      yield { format: 'TabSeparated', columns: insertColumns, data, rows: countRows(data), cursor: lastRowField(data, cursorIndex) };
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Re-cuts a byte stream of rows into batches at the first row end at or past `batchBytes`, as often as
 * the bytes allow: batches depend on the data only, never on how the network chunked it, so a retried
 * read reproduces them (and their deduplication tokens).
 */
export async function* cutAtRowEnds(chunks: AsyncIterable<Buffer>, batchBytes: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    pending.push(chunk);
    size += chunk.length;
    if (size < batchBytes) continue;
    let buf = Buffer.concat(pending, size);
    let cut: number;
    while (buf.length >= batchBytes && (cut = buf.indexOf(NEWLINE, batchBytes - 1) + 1) > 0) {
      yield buf.subarray(0, cut);
      buf = buf.subarray(cut);
    }
    pending = buf.length ? [Buffer.from(buf)] : [];
    size = buf.length;
  }
  if (size > 0) yield Buffer.concat(pending, size);
}
