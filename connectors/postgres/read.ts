import { to as copyTo } from 'pg-copy-streams';
import type { Batch, ReadRequest } from '../types';
import { insertColumnNames } from '../../warehouse/columns';
import { tsvUnescape } from '../../warehouse/tsv';
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

/** A literal of `pgType` from the text COPY rendered for it (timestamptz is rendered in UTC). */
function pgLiteral(text: string, pgType: string): string {
  const quoted = `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return pgType === 'timestamptz' ? `(${quoted}::timestamp AT TIME ZONE 'UTC')` : `${quoted}::${pgType}`;
}

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
  return `${ident} ${req.mode === 'append' ? '>' : '>='} ${pgLiteral(text, col.pgType)}`;
}

/**
 * Key types whose COPY text is also their literal, and that compare in Postgres as they sort: such a key
 * pins a row's place in the (cursor, key) order exactly, so a read can resume after any row.
 */
const RESUMABLE_KEY_TYPES = new Set(['int2', 'int4', 'int8', 'numeric', 'text', 'varchar', 'bpchar', 'name', 'uuid', 'date', 'timestamp', 'timestamptz']);

/** The key columns that order a read after its cursor, if they pin every row's place (NOT NULL, resumable types). */
function resumeKey(columns: MappedColumn[], orderKey: string[] | undefined): MappedColumn[] | undefined {
  if (!orderKey?.length) return undefined;
  const key = orderKey.map((k) => columns.find((c) => c.sourceName === k));
  return key.every((c) => c && !c.nullable && RESUMABLE_KEY_TYPES.has(c.pgType)) ? (key as MappedColumn[]) : undefined;
}

/** The text of each field of a row (COPY text, without its newline), unescaped. */
const rowFields = (row: Buffer) => row.toString('utf8').split('\t');

/** `(cursor, key…) > (the position's values)`: the rows after a resumed position, in the read's order. */
function afterPosition(ordered: MappedColumn[], position: string): string {
  const values = JSON.parse(position) as unknown;
  if (!Array.isArray(values) || values.length !== ordered.length || !values.every((v) => typeof v === 'string')) {
    throw new Error(`resume position ${position} does not match the read's order (${ordered.map((c) => c.sourceName).join(', ')})`);
  }
  const idents = ordered.map((c) => quotePgIdent(c.sourceName)).join(', ');
  return `(${idents}) > (${ordered.map((c, i) => pgLiteral(values[i] as string, c.pgType)).join(', ')})`;
}

/**
 * Streams a table as TabSeparated bytes: Postgres renders every value in a form ClickHouse parses
 * (COPY text escaping is TabSeparated escaping), and the bytes are cut into batches at row ends.
 * Memory stays at about one batch whatever the table's size.
 *
 * Incremental and append batches say where a retried attempt resumes. A cursor often comes in runs of equal
 * values (`created_at`) and a batch may end inside one: with a key that pins each row's place, a batch carries
 * its last row's (cursor, key) and the retry reads the rows after that tuple; an append table without such a
 * key is cut only between distinct cursor values (a long run makes a larger batch), so "past the cursor" is exact.
 */
export async function* readTable(config: PostgresConfig, req: ReadRequest): AsyncGenerator<Batch> {
  const columns = req.columns as MappedColumn[];
  const selectList = [...columns.map((c) => c.selectExpr), `${req.version.toString()}::bigint`].join(', ');
  const cursorIndex = req.mode === 'full_refresh' ? -1 : columns.findIndex((c) => c.sourceName === req.cursorField);
  if (req.mode !== 'full_refresh' && cursorIndex < 0) {
    throw new SourceError(`cursor column "${req.cursorField}" is not in table "${req.table}"`, 'incremental_field');
  }
  const cursorCol = columns[cursorIndex];
  const key = cursorCol ? resumeKey(columns, req.orderKey) : undefined;
  const ordered = key ? [cursorCol, ...key] : [];
  const orderedIndexes = ordered.map((c) => columns.indexOf(c));
  // Ordered by cursor, then key: a resumed read yields exactly the batches an interrupted one did.
  const orderBy = [cursorCol?.sourceName, ...(req.orderKey ?? [])].filter(Boolean).map((c) => quotePgIdent(c!)).join(', ');
  const start = key && req.resumeAfter ? afterPosition(ordered, req.resumeAfter) : cursorCol ? cursorCondition(cursorCol, req) : '';
  const where = cursorCol ? ` WHERE ${start} ORDER BY ${orderBy}` : '';
  const sql = `COPY (SELECT ${selectList} FROM ${qualified(config.schema, req.table)}${where}) TO STDOUT`;
  const insertColumns = insertColumnNames(columns, ['_tributary_version']);
  const batchBytes = req.batchBytes ?? DEFAULT_BATCH_BYTES;
  // Without a key, an append batch must not end inside a run of equal cursor values (see above).
  const runOf = cursorCol && !key && req.mode === 'append' ? (row: Buffer) => rowFields(row)[cursorIndex] : undefined;

  const client = await connect(config);
  try {
    const stream = client.query(copyTo(sql));
    for await (const data of cutAtRowEnds(stream as AsyncIterable<Buffer>, batchBytes, runOf)) {
      const batch: Batch = { format: 'TabSeparated', columns: insertColumns, data, rows: countRows(data), cursor: lastRowField(data, cursorIndex) };
      if (key) {
        const last = rowFields(data.subarray(data.lastIndexOf(NEWLINE, data.length - 2) + 1, data.length - 1));
        batch.resumeAfter = JSON.stringify(orderedIndexes.map((i) => tsvUnescape(last[i])));
      }
      yield batch;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Re-cuts a byte stream of rows into batches at the first row end at or past `batchBytes`, as often as
 * the bytes allow: batches depend on the data only, never on how the network chunked it, so a retried
 * read reproduces them (and their deduplication tokens). With `runOf`, a batch ends only where the next
 * row's run differs from its last row's: a run of rows with the same `runOf` never spans two batches.
 */
export async function* cutAtRowEnds(chunks: AsyncIterable<Buffer>, batchBytes: number, runOf?: (row: Buffer) => string): AsyncGenerator<Buffer> {
  if (runOf) {
    yield* cutBetweenRuns(chunks, batchBytes, runOf);
    return;
  }
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

/** The last row of `pieces` (which end with a newline), without its newline. */
function lastRow(pieces: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (let p = pieces.length - 1; p >= 0; p--) {
    const piece = p === pieces.length - 1 ? pieces[p].subarray(0, pieces[p].length - 1) : pieces[p];
    const nl = piece.lastIndexOf(NEWLINE);
    parts.unshift(piece.subarray(nl + 1));
    if (nl >= 0) break;
  }
  return Buffer.concat(parts);
}

/**
 * cutAtRowEnds with runs: fills a batch up to the first row end at or past `batchBytes`, then keeps adding
 * rows of the same run as its last row. Every byte is scanned once, whatever the runs' length.
 */
async function* cutBetweenRuns(chunks: AsyncIterable<Buffer>, batchBytes: number, runOf: (row: Buffer) => string): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let size = 0;
  /** Once the batch is full: the run of its last row, which the batch must take whole. */
  let run: string | undefined;
  /** Full: the pieces of the incomplete row after the batch's last one. */
  let tail: Buffer[] = [];
  for await (const chunk of chunks) {
    let at = 0;
    while (at < chunk.length) {
      if (run === undefined) {
        const nl = chunk.indexOf(NEWLINE, at + Math.max(0, batchBytes - size - 1));
        const end = nl < 0 ? chunk.length : nl + 1;
        pending.push(chunk.subarray(at, end));
        size += end - at;
        at = end;
        if (nl >= 0) run = runOf(lastRow(pending));
        continue;
      }
      const nl = chunk.indexOf(NEWLINE, at);
      if (nl < 0) {
        tail.push(chunk.subarray(at));
        break;
      }
      const row = tail.length ? Buffer.concat([...tail, chunk.subarray(at, nl + 1)]) : chunk.subarray(at, nl + 1);
      tail = [];
      at = nl + 1;
      const rowRun = runOf(row.subarray(0, row.length - 1));
      if (rowRun !== run) {
        yield Buffer.concat(pending, size);
        pending = [];
        size = 0;
        run = row.length >= batchBytes ? rowRun : undefined;
      }
      pending.push(row);
      size += row.length;
    }
  }
  for (const t of tail) {
    pending.push(t);
    size += t.length;
  }
  if (size > 0) yield Buffer.concat(pending, size);
}
