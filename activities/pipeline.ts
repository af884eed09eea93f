import type { Batch } from '../connectors/types';
import type { Warehouse } from '../warehouse/client';

/**
 * Feeds each item of `source` to `sink`, reading the next item while the sink works on the
 * current one: extraction and loading overlap, and at most two items are in memory.
 */
export async function pipelined<T>(source: AsyncIterable<T>, sink: (item: T) => Promise<void>): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  let finished = false;
  try {
    for (;;) {
      const r = await next;
      if (r.done) {
        finished = true;
        return;
      }
      next = it.next();
      next.catch(() => undefined); // its error is raised when it is awaited on the next turn
      await sink(r.value);
    }
  } finally {
    if (!finished) await it.return?.(undefined).catch(() => undefined);
  }
}

/**
 * Feeds every batch of a read into one streaming insert (see Warehouse.insertStream); `onBatch` runs as each
 * batch is handed to the engine (and may throw to stop the load).
 */
export async function streamBatches(wh: Warehouse, table: string, batches: AsyncIterable<Batch>, onBatch: (batch: Batch) => void): Promise<void> {
  const it = batches[Symbol.asyncIterator]();
  let next = await it.next();
  if (next.done) return;
  const { columns, format } = next.value;
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      while (!next.done) {
        onBatch(next.value);
        yield next.value.data;
        next = await it.next();
      }
    } finally {
      if (!next.done) await it.return?.(undefined).catch(() => undefined);
    }
  }
  await wh.insertStream(table, columns, chunks(), { format });
}
