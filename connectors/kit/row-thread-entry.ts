import { parentPort, workerData } from 'node:worker_threads';
import { openSink, unpackItems, type ItemRun, type RowSinkRef, type ThreadAnswer } from './row-thread';
import type { Batch } from '../types';

/** The render thread (row-thread.ts): items in, batches out, in order, with the items each batch passed. */
const sink = openSink(workerData as RowSinkRef<unknown>);
let items = 0;
const ACK_ITEMS = 2000;

function send(batch: Batch, last: boolean) {
  const data = batch.data;
  const answer: ThreadAnswer = {
    type: 'batch', data: data.buffer as ArrayBuffer, offset: data.byteOffset, length: data.length, rows: batch.rows, items, cursor: batch.cursor, last,
  };
  items = 0;
  // The batch's buffer is its own (Batcher.take allocates the next one), so it moves to the read's thread whole.
  parentPort!.postMessage(answer, [data.buffer as ArrayBuffer]);
}

parentPort!.on('message', (msg: { type: 'items'; run: ItemRun } | { type: 'finish' }) => {
  try {
    if (msg.type === 'finish') {
      send(sink.take(true), true);
      return;
    }
    for (const item of unpackItems(msg.run)) {
      items++;
      sink.add(item);
      if (sink.full) send(sink.take(false), false);
    }
    // Items that made no batch yet (a sink may skip items): said now and then, so the read's backlog goes down.
    if (items >= ACK_ITEMS) {
      parentPort!.postMessage({ type: 'ack', items } satisfies ThreadAnswer);
      items = 0;
    }
  } catch (err) {
    const e = err as Error;
    parentPort!.postMessage({ type: 'error', name: e?.name ?? 'Error', message: e?.message ?? String(err), stack: e?.stack } satisfies ThreadAnswer);
  }
});
