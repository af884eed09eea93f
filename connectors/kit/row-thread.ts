import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Batch } from '../types';
import type { ScannedItem } from './json-items';

/**
 * Rendering rows on a thread of its own. A read's one thread otherwise both takes the answer in (fetch, decoding,
 * the scan that cuts items out and finds each one's key for the next page) and turns every item into a row
 * (JSON.parse, typing, TabSeparated, UTF-8): on a million Pendo visitors the second half is ~2/3 of the work, and
 * with it on another core the two halves run side by side (BENCHMARKS.md, "Pendo").
 *
 * A connector names a RowSink factory by module and export (loaded in the thread: functions do not cross threads)
 * and its setup (plain data). The read scans without parsing (`parse: false`), hands the items over run by run and
 * yields the batches the sink cuts, in order; the sink computes each batch's position itself, so the batches and
 * their positions are the ones the same sink would give on the read's own thread (test/row-thread.test.ts).
 */
export interface RowSink<Setup = unknown> {
  /** One item as scanned (not parsed: `value` undefined). */
  add(item: ScannedItem): void;
  /** A batch is ready to take. */
  readonly full: boolean;
  /** The rows so far and the position after them (Batcher.take). `last`: the read's final batch. */
  take(last: boolean): Batch;
  /** The setup a sink going on from here starts with (the hand-over to a render thread). */
  continuation(): Setup;
}

export interface RowSinkRef<Setup> {
  /** Absolute path of the module, and the export that makes a sink from `setup`. */
  module: string;
  export: string;
  setup: Setup;
}

/** Loads a sink factory (in the thread, or on the read's own thread for a read that renders there). */
export function openSink<Setup>(ref: RowSinkRef<Setup>): RowSink<Setup> {
  const mod = require(ref.module) as Record<string, (setup: Setup) => RowSink<Setup>>;
  const make = mod[ref.export];
  if (typeof make !== 'function') throw new Error(`${ref.module} exports no row sink "${ref.export}"`);
  return make(ref.setup);
}

/** Items as they cross to the thread: their texts joined, and per item its length, flags, key count and members. */
export interface ItemRun {
  text: string;
  meta: Int32Array;
}

export function packItems(items: ScannedItem[]): ItemRun {
  let n = 0;
  for (const it of items) n += 4 + it.members.length;
  const meta = new Int32Array(n);
  let k = 0;
  const texts: string[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    texts[i] = it.text;
    meta[k++] = it.text.length;
    meta[k++] = (it.canonical ? 1 : 0) | (it.backslashes ? 2 : 0);
    meta[k++] = it.keys;
    meta[k++] = it.members.length;
    for (const m of it.members) meta[k++] = m;
  }
  return { text: texts.join(''), meta };
}

export function unpackItems(run: ItemRun): ScannedItem[] {
  const items: ScannedItem[] = [];
  const { meta, text } = run;
  let at = 0;
  for (let k = 0; k < meta.length; ) {
    const len = meta[k++];
    const flags = meta[k++];
    const keys = meta[k++];
    const m = meta[k++];
    const members: number[] = new Array(m);
    for (let j = 0; j < m; j++) members[j] = meta[k++];
    items.push({ value: undefined, text: text.slice(at, at + len), canonical: (flags & 1) !== 0, backslashes: (flags & 2) !== 0, keys, members });
    at += len;
  }
  return items;
}

/**
 * What the thread answers: a batch (its bytes moved, not copied; `last` for the one `finish` asked for), how many
 * items it has taken in since its last answer (`items`, also alone as an `ack`), or a failure.
 */
export type ThreadAnswer =
  | { type: 'batch'; data: ArrayBuffer; offset: number; length: number; rows: number; items: number; cursor: string | undefined; last: boolean }
  | { type: 'ack'; items: number }
  | { type: 'error'; name: string; message: string; stack?: string };

/**
 * Items a read renders on its own thread before a render thread takes over (TRIBUTARY_RENDER_THREAD_AFTER, default
 * 20,000: a table smaller than that never starts one; `off`: never).
 */
export function renderThreadAfter(env: NodeJS.ProcessEnv = process.env): number {
  const raw = (env.TRIBUTARY_RENDER_THREAD_AFTER ?? '').trim().toLowerCase();
  if (raw === 'off') return Infinity;
  const n = Number(raw);
  return raw !== '' && Number.isInteger(n) && n >= 0 ? n : 20_000;
}

const ENTRY = path.join(__dirname, 'row-thread-entry.ts');
const TSX_CJS = require.resolve('tsx/cjs/api');

/** Items handed over and not yet in a batch the read took, past which the read waits (two 4 MiB batches of visitors). */
const BACKLOG_ITEMS = 12_000;

