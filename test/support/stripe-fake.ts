import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the parts of Stripe's API that stripe-mock's fixed fixtures cannot show: real
 * pagination over many objects, `created` filters, the Events API (every change records an event whose
 * `data.object` is the object's new state), 429s, 403s for a key without a permission, and webhook
 * endpoints that remember what was created and deleted. It follows Stripe's documented API: lists newest
 * first, `limit` up to 100, `starting_after`, `created[gt|gte|lt|lte]`, `types[]`, Stripe's error shape,
 * and it is called through the real `stripe` package.
 */

type Obj = Record<string, unknown> & { id: string; object: string; created: number };

interface TypeInfo {
  prefix: string;
  path: string;
  /** The event prefix of its changes; null: Stripe sends none (balance transactions). */
  events: string | null;
  nested?: 'customer';
}

const TYPES: Record<string, TypeInfo> = {
  account: { prefix: 'acct', path: 'accounts', events: 'account' },
  balance_transaction: { prefix: 'txn', path: 'balance_transactions', events: null },
  charge: { prefix: 'ch', path: 'charges', events: 'charge' },
  credit_note: { prefix: 'cn', path: 'credit_notes', events: 'credit_note' },
  customer: { prefix: 'cus', path: 'customers', events: 'customer' },
  customer_balance_transaction: { prefix: 'cbtxn', path: 'balance_transactions', events: null, nested: 'customer' },
  payment_method: { prefix: 'pm', path: 'payment_methods', events: 'payment_method', nested: 'customer' },
  dispute: { prefix: 'dp', path: 'disputes', events: 'charge.dispute' },
  invoice: { prefix: 'in', path: 'invoices', events: 'invoice' },
  invoiceitem: { prefix: 'ii', path: 'invoiceitems', events: 'invoiceitem' },
  payout: { prefix: 'po', path: 'payouts', events: 'payout' },
  price: { prefix: 'price', path: 'prices', events: 'price' },
  product: { prefix: 'prod', path: 'products', events: 'product' },
  refund: { prefix: 're', path: 'refunds', events: 'refund' },
  subscription: { prefix: 'sub', path: 'subscriptions', events: 'customer.subscription' },
};

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The Stripe-Account header (a connected account), if sent. */
  account?: string;
  status: number;
  at: number;
}

export interface StripeFake {
  url: string;
  key: string;
  requests: FakeRequest[];
  objects(type: string): Obj[];
  events(): Obj[];
  create(type: string, fields?: Record<string, unknown>, opts?: { created?: number; customer?: string; event?: string | null }): Obj;
  update(type: string, id: string, fields: Record<string, unknown>, opts?: { event?: string; at?: number }): Obj;
  /** Deletes an object; `silent`: with no event (as if its event had aged out of the Events API). */
  remove(type: string, id: string, opts?: { at?: number; silent?: boolean }): void;
  /** The next `n` API calls answer 429 (with Retry-After when given). */
  rateLimit(n: number, retryAfterSeconds?: number): void;
  /** Calls whose path starts with `prefix` (and `method`) answer 403, as for a restricted key without that permission. */
  forbid(prefix: string, method?: string): void;
  /** Lifts every forbid (the key was given the permission). */
  allowAll(): void;
  /** Each list page waits this long first (so a test can stop a sync in the middle). */
  pageDelayMs: number;
  webhookEndpoints: Map<string, Obj>;
  /** The signing secret Stripe returned when each endpoint was created. */
  webhookSecrets: Map<string, string>;
  deletedEndpoints: string[];
  stop(): Promise<void>;
}

const rand = (n = 14) => crypto.randomBytes(n).toString('base64url').replace(/[-_]/g, 'x').slice(0, n);
const nowSec = () => Math.floor(Date.now() / 1000);

