import type { Batch } from '../connectors/types';
import type { Warehouse } from '../warehouse/client';

/**
 * Feeds each item of `source` to `sink`, reading the next item while the sink works on the
 * current one: extraction and loading overlap, and at most two items are in memory.
 */
export async function pipelined<T>(source: AsyncIterable<T>, sink: (item: T) => Promise<void>): Promise<void> {
  await pipelinedInOrder(source, sink, () => undefined, 1);
}

const ENDED = 1;
const ended = () => ENDED;
const arrived = () => 0;

/**
 * As pipelined, with up to `inFlight` items in `work` at once (the next item is read meanwhile), and `done` run
 * for each item in the source's order, as soon as its own work and every earlier item's `done` have finished:
 * what `done` records (a position reached) never runs ahead of work still in flight, nor waits for the next
 * item. On an error nothing more is read and the works in flight settle before it is thrown.
 */
export async function pipelinedInOrder<T>(
  source: AsyncIterable<T>,
  work: (item: T) => Promise<void>,
  done: (item: T) => Promise<void> | void,
  inFlight: number,
): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  const running: { item: T; work: Promise<void> }[] = [];
  const finishOldest = async () => {
    const oldest = running[0];
    await oldest.work;
    running.shift();
    await done(oldest.item);
  };
  let finished = false;
  try {
    let next = it.next();
    for (;;) {
      // While the next item is awaited, works that end are done at once: a slow source must not hold back the
      // position a finished work reached.
      while (running.length && (await Promise.race([running[0].work.then(ended, ended), next.then(arrived, arrived)])) === ENDED) await finishOldest();
      const r = await next;
      if (r.done) break;
      const started = work(r.value);
      started.catch(() => undefined); // raised when awaited in turn
      running.push({ item: r.value, work: started });
      next = it.next();
      next.catch(() => undefined); // its error is raised when it is awaited on the next turn
      while (running.length >= Math.max(1, inFlight)) await finishOldest();
    }
    while (running.length) await finishOldest();
    finished = true;
  } finally {
    if (!finished) {
      await Promise.allSettled(running.map((r) => r.work));
      await it.return?.(undefined).catch(() => undefined);
    }
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
