import { Batcher, rowColumns, type KitColumn, type RowSink, type ScannedItem } from '../kit';
import type { Batch } from '../types';
import { pendoRow } from './rows';
import { LASTUPDATED_PATH } from './tables';

/**
 * Visitors or accounts from scanned aggregation items to batches (row-thread.ts): parse, type, render, batch, and
 * the position each batch reaches — the last key passed, and for incremental the highest `lastupdated` loaded. The
 * same sink runs on the read's own thread and on a render thread, so a read that hands over halfway yields the
 * positions a read on one thread would.
 */
export interface PendoSinkSetup {
  columns: KitColumn[];
  version: bigint;
  /** The table's key field (`visitorId`, `accountId`). */
  key: string;
  batchBytes: number;
  batchRows: number;
  /** Full refresh: the last key passed so far. */
  after?: string;
  /** Incremental: the stored `since`, and the run in flight (read.ts IncrementalCursor). */
  incremental?: { since?: number; run: { from?: number; after?: string; max?: number } };
}

function lastUpdated(item: Record<string, unknown>): number | undefined {
  let v: unknown = item;
  for (const k of LASTUPDATED_PATH) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

class PendoAggregationSink implements RowSink<PendoSinkSetup> {
  private readonly batcher: Batcher;
  private after: string | undefined;
  constructor(private readonly s: PendoSinkSetup) {
    this.batcher = new Batcher(rowColumns(s.columns), s.batchBytes, s.batchRows);
    this.after = s.after;
  }

  add(item: ScannedItem): void {
    const object = (item.value = JSON.parse(item.text)) as Record<string, unknown> | null;
    const key = object?.[this.s.key];
    // An item without a string id is skipped, and the position stays where it was: a resume reads it (and skips it) again.
    if (typeof key !== 'string') return;
    this.after = key;
    const inc = this.s.incremental;
    if (inc) {
      inc.run.after = key;
      const updated = lastUpdated(object!);
      if (updated !== undefined && (inc.run.max === undefined || updated > inc.run.max)) inc.run.max = updated;
    }
    this.batcher.add(pendoRow(this.s.columns, object!, this.s.version, item));
  }

  get full(): boolean {
    return this.batcher.full;
  }

  take(last: boolean): Batch {
    const inc = this.s.incremental;
    if (!inc) return this.batcher.take({ after: this.after });
    // Mid-run the position is the run in flight; the last batch's is where the next run starts from.
    return this.batcher.take(last ? { since: inc.run.max ?? inc.since } : { since: inc.since, run: inc.run });
  }

  continuation(): PendoSinkSetup {
    return { ...this.s, after: this.after, incremental: this.s.incremental && { since: this.s.incremental.since, run: { ...this.s.incremental.run } } };
  }
}

/** The factory row-thread.ts loads by name. */
export const pendoAggregationSink = (setup: PendoSinkSetup): RowSink<PendoSinkSetup> => new PendoAggregationSink(setup);
