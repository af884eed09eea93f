import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for Pendo's documented API (engageapi.pendo.io), for the connector's production client
 * (connectors/kit/http.ts over fetch) to talk to. Regions are hosts: it answers `/<host>/api/v1/...` for each of
 * Pendo's five hosts, and every integration key belongs to one of them — the same key on another host is a 401,
 * as Pendo answers a key used in the wrong region. A read-only key (no "Allow Write Access") may GET but gets 403
 * on POST /api/v1/aggregation.
 *
 * - GET /api/v1/feature | page | guide: a bare JSON array. Without `expand=*` only the subscription's first app
 *   (a multi-app subscription answers for its default app unless asked for every one).
 * - POST /api/v1/aggregation: `{"response":{"mimeType":"application/json"},"request":{"pipeline":[…]}}` with the
 *   stages the connector uses — `source` ({"visitors": null} | {"accounts": null}), `filter` (comparisons
 *   `path op literal` with op one of > >= < <= == !=, literal a JSON string or a number, joined by `&&`,
 *   parentheses allowed), `sort` (["field"] or ["-field"]), `limit` — answered `{"startTime":…,"results":[…]}`
 *   and streamed. Any other stage or a malformed pipeline is a 400, as Pendo refuses it.
 *
 * Controls for tests: queued faults (429 with no Retry-After — Pendo documents none —, any status, a connection
 * destroyed after part of the body), delays before the answer and in the middle of its body, and a generated
 * mode in which visitors are computed from their index and streamed (a million never sit in memory).
 */

export const PENDO_HOSTS = ['app.pendo.io', 'us1.app.pendo.io', 'app.eu.pendo.io', 'app.jpn.pendo.io', 'app.au.pendo.io'] as const;
export type PendoHost = (typeof PENDO_HOSTS)[number];

type Json = Record<string, any>;

export interface PendoRequest {
  method: string;
  host: string;
  path: string;
  query: URLSearchParams;
  key: string | undefined;
  /** The aggregation's pipeline, when one was posted and parsed. */
  pipeline?: Json[];
  status: number;
  at: number;
}

export type Fault =
  | { kind: 'status'; status: number; body?: string }
  /** The answer starts (200, part of the body) and the connection is destroyed after `afterBytes`. */
  | { kind: 'destroy'; afterBytes: number }
  /** The answer is sent, but stalls `ms` after `afterBytes` of its body. */
  | { kind: 'stall'; afterBytes: number; ms: number };

/** Which requests a fault or delay applies to: a substring of the path after the host (e.g. 'aggregation', '/feature'). */
interface Queued {
  fault: Fault;
  path?: string;
}

export interface GeneratedVisitors {
  count: number;
  /** Visitor at `index` (0-based); ids must sort in index order. */
  visitor(index: number): Json;
  /** The same visitor as JSON text, built without JSON.stringify (so the fake outruns the connector it feeds). */
  json(index: number): string;
  idOf(index: number): string;
}

/** A row already serialized (generated visitors), passed through to the answer as is. */
class RawJson {
  constructor(readonly text: string) {}
}

export interface PendoFake {
  url: string;
  /** For TRIBUTARY_PENDO_API_URL. */
  apiUrl: string;
  requests: PendoRequest[];
  features: Json[];
  pages: Json[];
  guides: Json[];
  /** Apps of the subscription; the first is the default app (the only one answered without expand=*). */
  appIds: number[];
  addKey(key: string, host: PendoHost, opts?: { readOnly?: boolean }): void;
  /** The key is revoked: every later request with it is a 401, as for an unknown key. */
  removeKey(key: string): void;
  visitors(): Json[];
  accounts(): Json[];
  /** Adds or replaces (by visitorId / accountId). */
  putVisitor(v: Json): void;
  putAccount(a: Json): void;
  removeVisitor(id: string): void;
  removeAccount(id: string): void;
  /** Visitors come from this generator instead of the stored ones (undefined: stored ones again). */
  generate(g: GeneratedVisitors | undefined): void;
  /** The next `times` matching requests get this fault. */
  inject(fault: Fault, times?: number, path?: string): void;
  /** The next `n` requests answer 429 with Pendo's text and no Retry-After. */
  rateLimit(n: number, path?: string): void;
  /** Every matching answer waits this long before its headers, and again after its first `afterBytes` (0: off). */
  slow(opts: { beforeMs?: number; midBodyMs?: number; afterBytes?: number; path?: string }): void;
  /** Aggregation result rows written per chunk (the stream's granularity). */
  chunkRows: number;
  /**
   * The aggregation request after the next `skip` is answered with the rows the store holds when it arrives, but
   * only once `release()` is called (a reader stalled mid-read, then going on with what it had asked for);
   * `arrived` resolves when it has come in. Once.
   */
  holdAggregation(skip: number): { arrived: Promise<void>; release(): void };
  stop(): Promise<void>;
}