function stripeError(res: http.ServerResponse, status: number, type: string, message: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${rand()}`, ...headers });
  res.end(JSON.stringify({ error: { type, message, ...extra } }));
}

/** Stripe's form encoding (`a[b]=1`, `types[0]=x`, `types[]=x`) into nested values. */
function parseForm(params: URLSearchParams): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [rawKey, value] of params) {
    const m = /^([^[]+)((?:\[[^\]]*\])*)$/.exec(rawKey);
    if (!m) continue;
    const path = [m[1], ...[...m[2].matchAll(/\[([^\]]*)\]/g)].map((x) => x[1])];
    let cur: any = out;
    for (let i = 0; i < path.length; i++) {
      const k = path[i];
      if (i === path.length - 1) {
        if (Array.isArray(cur)) cur.push(value);
        else cur[k] = value;
      } else {
        const nextIsIndex = path[i + 1] === '' || /^\d+$/.test(path[i + 1]);
        const slot = Array.isArray(cur) ? undefined : cur[k];
        const child = slot ?? (nextIsIndex ? [] : {});
        if (Array.isArray(cur)) cur.push(child);
        else cur[k] = child;
        cur = child;
      }
    }
  }
  return out;
}

function inRange(value: number, filter: unknown): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'string') return value === Number(filter);
  const f = filter as Record<string, string>;
  if (f.gt !== undefined && !(value > Number(f.gt))) return false;
  if (f.gte !== undefined && !(value >= Number(f.gte))) return false;
  if (f.lt !== undefined && !(value < Number(f.lt))) return false;
  if (f.lte !== undefined && !(value <= Number(f.lte))) return false;
  return true;
}

export async function startStripeFake(opts: { key?: string } = {}): Promise<StripeFake> {
  const key = opts.key ?? `sk_test_fake${rand(10)}`;
  const store = new Map<string, Obj[]>(); // type → objects, oldest first
  const eventLog: Obj[] = [];
  const requests: FakeRequest[] = [];
  const webhookEndpoints = new Map<string, Obj>();
  const webhookSecrets = new Map<string, string>();
  const deletedEndpoints: string[] = [];
  const forbidden: { prefix: string; method?: string }[] = [];
  let limited = 0;
  let retryAfter: number | undefined;
  let seq = 0;

  const list = (type: string) => {
    let l = store.get(type);
    if (!l) store.set(type, (l = []));
    return l;
  };

  const snapshot = (o: Obj) => JSON.parse(JSON.stringify(o)) as Obj;

  function record(type: string, eventType: string, object: Obj, created: number) {
    const event: Obj = {
      id: `evt_${rand(20)}`,
      object: 'event',
      api_version: '2026-08-26.dahlia',
      created,
      type: eventType,
      data: { object: snapshot(object) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
    } as Obj;
    Object.defineProperty(event, '_seq', { value: ++seq, enumerable: false });
    eventLog.push(event);
    return event;
  }

  const fake: StripeFake = {
    url: '',
    key,
    requests,
    pageDelayMs: 0,
    webhookEndpoints,
    webhookSecrets,
    deletedEndpoints,
    objects: (type) => list(type).map(snapshot),
    events: () => eventLog.map(snapshot),

    create(type, fields = {}, o = {}) {
      const info = TYPES[type];
      if (!info) throw new Error(`the fake has no ${type} objects`);
      const created = o.created ?? nowSec();
      const object: Obj = {
        id: `${info.prefix}_${rand()}`,
        object: type,
        created,
        livemode: false,
        metadata: {},
        ...(type === 'invoiceitem' ? { date: created } : {}),
        ...(info.nested ? { customer: o.customer } : {}),
        ...fields,
      } as Obj;
      Object.defineProperty(object, '_seq', { value: ++seq, enumerable: false });
      list(type).push(object);
      const eventType = o.event === undefined ? (info.events ? `${info.events}.${type === 'payment_method' ? 'attached' : 'created'}` : null) : o.event;
      if (eventType) record(type, eventType, object, created);
      return snapshot(object);
    },

    update(type, id, fields, o = {}) {
      const object = list(type).find((x) => x.id === id);
      if (!object) throw new Error(`no ${type} ${id}`);
      Object.assign(object, fields);
      const info = TYPES[type];
      const eventType = o.event ?? (info.events ? `${info.events}.updated` : undefined);
      if (eventType) record(type, eventType, object, o.at ?? nowSec());
      return snapshot(object);
    },

    remove(type, id, o = {}) {
      const l = list(type);
      const i = l.findIndex((x) => x.id === id);
      if (i < 0) throw new Error(`no ${type} ${id}`);
      const [object] = l.splice(i, 1);
      const info = TYPES[type];
      if (info.events && !o.silent) record(type, `${info.events}.${type === 'payment_method' ? 'detached' : 'deleted'}`, { ...object, ...(type === 'payment_method' ? {} : { deleted: true }) }, o.at ?? nowSec());
    },

    rateLimit(n, seconds) {
      limited = n;
      retryAfter = seconds;
    },

    forbid(prefix, method) {
      forbidden.push({ prefix, method });
    },

    allowAll() {
      forbidden.length = 0;
    },

    async stop() {
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  /** Newest first (created, then creation order), filtered, one page after `starting_after`. */
  function page(all: Obj[], q: Record<string, any>, path: string, res: http.ServerResponse) {
    const sorted = [...all].sort((a, b) => b.created - a.created || Number(b._seq) - Number(a._seq));
    const filtered = sorted.filter((o) => inRange(o.created, q.created));
    let start = 0;
    if (q.starting_after) {
      const i = sorted.findIndex((o) => o.id === q.starting_after);
      if (i < 0) return stripeError(res, 400, 'invalid_request_error', `No such object: '${q.starting_after}'`, { code: 'resource_missing', param: 'starting_after' });
      const after = sorted[i];
      start = filtered.findIndex((o) => o.created < after.created || (o.created === after.created && Number(o._seq) < Number(after._seq)));
      if (start < 0) start = filtered.length;
    }
    const limit = Math.min(Math.max(Number(q.limit ?? 10), 1), 100);
    const data = filtered.slice(start, start + limit);
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${rand()}` });
    res.end(JSON.stringify({ object: 'list', url: path, has_more: start + limit < filtered.length, data }));
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      const account = req.headers['stripe-account'];
      const entry: FakeRequest = { method, path: u.pathname, query: u.searchParams, status: 200, at: Date.now(), account: typeof account === 'string' ? account : undefined };
      requests.push(entry);
      const origEnd = res.writeHead.bind(res);
      res.writeHead = ((status: number, ...rest: unknown[]) => {
        entry.status = status;
        return (origEnd as (...a: unknown[]) => http.ServerResponse)(status, ...rest);
      }) as typeof res.writeHead;

      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString().replace(/:$/, '');
      if (given !== key) {
        return stripeError(res, 401, 'invalid_request_error', `Invalid API Key provided: ${given.slice(0, 8)}${'*'.repeat(Math.max(0, given.length - 12))}${given.slice(-4)}`);
      }
      if (limited > 0) {
        limited--;
        return stripeError(res, 429, 'invalid_request_error', 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.', { code: 'rate_limit' }, retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {});
      }
      const block = forbidden.find((f) => u.pathname.startsWith(f.prefix) && (!f.method || f.method === method));
      if (block) {
        return stripeError(
          res,
          403,
          'invalid_request_error',
          `The provided key '${key.slice(0, 8)}***${key.slice(-4)}' does not have the required permissions for this endpoint on account 'acct_fake'. Having the '${u.pathname.includes('webhook') ? 'rak_webhook_write' : 'rak_read'}' permission would allow this request to continue.`,
        );
      }
      const q = method === 'GET' || method === 'DELETE' ? parseForm(u.searchParams) : parseForm(new URLSearchParams(Buffer.concat(chunks).toString()));
      const parts = u.pathname.split('/').filter(Boolean); // ['v1', …]
      if (fake.pageDelayMs && method === 'GET') await new Promise((r) => setTimeout(r, fake.pageDelayMs));

      if (method === 'GET' && parts[1] === 'balance') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ object: 'balance', available: [{ amount: 0, currency: 'usd' }], pending: [], livemode: false }));
      }
      if (method === 'GET' && parts[1] === 'events' && parts.length === 2) {
        const types: string[] | undefined = q.types ?? (q.type ? [q.type] : undefined);
        return page(eventLog.filter((e) => !types || types.includes(String(e.type))), q, u.pathname, res);
      }
      if (parts[1] === 'webhook_endpoints') {
        const id = parts[2];
        if (method === 'POST' && !id) {
          const endpoint: Obj = {
            id: `we_${rand()}`, object: 'webhook_endpoint', created: nowSec(), url: q.url, enabled_events: q.enabled_events ?? [],
            api_version: q.api_version ?? null, status: 'enabled', livemode: false, metadata: {}, description: q.description ?? null,
          };
          webhookEndpoints.set(endpoint.id, endpoint);
          const secret = `whsec_${rand(32)}`;
          webhookSecrets.set(endpoint.id, secret);
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ ...endpoint, secret }));
        }
        if (method === 'GET' && !id) return page([...webhookEndpoints.values()], q, u.pathname, res);
        const endpoint = id ? webhookEndpoints.get(id) : undefined;
        if (!endpoint) return stripeError(res, 404, 'invalid_request_error', `No such webhook endpoint: '${id}'`, { code: 'resource_missing' });
        if (method === 'POST') Object.assign(endpoint, q.enabled_events ? { enabled_events: q.enabled_events } : {}, q.disabled !== undefined ? { status: q.disabled === 'true' ? 'disabled' : 'enabled' } : {});
        if (method === 'DELETE') {
          webhookEndpoints.delete(endpoint.id);
          deletedEndpoints.push(endpoint.id);
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ id: endpoint.id, object: 'webhook_endpoint', deleted: true }));
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(endpoint));
      }
      if (method === 'GET') {
        // /v1/customers/{id}/{balance_transactions|payment_methods}: a customer's nested list.
        if (parts[1] === 'customers' && parts.length === 4) {
          const type = parts[3] === 'payment_methods' ? 'payment_method' : parts[3] === 'balance_transactions' ? 'customer_balance_transaction' : undefined;
          if (!type) return stripeError(res, 404, 'invalid_request_error', `Unrecognized request URL (GET: ${u.pathname})`);
          if (!list('customer').some((c) => c.id === parts[2])) return stripeError(res, 404, 'invalid_request_error', `No such customer: '${parts[2]}'`, { code: 'resource_missing' });
          return page(list(type).filter((o) => o.customer === parts[2]), q, u.pathname, res);
        }
        const type = Object.keys(TYPES).find((t) => !TYPES[t].nested && TYPES[t].path === parts[1]);
        if (type && parts.length === 2) {
          let all = list(type);
          // Stripe lists subscriptions that are not canceled unless asked for status=all (or a status).
          if (type === 'subscription') all = q.status === 'all' ? all : all.filter((s) => (q.status ? s.status === q.status : s.status !== 'canceled'));
          return page(all, q, u.pathname, res);
        }
      }
      return stripeError(res, 404, 'invalid_request_error', `Unrecognized request URL (${method}: ${u.pathname})`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
