import { retriesExhausted, type FailureKind } from './calls';
import { classifyHttpFailure } from './http';
import { backoffMs, waitOut } from './waiting';

/**
 * Paging by key (keyset pagination): each request asks for up to `limit` items whose key sorts after the last
 * key seen; a page shorter than the limit is the last. Every item comes with its key, which is also the exact
 * place to resume after it — a batch's position, and where a request broken off mid-stream starts again
 * (a reset or a timeout in the middle of a page is retried from the last item kept, never from the top).
 * A request that failed before its answer began was already retried by the HTTP client (calls.ts): it is thrown,
 * not retried here again, so the attempts of the two layers add up instead of multiplying.
 */
export interface KeysetOptions<Item> {
  /** Resume after this key (undefined: from the first item). */
  after?: string;
  limit: number;
  /** One page: the items after `after`, sorted by key, at most `limit`. */
  page(after: string | undefined, limit: number): AsyncIterable<Item>;
  keyOf(item: Item): string;
  onWait?: () => void;
  /** Broken-off pages retried in a row before the failure is thrown (default 6). */
  attempts?: number;
  /** Longest back-off between two of them (default 20 s). */
  maxBackoffMs?: number;
  /** Which failures break a page off (retried from its last item): `transient` ones (default: HttpApi's). */
  classify?(err: unknown): FailureKind;
}

export async function* keysetItems<Item>(opts: KeysetOptions<Item>): AsyncGenerator<{ item: Item; key: string }> {
  const { page, ...rest } = opts;
  for await (const chunk of keysetChunks<Item>({ ...rest, pages: (after, limit) => singles(page(after, limit)) })) yield* chunk;
}

/** As keysetItems, with pages that arrive as runs of items (HttpApi.scannedItems), yielded run by run. */
export interface KeysetChunkOptions<Item> extends Omit<KeysetOptions<Item>, 'page'> {
  pages(after: string | undefined, limit: number): AsyncIterable<Item[]>;
}

export async function* keysetChunks<Item>(opts: KeysetChunkOptions<Item>): AsyncGenerator<{ item: Item; key: string }[]> {
  let after = opts.after;
  let failures = 0;
  for (;;) {
    let count = 0;
    try {
      for await (const items of opts.pages(after, opts.limit)) {
        const keyed = items.map((item) => ({ item, key: opts.keyOf(item) }));
        if (!keyed.length) continue;
        count += keyed.length;
        failures = 0;
        after = keyed[keyed.length - 1].key;
        yield keyed;
      }
    } catch (err) {
      if ((opts.classify ?? classifyHttpFailure)(err).kind !== 'transient' || retriesExhausted(err) || failures >= (opts.attempts ?? 6)) throw err;
      await waitOut(backoffMs(failures++, 500, opts.maxBackoffMs), opts.onWait);
      continue;
    }
    if (count < opts.limit) return;
  }
}

async function* singles<Item>(items: AsyncIterable<Item>): AsyncGenerator<Item[]> {
  for await (const item of items) yield [item];
}
