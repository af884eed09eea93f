import {
  backoffMs, Batcher, classifyHttpFailure, DEFAULT_BATCH_BYTES, keysetChunks, memberKey, parsePosition, renderedBatches, retriesExhausted, rowColumns, waitOut,
  type KitColumn, type RowSinkRef, type ScannedItem,
} from '../kit';
import type { Batch, ReadRequest } from '../types';
import { pendoApi, pendoError } from './client';
import type { PendoConfig } from './config';
import { aggregationBody } from './pipeline';
import { pendoRow } from './rows';
import type { PendoSinkSetup } from './row-sink';
import { INCREMENTAL_FIELD, pendoTable, type AggregationTable, type ListTable } from './tables';

/**
 * Reading a Pendo table. Every batch carries the position reached (Batch.cursor), so a retried attempt
 * resumes there instead of from the top:
 *
 * - features, pages, guides: one streamed GET of the whole list (Pendo does not page them); the position is
 *   how many items were read, and a resumed read skips that many of the same listing.
 * - visitors, accounts: the aggregation endpoint, page by page in id order; the position is the last id.
 *   Incremental adds a filter on `metadata.auto.lastupdated` from the highest value the last run reached,
 *   less an overlap; its cursor holds that value plus the run's own keyset position while a run is in flight.
 */

/** Rows per aggregation request (TRIBUTARY_PENDO_PAGE_SIZE). */
export function pageSize(): number {
  const v = Math.floor(Number(process.env.TRIBUTARY_PENDO_PAGE_SIZE));
  return Number.isFinite(v) && v > 0 ? v : 5000;
}

/**
 * Incremental re-reads this far before the last `lastupdated` it saw: Pendo processes data in hourly batches,
 * so a visitor may be written with a `lastupdated` a little older than rows the previous run already read.
 */
export const OVERLAP_MS = 60 * 60 * 1000;

/** The stored incremental cursor (JSON text in the catalog, and in heartbeats while a run is in flight). */
export interface IncrementalCursor {
  /** The highest `metadata.auto.lastupdated` (epoch ms) loaded by completed runs. */
  since?: number;
  /** The run in flight: its filter value, its last id, and the highest `lastupdated` it has loaded. */
  run?: { from?: number; after?: string; max?: number };
}

/** The request's columns (named as the warehouse has them) with their declared kinds and paths. */
function readColumns(declared: KitColumn[], requested: ReadRequest['columns']): KitColumn[] {
  if (!requested.length) return declared;
  const bySource = new Map(declared.map((c) => [c.sourceName, c]));
  return requested.map((c) => {
    const d = bySource.get(c.sourceName);
    if (!d) throw new Error(`Pendo has no column "${c.sourceName}"`);
    return { ...d, name: c.name };
  });
}

interface Reader {
  config: PendoConfig;
  columns: KitColumn[];
  batcher: Batcher;
  batchBytes: number;
  version: bigint;
  onWait: () => void;
}

/**
 * Rows per batch, at most: a batch is one insert and one heartbeat, so the bytes limit (4 MiB: ~5,600 visitors) is
 * what cuts them; Stripe's 1,000-row default would make a million visitors a thousand inserts.
 */
const BATCH_ROWS = 100_000;

export async function* readPendo(config: PendoConfig, req: ReadRequest): AsyncGenerator<Batch> {
  const table = pendoTable(req.table);
  if (!table) throw new Error(`Pendo has no table "${req.table}"`);
  const columns = readColumns(table.columns, req.columns);
  const batchBytes = req.batchBytes ?? DEFAULT_BATCH_BYTES;
  const r: Reader = { config, columns, batcher: new Batcher(rowColumns(columns), batchBytes, BATCH_ROWS), batchBytes, version: req.version, onWait: () => req.heartbeat?.() };
  try {
    if (table.kind === 'list') {
      if (req.mode !== 'full_refresh') throw new Error(`Pendo ${table.name} sync with full_refresh only (asked: ${req.mode})`);
      yield* readList(r, table, parsePosition<{ skip: number }>(req.cursor, 'Pendo').skip ?? 0);
      return;
    }
    if (req.mode === 'full_refresh') {
      yield* readAggregation(r, table, parsePosition<{ after: string }>(req.cursor, 'Pendo').after);
      return;
    }
    if (req.mode === 'incremental') {
      if (req.cursorField && req.cursorField !== INCREMENTAL_FIELD) throw new Error(`Pendo ${table.name} read incrementally on "${INCREMENTAL_FIELD}" only (asked: "${req.cursorField}")`);
      yield* readIncremental(r, table, incrementalCursor(req.cursor));
      return;
    }
    throw new Error(`Pendo ${table.name} sync with full_refresh or incremental (asked: ${req.mode})`);
  } catch (err) {
    throw pendoError(err, config, table.kind === 'aggregation');
  }
}