// ---- filter expressions ---------------------------------------------------------------------------------------

type Expr = { op: '&&'; left: Expr; right: Expr } | { op: '>' | '>=' | '<' | '<=' | '==' | '!='; path: string[]; value: string | number | boolean | null };

class FilterSyntaxError extends Error {}

/** Pendo's filter language, as far as the connector uses it: `a.b > "x\"y" && c >= 123`. */
export function parseFilter(src: string): Expr {
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const fail = (what: string): never => {
    throw new FilterSyntaxError(`filter: ${what} at offset ${i} in ${JSON.stringify(src)}`);
  };
  const primary = (): Expr => {
    ws();
    if (src[i] === '(') {
      i++;
      const e = conj();
      ws();
      if (src[i] !== ')') fail('expected )');
      i++;
      return e;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(src.slice(i));
    if (!m) fail('expected a field');
    i += m![0].length;
    ws();
    const op = /^(>=|<=|==|!=|>|<)/.exec(src.slice(i))?.[0] as Exclude<Expr['op'], '&&'> | undefined;
    if (!op) fail('expected a comparison');
    i += op!.length;
    ws();
    return { op: op!, path: m![0].split('.'), value: literal() };
  };
  const literal = (): string | number | boolean | null => {
    if (src[i] === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) fail('unterminated string');
      const raw = src.slice(i, j + 1);
      i = j + 1;
      try {
        return JSON.parse(raw) as string;
      } catch {
        return fail('bad string escape');
      }
    }
    const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(src.slice(i));
    if (!m) return fail('expected a string or a number');
    i += m[0].length;
    return JSON.parse(m[0]) as number | boolean | null;
  };
  const conj = (): Expr => {
    let left = primary();
    for (;;) {
      ws();
      if (src.startsWith('&&', i)) {
        i += 2;
        left = { op: '&&', left, right: primary() };
      } else return left;
    }
  };
  const e = conj();
  ws();
  if (i !== src.length) fail('unexpected text');
  return e;
}

const fieldOf = (row: Json, path: string[]): unknown => path.reduce<any>((o, k) => (o == null ? undefined : o[k]), row);

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function matches(e: Expr, row: Json): boolean {
  if (e.op === '&&') return matches(e.left, row) && matches(e.right, row);
  const v = fieldOf(row, e.path);
  if (v === undefined || v === null) return e.op === '==' ? e.value === null : e.op === '!=' ? e.value !== null : false;
  if (typeof e.value === 'number' && typeof v !== 'number') return false;
  const c = compare(v, e.value);
  switch (e.op) {
    case '>': return c > 0;
    case '>=': return c >= 0;
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '==': return c === 0;
    case '!=': return c !== 0;
  }
}

/** The strongest `key > "x"` / `key >= "x"` bound among the top-level conjuncts: where the keyed scan may start. */
function lowerBound(e: Expr, key: string): { value: string; inclusive: boolean } | undefined {
  if (e.op === '&&') {
    const [l, r] = [lowerBound(e.left, key), lowerBound(e.right, key)];
    if (!l || !r) return l ?? r;
    return l.value > r.value || (l.value === r.value && !l.inclusive) ? l : r;
  }
  if ((e.op === '>' || e.op === '>=') && e.path.length === 1 && e.path[0] === key && typeof e.value === 'string') return { value: e.value, inclusive: e.op === '>=' };
  return undefined;
}

