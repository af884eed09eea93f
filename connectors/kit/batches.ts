import type { Batch } from '../types';

/**
 * Cuts rendered rows into batches of `maxRows` rows or `maxBytes` bytes. Each batch carries the position the
 * read reached after its last row (JSON text in `Batch.cursor`): the activity heartbeats it once the warehouse
 * has the batch, and a retried attempt gets it back as `ReadRequest.cursor` to resume there.
 */
export const DEFAULT_BATCH_ROWS = 1000;
export const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

export class Batcher {
  /** The rows so far, UTF-8 encoded once as they are added (no join and no second pass to count their bytes). */
  private buf: Buffer = Buffer.allocUnsafe(64 * 1024);
  private bytes = 0;
  private count = 0;
  constructor(
    private readonly columns: string[],
    private readonly maxBytes = DEFAULT_BATCH_BYTES,
    private readonly maxRows = DEFAULT_BATCH_ROWS,
  ) {}

  add(line: string) {
    // A UTF-16 unit is at most 3 bytes of UTF-8: room for the worst case, so write() never cuts the line short.
    const need = this.bytes + line.length * 3;
    if (need > this.buf.length) {
      // Doubling, up to the batch limit plus a row's worth: a batch of maxBytes is cut just past it.
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(this.buf.length * 2, this.maxBytes + 256 * 1024)));
      this.buf.copy(grown, 0, 0, this.bytes);
      this.buf = grown;
    }
    // Bytes, not UTF-16 units: the limit is on what the warehouse receives.
    this.bytes += this.buf.write(line, this.bytes, 'utf8');
    this.count++;
  }

  get rows() {
    return this.count;
  }

  get full() {
    return this.count >= this.maxRows || this.bytes >= this.maxBytes;
  }

  /** The rows so far (possibly none: a batch that only moves the position) and the position they reach. */
  take(position: unknown, extra: Partial<Batch> = {}): Batch {
    // The batch keeps this buffer (a view, no copy); the next one gets a buffer of the same size.
    const data = this.buf.subarray(0, this.bytes);
    const batch: Batch = { format: 'TabSeparated', columns: this.columns, data, rows: this.count, cursor: JSON.stringify(position), ...extra };
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.bytes = 0;
    this.count = 0;
    return batch;
  }
}

/** A stored position (JSON text) back as an object; absent or empty: `{}`. */
export function parsePosition<T extends object>(raw: string | undefined | null, what: string): Partial<T> {
  if (raw === undefined || raw === null || raw === '') return {};
  try {
    const parsed = JSON.parse(raw) as T;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    throw new Error(`stored ${what} position is not valid JSON: ${raw}`);
  }
}
