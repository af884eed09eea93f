import type Stripe from 'stripe';
import { Batcher, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ROWS, parsePosition, type KitColumn } from '../kit';
import type { Batch, ReadRequest } from '../types';
import { callStripe, listPage } from './client';
import type { StripeConfig } from './config';
import { objectColumns, objectRow, rowColumns } from './rows';
import { stripeTable, type StripeTable } from './tables';

/**
 * Reading a Stripe table. Lists come newest first, 100 objects a page, paginated with `starting_after`;
 * every batch carries the position reached, so a retried attempt resumes after the last page ClickHouse has.
 *
 * - full_refresh: every object, into a fresh table (the activity swaps it in).
 * - append: objects created after the cursor, up to a minute ago (the newest second may still be filling).
 * - incremental: objects created since the cursor, then the Events API since the cursor: each event's
 *   `data.object` is the object's state at that moment, so updates and deletions land too. Older than the
 *   Events API keeps (30 days), the run lists every object and marks the ones no longer listed deleted.
 * - webhook (the safety-net refresh of a webhook table): every object in place, then the rows no longer
 *   listed and not touched by a newer webhook are marked deleted.
 *
 * Versions (`_tributary_version`) order the states of one object: an event's is its `created` second × 1000
 * plus its rank within that second (the Events API lists newest first); a listed object's is the list's
 * start minus a minute × 1000, so any event from around or after the listing wins over it.
 */

/**
 * A new object may take a moment to show in Stripe's lists: reads stop this many seconds short of now and the
 * next run starts there (TRIBUTARY_STRIPE_SETTLE_SECONDS, default 60).
 */
function settleSeconds(): number {
  const v = Number(process.env.TRIBUTARY_STRIPE_SETTLE_SECONDS);
  return Number.isFinite(v) && v >= 0 ? v : 60;
}
/** Incremental re-reads this much before its cursor: events and lists are eventually consistent. */
const OVERLAP_SECONDS = 300;
const PAGE_SIZE = 100;