// ---- pipeline -------------------------------------------------------------------------------------------------

type Stage = { filter: Expr } | { sort: { field: string[]; desc: boolean } } | { limit: number } | { count: null };

interface Plan {
  source: 'visitors' | 'accounts';
  /** The stages after the source, in order. */
  stages: Stage[];
}

class PipelineError extends Error {}

/** Checks the body as Pendo does before running it; throws PipelineError with Pendo-like words. */
function plan(body: unknown): { plan: Plan; pipeline: Json[] } {
  const b = body as Json;
  if (!b || typeof b !== 'object' || !b.request || typeof b.request !== 'object') throw new PipelineError('missing request');
  if (b.response?.mimeType !== 'application/json') throw new PipelineError('response.mimeType must be application/json');
  const pipeline = b.request.pipeline;
  if (!Array.isArray(pipeline) || pipeline.length === 0) throw new PipelineError('request.pipeline must be a non-empty array');
  let source: Plan['source'] | undefined;
  const stages: Stage[] = [];
  pipeline.forEach((stage: unknown, n: number) => {
    if (!stage || typeof stage !== 'object' || Array.isArray(stage) || Object.keys(stage).length !== 1) throw new PipelineError(`pipeline[${n}]: a stage is an object with one key`);
    const [name, arg] = Object.entries(stage as Json)[0];
    if (name === 'source') {
      if (n !== 0) throw new PipelineError(`pipeline[${n}]: source must be the first stage`);
      const keys = arg && typeof arg === 'object' ? Object.keys(arg) : [];
      if (keys.length !== 1 || !['visitors', 'accounts'].includes(keys[0]) || (arg as Json)[keys[0]] !== null) throw new PipelineError(`pipeline[0]: unknown source ${JSON.stringify(arg)}`);
      source = keys[0] as Plan['source'];
      return;
    }
    if (n === 0) throw new PipelineError('pipeline[0]: the first stage must be a source');
    if (name === 'filter') {
      if (typeof arg !== 'string') throw new PipelineError(`pipeline[${n}]: filter must be a string expression`);
      try {
        stages.push({ filter: parseFilter(arg) });
      } catch (err) {
        throw new PipelineError(`pipeline[${n}]: ${(err as Error).message}`);
      }
    } else if (name === 'sort') {
      if (!Array.isArray(arg) || arg.length !== 1 || typeof arg[0] !== 'string' || !/^-?[A-Za-z_][\w.]*$/.test(arg[0])) throw new PipelineError(`pipeline[${n}]: sort takes one field name`);
      stages.push({ sort: { field: arg[0].replace(/^-/, '').split('.'), desc: arg[0].startsWith('-') } });
    } else if (name === 'count') {
      if (arg !== null) throw new PipelineError(`pipeline[${n}]: count takes null`);
      stages.push({ count: null });
    } else if (name === 'limit') {
      if (!Number.isInteger(arg) || (arg as number) < 0) throw new PipelineError(`pipeline[${n}]: limit must be a non-negative integer`);
      stages.push({ limit: arg as number });
    } else {
      throw new PipelineError(`pipeline[${n}]: unknown pipeline operator ${JSON.stringify(name)}`);
    }
  });
  if (!source) throw new PipelineError('pipeline has no source');
  return { plan: { source, stages }, pipeline };
}

// ---- data -----------------------------------------------------------------------------------------------------

export const PENDO_USER = { id: 'u_2hB3tq', username: 'pm@example.com', first: 'Pat', last: 'Morgan', role: 8, userType: 'subscription', deletedAt: 0 };

/** A Pendo feature as GET /api/v1/feature returns it. */
export function makeFeature(id: string, appId: number, at: number, extra: Json = {}): Json {
  return {
    id, appId, name: `Feature ${id}`, kind: 'Feature', color: 'gray', description: '', group: { id: '_PENDO_DEFAULTGROUP_01_', name: 'Ungrouped' },
    createdByUser: PENDO_USER, createdAt: at, lastUpdatedByUser: PENDO_USER, lastUpdatedAt: at + 1000, dirty: false, dailyMergeFirst: at, dailyRollupFirst: at,
    rootVersionId: id, stableVersionId: `${id}-20260101000000.000000`, appWide: false, isCoreEvent: id.endsWith('0'), validThrough: at + 5000,
    elementPathRules: [`[data-feature="${id}"]`, 'button.save'], eventPropertyConfigurations: [], pageId: '', ...extra,
  };
}

