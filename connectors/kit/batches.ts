import type { Batch } from '../types';

/**
 * Cuts rendered rows into batches of `maxRows` rows or `maxBytes` bytes. Each batch carries the position the
 * read reached after its last row (JSON text in `Batch.cursor`): the activity heartbeats it once the warehouse
 * has the batch, and a retried attempt gets it back as `ReadRequest.cursor` to resume there.
 */
export const DEFAULT_BATCH_ROWS = 1000;
export const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024;

export class Batcher {
  private lines: string[] = [];
  private bytes = 0;
  constructor(
    private readonly columns: string[],
    private readonly maxBytes = DEFAULT_BATCH_BYTES,
    private readonly maxRows = DEFAULT_BATCH_ROWS,
  ) {}

  add(line: string) {
    this.lines.push(line);
    // Bytes, not UTF-16 units: the limit is on what the warehouse receives.
    this.bytes += Buffer.byteLength(line);
  }

  get rows() {
    return this.lines.length;
  }

  get full() {
    return this.lines.length >= this.maxRows || this.bytes >= this.maxBytes;
  }

  /** The rows so far (possibly none: a batch that only moves the position) and the position they reach. */
  take(position: unknown, extra: Partial<Batch> = {}): Batch {
    const data = Buffer.from(this.lines.join(''), 'utf8');
    const batch: Batch = { format: 'TabSeparated', columns: this.columns, data, rows: this.lines.length, cursor: JSON.stringify(position), ...extra };
    this.lines = [];
    this.bytes = 0;
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
