/**
 * The API connector kit: what every REST source shares, so a connector only declares its tables, how to page,
 * how to type columns and how to authenticate.
 *
 * - waiting.ts — sleeps that heartbeat, back-off
 * - pacer.ts — requests per second per credential
 * - calls.ts — one call with 429s waited out and transient failures retried
 * - http.ts — a paced JSON client over fetch, with timeouts and streamed array items (json-items.ts)
 * - keyset.ts — paging by key, resumable after any item
 * - columns.ts — JSON values typed as warehouse columns and rendered as TabSeparated rows
 * - batches.ts — rows cut into batches that carry their resume position
 * - row-thread.ts — rendering rows on a thread of its own, beside the one that reads
 */
export * from './waiting';
export * from './pacer';
export * from './calls';
export * from './http';
export * from './json-items';
export * from './keyset';
export * from './columns';
export * from './batches';
export * from './row-thread';