export function makePage(id: string, appId: number, at: number, extra: Json = {}): Json {
  return {
    id, appId, name: `Page ${id}`, kind: 'Page', color: 'gray', description: '', group: { id: '_PENDO_DEFAULTGROUP_01_', name: 'Ungrouped' },
    createdByUser: PENDO_USER, createdAt: at, lastUpdatedByUser: PENDO_USER, lastUpdatedAt: at + 1000, dirty: false, dailyMergeFirst: at, dailyRollupFirst: at,
    rootVersionId: id, stableVersionId: `${id}-20260101000000.000000`, isCoreEvent: false, validThrough: at + 5000, suggestedName: '', isSuggested: false,
    rules: [{ rule: `//*/app/${id}`, designerHint: `https://example.com/app/${id}`, parsedRule: `^https?://[^/]*/app/${id}/?(?:;.*)?(?:\\?.*)?$` }], rulesjson: '', ...extra,
  };
}

export function makeGuide(id: string, appId: number, at: number, extra: Json = {}): Json {
  return {
    id, appId, name: `Guide ${id}`, kind: 'Guide', state: 'public', launchMethod: 'auto', isMultiStep: true, isTraining: false,
    createdByUser: PENDO_USER, createdAt: at, lastUpdatedByUser: PENDO_USER, lastUpdatedAt: at + 1000, publishedAt: at + 2000, publishedEver: true,
    showsAfter: at, expiresAfter: 0, recurrence: 0, recurrenceEligibilityWindow: 0, resetAt: 0, audience: [{ source: { visitors: null } }],
    attributes: { type: 'building-block', device: { desktop: true, mobile: false }, priority: 1 },
    steps: [
      { id: `${id}-s1`, guideId: id, type: 'lightbox', contentType: 'text/html; charset=utf-8', rank: 5000000, advanceMethod: 'button', lastUpdatedAt: at + 1000 },
      { id: `${id}-s2`, guideId: id, type: 'tooltip', contentType: 'text/html; charset=utf-8', rank: 10000000, advanceMethod: 'element', lastUpdatedAt: at + 1000 },
    ],
    ...extra,
  };
}

/** A visitor as the aggregation's `visitors` source returns it, metadata groups and all. */
export function makeVisitor(visitorId: string, at: number, appIds: number[], extra: { accountId?: string; custom?: Json } = {}): Json {
  const accountId = extra.accountId ?? 'acme';
  const perApp = Object.fromEntries(appIds.map((a) => [`auto__${a}`, { firstvisit: at - 86_400_000, lastvisit: at, lastupdated: at }]));
  return {
    visitorId,
    metadata: {
      auto: {
        id: visitorId, accountid: accountId, accountids: [accountId], firstvisit: at - 86_400_000, lastvisit: at, lastupdated: at, idhash: 1234567,
        lastbrowsername: 'Chrome', lastbrowserversion: '131.0.0', lastoperatingsystem: 'Mac OS X', lastservername: 'app.example.com',
        lastuseragent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
      },
      agent: { email: `${visitorId.replace(/[^\w]/g, '_')}@example.com`, full_name: `Visitor ${visitorId}`, role: 'admin' },
      custom: { plan: 'pro', seats: 5, ...extra.custom },
      ...perApp,
      salesforce: { contact_id: `003${visitorId.length}AbC`, lead_score: 42 },
    },
  };
}

export function makeAccount(accountId: string, at: number, extra: { custom?: Json } = {}): Json {
  return {
    accountId,
    metadata: {
      auto: { id: accountId, firstvisit: at - 86_400_000, lastvisit: at, lastupdated: at, idhash: 7654321 },
      agent: { name: `Account ${accountId}`, industry: 'Software' },
      custom: { tier: 'enterprise', ...extra.custom },
      salesforce: { account_id: `001${accountId.length}XyZ` },
    },
  };
}