/** How long Stripe keeps events (30 days), less an hour's margin; TRIBUTARY_STRIPE_EVENTS_WINDOW_SECONDS overrides it. */
export function eventsWindowSeconds(): number {
  const v = Number(process.env.TRIBUTARY_STRIPE_EVENTS_WINDOW_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : 30 * 86_400 - 3_600;
}

export const listVersion = (t0: number) => BigInt(t0 - settleSeconds()) * 1000n;
export const eventVersion = (created: number, rank: number) => BigInt(created) * 1000n + BigInt(999 - Math.min(rank, 999));

/** Where a walk through a list stands: after `after`; nested lists: customers after `parentAfter`, then inside `parent`. */
interface Position {
  after?: string;
  parentAfter?: string;
  parent?: string;
}

interface Run {
  /** When the run started (Unix seconds): fixes its list version and its next cursor. */
  t0: number;
  phase: 'list' | 'events';
  pos: Position;
  /** incremental: list every object (first run, or the cursor is older than the Events API keeps). */
  full?: boolean;
  /** Mark rows the list did not see as deleted once it ends. */
  tombstone?: boolean;
  /** append: the newest creation second this run reads. */
  upTo?: number;
  /** events phase: the creation second being read and how many events of it came before. */
  second?: number;
  rank?: number;
}

/** The cursor a sync stores (and heartbeats, with `run` while a run is in flight), as JSON text. */
interface StripeCursor {
  /** incremental: the next run reads creations and events from here (less the overlap). */
  since?: number;
  /** append: objects created after this second are new. */
  created?: number;
  run?: Run;
}

const now = () => Math.floor(Date.now() / 1000);

const duration = (seconds: number) => (seconds >= 86_400 ? `${Math.round(seconds / 86_400)} days` : `${seconds} s`);

type Page = { objects: Record<string, unknown>[]; pos: Position };

/** Walks a list page by page from `start`; each page comes with the position that resumes after it. */
async function* walk(config: StripeConfig, table: StripeTable, created: Stripe.RangeQueryParam | undefined, start: Position, onWait: () => void): AsyncGenerator<Page> {
  const params = { limit: PAGE_SIZE, ...table.listParams, ...(created ? { created } : {}) };
  const call = <T>(fn: (s: Stripe) => Promise<T>) => callStripe(config, fn, { onWait });
  if (!table.nested) {
    let after = start.after;
    for (;;) {
      const page = await call((s) => listPage(s, table.name, { ...params, starting_after: after }));
      if (page.data.length) after = String(page.data[page.data.length - 1].id);
      yield { objects: page.data, pos: { after } };
      if (!page.has_more || !page.data.length) return;
    }
  }
  // Nested (per customer): customers after `parentAfter` are listed again; the first is `parent`, resumed after `after`.
  let done = start.parentAfter;
  let resume: Position | undefined = start.parent ? start : undefined;
  for (;;) {
    const customers = await call((s) => listPage(s, 'Customer', { limit: PAGE_SIZE, starting_after: done }));
    for (const customer of customers.data) {
      const parent = String(customer.id);
      let after = resume?.parent === parent ? resume.after : undefined;
      resume = undefined;
      for (;;) {
        const page = await call((s) => listPage(s, table.name, { limit: PAGE_SIZE, starting_after: after }, parent));
        if (page.data.length) after = String(page.data[page.data.length - 1].id);
        const more = page.has_more && page.data.length > 0;
        yield { objects: page.data, pos: more ? { parentAfter: done, parent, after } : { parentAfter: parent } };
        if (!more) break;
      }
      done = parent;
    }
    if (!customers.has_more || !customers.data.length) return;
  }
}

export async function* readStripe(config: StripeConfig, req: ReadRequest): AsyncGenerator<Batch> {
  const table = stripeTable(req.table);
  if (!table) throw new Error(`unknown Stripe table "${req.table}"`);
  const columns = (req.columns as KitColumn[]).length ? (req.columns as KitColumn[]) : objectColumns(table.objectType);
  const batcher = new Batcher(rowColumns(columns), req.batchBytes ?? DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ROWS);
  const reader: Reader = { config, table, columns, batcher, onWait: () => req.heartbeat?.() };
  const state: StripeCursor = parsePosition<StripeCursor>(req.cursor, 'Stripe');
  const listInto = (run: Run, created: Stripe.RangeQueryParam | undefined, version: bigint, base: StripeCursor) =>
    listBatches(reader, run, created, version, base);

  switch (req.mode) {
    case 'full_refresh': {
      const run: Run = state.run ?? { t0: now(), phase: 'list', pos: {} };
      yield* listInto(run, undefined, req.version, {});
      yield batcher.take({ run });
      return;
    }
    case 'append': {
      const run: Run = state.run ?? { t0: now(), phase: 'list', pos: {}, upTo: now() - settleSeconds() };
      const created = { ...(state.created !== undefined ? { gt: state.created } : {}), lte: run.upTo! };
      yield* listInto(run, created, req.version, { created: state.created });
      yield batcher.take({ created: run.upTo });
      return;
    }
    case 'webhook': {
      const run: Run = state.run ?? { t0: now(), phase: 'list', pos: {}, tombstone: true };
      yield* listInto(run, undefined, listVersion(run.t0), {});
      yield batcher.take({}, { tombstoneBefore: listVersion(run.t0) });
      return;
    }
    case 'incremental': {
      yield* readIncremental(reader, state);
      return;
    }
    default:
      throw new Error(`Stripe tables do not sync with "${req.mode}"`);
  }
}

/** What one read works with. */
interface Reader {
  config: StripeConfig;
  table: StripeTable;
  columns: KitColumn[];
  batcher: Batcher;
  onWait: () => void;
}

/** Lists from the run's position (moving it on), yielding full batches; `version` for every listed row. */
async function* listBatches(r: Reader, run: Run, created: Stripe.RangeQueryParam | undefined, version: bigint, base: StripeCursor): AsyncGenerator<Batch> {
  for await (const page of walk(r.config, r.table, created, run.pos, r.onWait)) {
    for (const o of page.objects) r.batcher.add(objectRow(r.columns, o, version, false));
    run.pos = page.pos;
    if (r.batcher.full) yield r.batcher.take({ ...base, run });
  }
}

async function* readIncremental(r: Reader, state: StripeCursor): AsyncGenerator<Batch> {
  const { config, table, columns, batcher, onWait } = r;
  const since = state.since;
  let run = state.run;
  if (!run) {
    const t0 = now();
    const expired = since !== undefined && since < t0 - eventsWindowSeconds();
    run = { t0, phase: 'list', pos: {}, full: since === undefined || expired, tombstone: expired };
    if (expired) {
      yield batcher.take(
        { since, run },
        { warning: `the last sync was ${duration(t0 - since!)} ago, beyond the ${duration(eventsWindowSeconds())} Stripe keeps events: did a full refresh instead` },
      );
    }
  }
  const base = { since };
  const eventsFrom = (run.full ? run.t0 - settleSeconds() : since!) - OVERLAP_SECONDS;

  if (run.phase === 'list') {
    // New objects, whether or not Stripe sends events for them (balance transactions have none).
    const created = run.full ? undefined : { gte: since! - OVERLAP_SECONDS };
    yield* listBatches(r, run, created, listVersion(run.t0), base);
    run = { ...run, phase: 'events', pos: {} };
    yield batcher.take({ ...base, run }, run.tombstone ? { tombstoneBefore: listVersion(run.t0) } : {});
  }

  if (table.events.length) {
    let after = run.pos.after;
    for (;;) {
      const page = await callStripe(
        config,
        (s) => s.events.list({ limit: PAGE_SIZE, types: table.events, created: { gte: eventsFrom }, starting_after: after }),
        { onWait },
      );
      for (const event of page.data) {
        const rank = event.created === run.second ? (run.rank ?? 0) + 1 : 0;
        run.second = event.created;
        run.rank = rank;
        const object = event.data.object as unknown as Record<string, unknown>;
        if (object.object !== table.objectType) continue;
        const deleted = table.deleteEvents.includes(event.type) || object.deleted === true;
        batcher.add(objectRow(columns, object, eventVersion(event.created, rank), deleted));
      }
      if (page.data.length) after = page.data[page.data.length - 1].id;
      run.pos = { after };
      if (batcher.full) yield batcher.take({ ...base, run });
      if (!page.has_more || !page.data.length) break;
    }
  }
  yield batcher.take({ since: run.t0 - settleSeconds() });
}