/**
 * The thread's young generation: every item it parses is garbage a moment later, so a larger nursery means fewer
 * scavenges for the same items. 64 MiB: 1M Pendo visitors through the platform, five runs each, paired: median
 * 50.3k rows/s against 46.3k with V8's default, the worker's CPU 15.3 s against 17.1 s (BENCHMARKS.md); ~50 MB
 * more RSS, once (the reader's peak stays ~370 MB from 6M to 12M visitors).
 */
const YOUNG_GENERATION_MB = 64;

/**
 * The read's side of a render thread: `post` items, `ready` the batches cut so far (without waiting), `drain` waits
 * while the thread is far behind, `finish` the last batches. Batches come back in the order their items went.
 */
export class RowThread {
  private readonly worker: Worker;
  private readonly batches: Batch[] = [];
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private posted = 0;
  private done = false;

  constructor(
    ref: RowSinkRef<unknown>,
    private readonly columns: string[],
  ) {
    // The thread loads the TypeScript sources through tsx's CommonJS hook (the process's own loader, registered
    // with --import, does not reach worker threads on Node 20).
    // Both by absolute path: an eval'd thread resolves bare names from the working directory, not from here.
    const boot = `require(${JSON.stringify(TSX_CJS)}).register(); require(${JSON.stringify(ENTRY)});`;
    this.worker = new Worker(boot, { eval: true, workerData: ref, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    this.worker.on('message', (a: ThreadAnswer) => {
      if (a.type === 'error') this.fail(Object.assign(new Error(a.message), { name: a.name, stack: a.stack }));
      else if (a.type === 'ack') this.posted -= a.items;
      else {
        const data = Buffer.from(a.data, a.offset, a.length);
        this.batches.push({ format: 'TabSeparated', columns: this.columns, data, rows: a.rows, cursor: a.cursor });
        this.posted -= a.items;
        if (a.last) this.done = true;
      }
      this.notify();
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.done) this.fail(new Error(`the row render thread exited (${code}) before the read ended`));
    });
  }

  private fail(err: Error) {
    this.failure ??= err;
    this.notify();
  }

  private notify() {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private check() {
    if (this.failure) throw this.failure;
  }

  /** Items to render (a failure of the thread is told by `ready`, after the batches cut before it). */
  post(items: ScannedItem[]) {
    if (!items.length || this.failure) return;
    const run = packItems(items);
    this.posted += items.length;
    this.worker.postMessage({ type: 'items', run }, [run.meta.buffer as ArrayBuffer]);
  }

  /** The batches cut so far; then the thread's failure, if it failed (after the batches cut before it, as on one thread). */
  *ready(): Generator<Batch> {
    while (this.batches.length) yield this.batches.shift()!;
    this.check();
  }

  private next(): Promise<void> {
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  /** While the thread is more than BACKLOG_ITEMS behind: the batches it cuts meanwhile. */
  async *drain(): AsyncGenerator<Batch> {
    for (;;) {
      yield* this.ready();
      if (this.posted <= BACKLOG_ITEMS) return;
      await this.next();
    }
  }

  /** The rest: every batch up to the read's last. */
  async *finish(): AsyncGenerator<Batch> {
    if (!this.failure) this.worker.postMessage({ type: 'finish' });
    for (;;) {
      yield* this.ready();
      if (this.done) return;
      await this.next();
    }
  }

  async close(): Promise<void> {
    this.done = true;
    await this.worker.terminate();
  }
}

/**
 * The runs' items as batches, through the sink `ref` names: on the read's own thread for its first `handOverAt` items
 * (a small table never starts a thread), then on a render thread while the read's thread goes on reading. The
 * batches and positions are those the sink cuts on one thread, but for the hand-over: the rows so far go as a batch
 * of their own, and the thread goes on from where they end.
 */
export async function* renderedBatches<Setup>(runs: AsyncIterable<ScannedItem[]>, ref: RowSinkRef<Setup>, columns: string[], handOverAt = renderThreadAfter()): AsyncGenerator<Batch> {
  const sink = openSink(ref);
  let thread: RowThread | undefined;
  let inline = 0;
  try {
    for await (const run of runs) {
      if (!thread && inline >= handOverAt) {
        if (inline > 0) yield sink.take(false);
        thread = new RowThread({ ...ref, setup: sink.continuation() }, columns);
      }
      if (thread) {
        thread.post(run);
        yield* thread.drain();
        continue;
      }
      for (const item of run) {
        sink.add(item);
        if (sink.full) yield sink.take(false);
      }
      inline += run.length;
    }
    if (thread) yield* thread.finish();
    else yield sink.take(true);
  } finally {
    await thread?.close();
  }
}
