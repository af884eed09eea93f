import http from 'node:http';
import https from 'node:https';
import type { DestinationMethod, DestinationSecrets, WebhookDestinationConfig } from './types';
import { checkOutgoingUrl, guardedLookup, type OutgoingPolicy } from './outgoing-network';
import { batchId, signatureHeaders } from './signing';

/**
 * A destination's HTTP request: built from the config, its sealed secrets and the rendered bodies
 * (buildWebhookRequest), then sent once (sendRequest: no redirects followed, a timeout over the whole exchange,
 * the connected address checked by the outgoing-network policy). Retries are the caller's (destinations/retry.ts).
 */
export interface OutgoingRequest {
  url: string;
  method: DestinationMethod;
  /** Lower-case names. Secret header values in clear: mask them before showing or logging (maskRequest). */
  headers: Record<string, string>;
  /** The exact body text that was signed; undefined for GET and DELETE. */
  body?: string;
  /** The Standard Webhooks id (also headers['webhook-id']). */
  id: string;
}

export type HttpOutcome =
  | {
      kind: 'response';
      status: number;
      headers: Record<string, string>;
      /** The first RESPONSE_BODY_LIMIT bytes of the response body, as text. */
      body: string;
      /** The body was longer than what `body` holds. */
      truncated: boolean;
      durationMs: number;
    }
  | {
      kind: 'network_error';
      error: string;
      /** The outgoing-network policy refused the address: retrying cannot help. */
      refused?: boolean;
      durationMs: number;
    };

/** Bytes of a response body kept (logs, the test endpoint's answer). */
export const RESPONSE_BODY_LIMIT = 4096;
/** Bytes of a response body read at most (the rest is dropped with the connection). */
const RESPONSE_DRAIN_LIMIT = 1 << 20;
export const USER_AGENT = 'Tributary-Destinations/1';
const NO_BODY_METHODS: ReadonlySet<string> = new Set(['GET', 'DELETE']);

/**
 * The request for these items (in order): one change when `config.batch_size` is 1 (its rendered body, webhook-id
 * the change id), else a JSON array of the rendered bodies (webhook-id batchId of the change ids — also for a batch
 * of one, so the id says the body is an array). GET and DELETE carry no body (the signature is over '').
 * Header precedence: the config's headers, then the secret ones; content-type defaults to application/json; the
 * webhook-* signature headers and user-agent are always ours.
 */
export function buildWebhookRequest(
  config: Pick<WebhookDestinationConfig, 'url' | 'method' | 'headers' | 'batch_size'>,
  secrets: DestinationSecrets,
  items: readonly { id: string; body: unknown }[],
  nowSeconds: number,
): OutgoingRequest {
  if (items.length === 0) throw new Error('a destination request needs at least one change');
  const batched = config.batch_size > 1;
  if (!batched && items.length > 1) throw new Error(`batch_size is 1 but ${items.length} changes were given`);
  const id = batched ? batchId(items.map((i) => i.id)) : items[0].id;
  const body = NO_BODY_METHODS.has(config.method) ? undefined : JSON.stringify(batched ? items.map((i) => i.body) : items[0].body);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(config.headers ?? {})) headers[k.toLowerCase()] = v;
  for (const [k, v] of Object.entries(secrets.headers ?? {})) headers[k.toLowerCase()] = v;
  if (body === undefined) delete headers['content-type'];
  else headers['content-type'] ??= 'application/json';
  headers['user-agent'] = USER_AGENT;
  Object.assign(headers, signatureHeaders(secrets.signing_secret, id, nowSeconds, body ?? ''));
  return { url: config.url, method: config.method, headers, body, id };
}

/** The request with every secret header's value replaced by `mask` (for answers and logs). */
export function maskRequest(req: OutgoingRequest, secretHeaderNames: readonly string[], mask: string): OutgoingRequest {
  const secret = new Set(secretHeaderNames.map((n) => n.toLowerCase()));
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, secret.has(k) ? mask : v]));
  return { ...req, headers };
}

/** Keep-alive agents, one per protocol and policy (a pooled socket was checked when it connected). */
const agents = new Map<string, http.Agent>();
function agentFor(protocol: 'http:' | 'https:', policy: OutgoingPolicy): http.Agent {
  const key = `${protocol}${policy.allowPrivate ? 'p' : ''}${policy.allowLinkLocal ? 'l' : ''}`;
  let agent = agents.get(key);
  if (!agent) {
    const options = { keepAlive: true, maxSockets: 64, maxFreeSockets: 16, lookup: guardedLookup(policy) } as http.AgentOptions;
    agent = protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

/** Closes the pooled connections (a process that is about to stop, or a test). */
export function closeOutgoingConnections(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function describe(err: NodeJS.ErrnoException): string {
  const code = err.code && !err.message.includes(err.code) ? `${err.code}: ` : '';
  return `${code}${err.message}`;
}

/**
 * Sends the request once. Never throws: a response of any status (3xx included, never followed) is `response`;
 * a refused address, DNS failure, connection error or the timeout (`timeoutMs` over connect, request and response
 * body) is `network_error`.
 */
export function sendRequest(req: OutgoingRequest, opts: { timeoutMs: number; policy: OutgoingPolicy }): Promise<HttpOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 1000) / 1000;
  const refusedWhy = checkOutgoingUrl(req.url, opts.policy);
  if (refusedWhy) return Promise.resolve({ kind: 'network_error', error: `refused: ${req.url} ${refusedWhy}`, refused: true, durationMs: elapsed() });
  const url = new URL(req.url);
  const protocol = url.protocol as 'http:' | 'https:';
  return new Promise((resolve) => {
    let settled = false;
    const finish = (o: HttpOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const fail = (err: NodeJS.ErrnoException) => {
      const refused = err.code === 'EREFUSEDADDRESS';
      finish({ kind: 'network_error', error: refused ? `refused: ${err.message}` : describe(err), ...(refused ? { refused } : {}), durationMs: elapsed() });
    };
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
    const request = (protocol === 'https:' ? https : http).request(url, {
      method: req.method,
      headers,
      agent: agentFor(protocol, opts.policy),
      lookup: guardedLookup(opts.policy) as never,
    });
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error(`timed out after ${opts.timeoutMs} ms`);
      err.code = 'ETIMEDOUT';
      fail(err);
      request.destroy(err);
    }, opts.timeoutMs);
    request.on('error', fail);
    request.on('response', (res) => {
      const kept: Buffer[] = [];
      let keptBytes = 0;
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (keptBytes < RESPONSE_BODY_LIMIT) {
          const part = chunk.subarray(0, RESPONSE_BODY_LIMIT - keptBytes);
          kept.push(part);
          keptBytes += part.length;
        }
        if (total > RESPONSE_DRAIN_LIMIT) res.destroy();
      });
      const done = () =>
        finish({
          kind: 'response',
          status: res.statusCode ?? 0,
          headers: flatHeaders(res.headers),
          body: Buffer.concat(kept).toString('utf8'),
          truncated: total > keptBytes,
          durationMs: elapsed(),
        });
      res.on('end', done);
      res.on('close', done); // destroyed past the drain limit: what was kept is the answer
      res.on('error', () => done());
    });
    request.end(req.body);
  });
}