/** A stored cursor; a bare number (set by hand) is taken as `since`. */
export function incrementalCursor(raw: string | undefined): IncrementalCursor {
  if (raw !== undefined && /^\s*\d+\s*$/.test(raw)) return { since: Number(raw) };
  return parsePosition<IncrementalCursor>(raw, 'Pendo incremental');
}

/** The listing, streamed; a connection broken off mid-answer is asked again and the items already read skipped. */
async function* readList(r: Reader, table: ListTable, skip: number): AsyncGenerator<Batch> {
  const api = pendoApi(r.config);
  let read = 0;
  for (let failures = 0; ; ) {
    let seen = 0;
    try {
      for await (const items of api.scannedItems('GET', table.path, { query: { expand: '*' }, onWait: r.onWait })) {
        for (const scanned of items) {
          if (++seen <= Math.max(skip, read)) continue;
          read = seen;
          failures = 0;
          const object = scanned.value as Record<string, unknown>;
          if (typeof object?.[table.key] !== 'string') continue;
          r.batcher.add(pendoRow(r.columns, object, r.version, scanned));
          if (r.batcher.full) yield r.batcher.take({ skip: read });
        }
      }
      break;
    } catch (err) {
      // A request the client already retried as often as it may is not asked again here (the attempts would multiply).
      if (classifyHttpFailure(err).kind !== 'transient' || retriesExhausted(err) || failures >= 6) throw err;
      await waitOut(backoffMs(failures++), r.onWait);
    }
  }
  yield r.batcher.take({ skip: Math.max(skip, read) });
}

/** Visitors or accounts in id order, after `after`; `updatedSince`: only those updated since (incremental). */
function pages(r: Reader, table: AggregationTable, after: string | undefined, updatedSince?: number) {
  const api = pendoApi(r.config);
  // Runs of items, as each piece of an answer completes them: one await per run rather than per visitor. Not parsed
  // here: the sink parses each item, on this thread or on a render thread (renderRuns).
  return keysetChunks<ScannedItem>({
    after,
    limit: pageSize(),
    pages: (from, limit) =>
      api.scannedItems('POST', '/api/v1/aggregation', {
        body: aggregationBody({ source: table.source, key: table.key, limit, after: from, updatedSince }),
        at: 'results',
        parse: false,
        onWait: r.onWait,
      }),
    keyOf: (item) => memberKey(item, table.key),
    onWait: r.onWait,
  });
}

const SINK: Omit<RowSinkRef<PendoSinkSetup>, 'setup'> = { module: require.resolve('./row-sink'), export: 'pendoAggregationSink' };

/** The pages' items through a PendoAggregationSink, on this thread and then on a render thread (kit renderedBatches). */
async function* renderRuns(r: Reader, table: AggregationTable, setup: PendoSinkSetup, updatedSince?: number): AsyncGenerator<Batch> {
  const after = setup.incremental ? setup.incremental.run.after : setup.after;
  async function* items() {
    for await (const run of pages(r, table, after, updatedSince)) yield run.map((k) => k.item);
  }
  yield* renderedBatches(items(), { ...SINK, setup }, rowColumns(r.columns));
}

function sinkSetup(r: Reader, table: AggregationTable): PendoSinkSetup {
  return { columns: r.columns, version: r.version, key: table.key, batchBytes: r.batchBytes, batchRows: BATCH_ROWS };
}

function readAggregation(r: Reader, table: AggregationTable, after: string | undefined): AsyncGenerator<Batch> {
  return renderRuns(r, table, { ...sinkSetup(r, table), after });
}

function readIncremental(r: Reader, table: AggregationTable, state: IncrementalCursor): AsyncGenerator<Batch> {
  // The first run has no `since`: it reads every row, without the filter (rows never updated have no lastupdated).
  const run = state.run ?? { from: state.since !== undefined ? state.since - OVERLAP_MS : undefined, max: state.since };
  return renderRuns(r, table, { ...sinkSetup(r, table), incremental: { since: state.since, run } }, run.from);
}