/** A million visitors computed from their index: ids sort as their index does. */
export function generatedVisitors(count: number, at = Date.UTC(2026, 0, 1), appIds = [-323232]): GeneratedVisitors {
  const idOf = (i: number) => `v${String(i).padStart(9, '0')}`;
  const accountOf = (i: number) => `a${i % 1000}`;
  const atOf = (i: number) => at + (i % 86_400) * 1000;
  const visitor = (i: number) => makeVisitor(idOf(i), atOf(i), appIds, { accountId: accountOf(i) });
  // The JSON of a visitor with sentinel values, cut at them: a row is the pieces joined around its own values.
  const ID = 'vIDIDIDIDI'; // as long as a real id (the salesforce id below depends on the length)
  const ACCOUNT = '__ACCOUNT__';
  const AT_SENTINEL = 987654321012345;
  const template = JSON.stringify(makeVisitor(ID, AT_SENTINEL, appIds, { accountId: ACCOUNT }));
  const pieces = template.split(new RegExp(`(${ID}|${ACCOUNT}|${AT_SENTINEL - 86_400_000}|${AT_SENTINEL})`));
  const json = (i: number) => {
    const id = idOf(i);
    const acc = accountOf(i);
    const t = atOf(i);
    let out = '';
    for (const p of pieces) out += p === ID ? id : p === ACCOUNT ? acc : p === String(AT_SENTINEL) ? t : p === String(AT_SENTINEL - 86_400_000) ? t - 86_400_000 : p;
    return out;
  };
  return { count, idOf, visitor, json };
}

// ---- server ---------------------------------------------------------------------------------------------------

