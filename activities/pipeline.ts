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