export async function startPendoFake(): Promise<PendoFake> {
  const keys = new Map<string, { host: string; readOnly: boolean }>();
  const stores = { visitors: new Map<string, Json>(), accounts: new Map<string, Json>() };
  const sortedCache: { visitors?: Json[]; accounts?: Json[] } = {};
  const requests: PendoRequest[] = [];
  const faults: Queued[] = [];
  let delay: { beforeMs: number; midBodyMs: number; afterBytes: number; path?: string } = { beforeMs: 0, midBodyMs: 0, afterBytes: 0 };
  let generated: GeneratedVisitors | undefined;
  let hold: { skip: number; arrive: () => void; released: Promise<void> } | undefined;
  const keyField = { visitors: 'visitorId', accounts: 'accountId' } as const;

  const sorted = (source: 'visitors' | 'accounts') =>
    (sortedCache[source] ??= [...stores[source].values()].sort((a, b) => compare(a[keyField[source]], b[keyField[source]])));

  const fake: PendoFake = {
    url: '',
    apiUrl: '',
    requests,
    features: [],
    pages: [],
    guides: [],
    appIds: [-323232],
    chunkRows: 200,
    addKey: (key, host, o = {}) => void keys.set(key, { host, readOnly: !!o.readOnly }),
    removeKey: (key) => void keys.delete(key),
    visitors: () => (generated ? [] : sorted('visitors').map((v) => structuredClone(v))),
    accounts: () => sorted('accounts').map((a) => structuredClone(a)),
    putVisitor(v) {
      stores.visitors.set(v.visitorId, structuredClone(v));
      delete sortedCache.visitors;
    },
    putAccount(a) {
      stores.accounts.set(a.accountId, structuredClone(a));
      delete sortedCache.accounts;
    },
    removeVisitor(id) {
      if (!stores.visitors.delete(id)) throw new Error(`no visitor ${id}`);
      delete sortedCache.visitors;
    },
    removeAccount(id) {
      if (!stores.accounts.delete(id)) throw new Error(`no account ${id}`);
      delete sortedCache.accounts;
    },
    generate: (g) => void (generated = g),
    inject(fault, times = 1, path) {
      for (let n = 0; n < times; n++) faults.push({ fault, path });
    },
    rateLimit(n, path) {
      fake.inject({ kind: 'status', status: 429, body: 'Too Many Requests' }, n, path);
    },
    slow: (o) => void (delay = { beforeMs: o.beforeMs ?? 0, midBodyMs: o.midBodyMs ?? 0, afterBytes: o.afterBytes ?? 0, path: o.path }),
    holdAggregation(skip) {
      let arrive!: () => void;
      let release!: () => void;
      const arrived = new Promise<void>((r) => (arrive = r));
      hold = { skip, arrive, released: new Promise<void>((r) => (release = r)) };
      return { arrived, release };
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** A streamed 200 whose body comes from `parts`, with the queued fault and the configured delays applied. */
  async function stream(res: http.ServerResponse, parts: Iterable<string>, fault: Fault | undefined, delayed: boolean) {
    res.writeHead(200, { 'content-type': 'application/json' });
    let sent = 0;
    let stalled = false;
    const stallAt = fault?.kind === 'stall' ? fault.afterBytes : delayed && delay.midBodyMs ? delay.afterBytes : -1;
    const stallMs = fault?.kind === 'stall' ? fault.ms : delay.midBodyMs;
    for (const part of parts) {
      if (res.destroyed) return;
      if (fault?.kind === 'destroy' && sent + part.length >= fault.afterBytes) {
        res.write(part.slice(0, Math.max(0, fault.afterBytes - sent)));
        await sleep(20); // let the bytes leave before the reset
        res.destroy();
        return;
      }
      if (!stalled && stallAt >= 0 && sent + part.length >= stallAt) {
        stalled = true;
        res.write(part.slice(0, stallAt - sent));
        await sleep(stallMs);
        if (!res.write(part.slice(stallAt - sent))) await new Promise((r) => res.once('drain', r));
      } else if (!res.write(part)) await new Promise((r) => res.once('drain', r));
      sent += part.length;
    }
    res.end();
  }

  function* jsonArray(items: Iterable<Json | RawJson>, head: string, tail: string, chunk: number): Generator<string> {
    let buf = head;
    let n = 0;
    let first = true;
    for (const item of items) {
      buf += (first ? '' : ',') + (item instanceof RawJson ? item.text : JSON.stringify(item));
      first = false;
      if (++n % chunk === 0) {
        yield buf;
        buf = '';
      }
    }
    yield buf + tail;
  }

  /**
   * The pipeline's stages in order over the source in key order, lazily. A key bound in a filter that comes before
   * any limit says where the keyed scan may start (filters commute with a sort), so a page deep into a million
   * generated visitors costs its own rows only.
   */
  function* run(p: Plan): Generator<Json | RawJson> {
    const key = keyField[p.source];
    const firstLimit = p.stages.findIndex((s) => 'limit' in s);
    // A key bound before any limit is met by starting the scan at the strongest one: no need to test it per row.
    const stages = p.stages.filter((s, n) => !('filter' in s && (firstLimit < 0 || n < firstLimit) && s.filter.op !== '&&' && lowerBound(s.filter, key)));
    const early = (firstLimit < 0 ? p.stages : p.stages.slice(0, firstLimit)).flatMap((s) => ('filter' in s ? [s.filter] : []));
    const bound = early.map((e) => lowerBound(e, key)).reduce<ReturnType<typeof lowerBound>>((a, b) => (!a || !b ? a ?? b : a.value > b.value || (a.value === b.value && !a.inclusive) ? a : b), undefined);
    const startIn = (n: number, keyAt: (i: number) => string) => {
      let lo = 0;
      let hi = n;
      while (bound && lo < hi) {
        const mid = (lo + hi) >> 1;
        const c = compare(keyAt(mid), bound.value);
        if (c < 0 || (c === 0 && !bound.inclusive)) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    let rows: Iterable<Json | RawJson>;
    if (p.source === 'visitors' && generated) {
      const g = generated;
      const lo = startIn(g.count, g.idOf);
      const raw = stages.every((s) => 'limit' in s || ('sort' in s && s.sort.field.join('.') === key && !s.sort.desc));
      rows = (function* () {
        for (let i = lo; i < g.count; i++) yield raw ? new RawJson(g.json(i)) : g.visitor(i);
      })();
    } else {
      const list = sorted(p.source);
      const lo = startIn(list.length, (i) => list[i][key]);
      rows = (function* () {
        for (let i = lo; i < list.length; i++) yield list[i];
      })();
    }
    let keyOrdered = true;
    for (const stage of stages) {
      const input = rows as Iterable<Json>;
      if ('filter' in stage) {
        rows = (function* () {
          for (const r of input) if (matches(stage.filter, r)) yield r;
        })();
      } else if ('sort' in stage) {
        const s = stage.sort;
        const natural = s.field.length === 1 && s.field[0] === key && !s.desc;
        if (!(natural && keyOrdered)) rows = [...input].sort((a, b) => (s.desc ? -1 : 1) * compare(fieldOf(a, s.field), fieldOf(b, s.field)));
        keyOrdered = natural;
      } else if ('count' in stage) {
        // Pendo's count operator: the rows so far become one row holding how many there were.
        rows = (function* () {
          let n = 0;
          for (const _ of input) n++;
          yield { count: n };
        })();
      } else {
        const limit = stage.limit;
        rows = (function* () {
          let n = 0;
          for (const r of input) {
            if (n++ >= limit) return;
            yield r;
          }
        })();
      }
    }
    yield* rows;
  }

  const text = (res: http.ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const [, host, ...rest] = u.pathname.split('/');
      const path = '/' + rest.join('/');
      const method = req.method ?? 'GET';
      const key = req.headers['x-pendo-integration-key'];
      const entry: PendoRequest = { method, host, path, query: u.searchParams, key: typeof key === 'string' ? key : undefined, status: 200, at: Date.now() };
      requests.push(entry);
      const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => http.ServerResponse;
      res.writeHead = ((status: number, ...a: unknown[]) => {
        entry.status = status;
        return writeHead(status, ...a);
      }) as typeof res.writeHead;

      if (!(PENDO_HOSTS as readonly string[]).includes(host)) return text(res, 404, 'Not Found');
      const owner = entry.key === undefined ? undefined : keys.get(entry.key);
      // Pendo answers a key of another region (or none) as an unknown key.
      if (!owner || owner.host !== host) return text(res, 401, 'Not authorized: invalid integration key');

      const fi = faults.findIndex((q) => !q.path || path.includes(q.path));
      const fault = fi >= 0 ? faults.splice(fi, 1)[0].fault : undefined;
      if (fault?.kind === 'status') return text(res, fault.status, fault.body ?? `HTTP ${fault.status}`);
      const delayed = !delay.path || path.includes(delay.path);
      if (delayed && delay.beforeMs) await sleep(delay.beforeMs);
      if (res.destroyed) return;

      const listed = { '/api/v1/feature': fake.features, '/api/v1/page': fake.pages, '/api/v1/guide': fake.guides }[path];
      if (method === 'GET' && listed) {
        const everyApp = u.searchParams.get('expand') === '*';
        const items = everyApp ? listed : listed.filter((o) => o.appId === fake.appIds[0]);
        return stream(res, jsonArray(items, '[', ']', 50), fault, delayed);
      }
      if (path === '/api/v1/aggregation') {
        if (method !== 'POST') return text(res, 405, 'Method Not Allowed');
        if (owner.readOnly) return text(res, 403, 'Forbidden: this integration key does not allow write access');
        let parsed: ReturnType<typeof plan>;
        try {
          if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new PipelineError('Content-Type must be application/json');
          parsed = plan(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          return text(res, 400, err instanceof PipelineError ? err.message : `invalid JSON: ${(err as Error).message}`);
        }
        entry.pipeline = parsed.pipeline;
        if (hold && hold.skip-- === 0) {
          const { arrive, released } = hold;
          hold = undefined;
          const rows = [...run(parsed.plan)]; // the store as it is now
          arrive();
          await released;
          return stream(res, jsonArray(rows, `{"startTime":${Date.now()},"results":[`, ']}', fake.chunkRows), fault, delayed);
        }
        return stream(res, jsonArray(run(parsed.plan), `{"startTime":${Date.now()},"results":[`, ']}', fake.chunkRows), fault, delayed);
      }
      return text(res, 404, 'Not Found');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.apiUrl = `${fake.url}/{host}`;
  return fake;
}
