import { callWithRetries, type FailureKind } from './calls';
import { JsonArrayScanner, type ScannedItem } from './json-items';
import type { Pacer } from './pacer';

/**
 * The HTTP client of API connectors that have no SDK of their own (Pendo): Node's fetch, paced per key,
 * every request under a timeout, 429s waited out (Retry-After when the API sends it, else back-off),
 * 5xx / 408 / resets / timeouts retried (calls.ts). Other 4xx become ApiHttpError for the connector to
 * turn into words a user can act on.
 */

export class ApiHttpError extends Error {
  constructor(
    readonly status: number,
    /** The first few KB of the response body, as text. */
    readonly body: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
    this.name = 'ApiHttpError';
  }
}

/** The request took longer than its timeout (to the response headers, or between two chunks of the body). */
export class ApiTimeout extends Error {
  constructor(readonly method: string, readonly path: string, readonly ms: number) {
    super(`${method} ${path}: no answer within ${ms} ms`);
    this.name = 'ApiTimeout';
  }
}

export interface HttpApiOptions {
  /** Origin and any path prefix every request path is appended to, e.g. `https://app.eu.pendo.io`. */
  baseUrl: string;
  /** Sent with every request (the credential's header goes here; it is never logged). */
  headers: Record<string, string>;
  pacer?: Pacer;
  /** To the response headers, and then between two chunks of the body (default TRIBUTARY_API_TIMEOUT_MS, 60 s). */
  timeoutMs?: number;
  /** Attempts for a transient failure before it is thrown to the activity (calls.ts). */
  transientAttempts?: number;
  /** Longest back-off the kit picks itself (calls.ts); tests keep it short. */
  maxBackoffMs?: number;
}

export interface RequestOptions {
  query?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Heartbeat while waiting out a rate limit or a back-off. */
  onWait?: () => void;
}

const ERROR_BODY_LIMIT = 4096;

function timeoutFromEnv(): number {
  const v = Number(process.env.TRIBUTARY_API_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 60_000;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** How the kit treats a failed HTTP request (see calls.ts). */
export function classifyHttpFailure(err: unknown): FailureKind {
  if (err instanceof RateLimited) return { kind: 'rate_limited', retryAfterMs: err.retryAfterMs };
  if (err instanceof ApiHttpError) return err.status >= 500 || err.status === 408 ? { kind: 'transient' } : { kind: 'fatal' };
  if (err instanceof ApiTimeout) return { kind: 'transient' };
  // fetch's network failures (refused, DNS: "fetch failed"; a body cut off by a reset: "terminated") are TypeErrors
  // whose `cause` says what happened; any other TypeError is a bug, and retrying it would only hide it.
  // By name, not instanceof: fetch's errors come from Node's own realm, which is not the caller's under a VM (Jest).
  const e = err as { name?: string; message?: string; cause?: unknown } | null;
  if (e?.name === 'TypeError' && (e.cause !== undefined || e.message === 'fetch failed' || e.message === 'terminated')) return { kind: 'transient' };
  if ((err as { code?: string })?.code === 'ECONNRESET') return { kind: 'transient' };
  return { kind: 'fatal' };
}

class RateLimited extends Error {
  constructor(readonly retryAfterMs: number | undefined) {
    super('rate limited (HTTP 429)');
  }
}

export class HttpApi {
  private readonly timeoutMs: number;
  constructor(private readonly opts: HttpApiOptions) {
    this.timeoutMs = opts.timeoutMs ?? timeoutFromEnv();
  }

  url(path: string, query?: Record<string, string>): string {
    const qs = query && Object.keys(query).length ? `?${new URLSearchParams(query)}` : '';
    return `${this.opts.baseUrl.replace(/\/$/, '')}${path}${qs}`;
  }

  /** The whole answer, parsed. The timeout applies between two chunks, so a large answer on a slow link still arrives. */
  async json<T = unknown>(method: string, path: string, req: RequestOptions = {}): Promise<T> {
    return this.withRetries(req, async () => {
      const { res, idle } = await this.send(method, path, req);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      try {
        for (;;) {
          const { value, done } = await idle.guard(reader.read());
          if (done) break;
          text += decoder.decode(value, { stream: true });
        }
      } finally {
        idle.clear();
        await reader.cancel().catch(() => undefined);
      }
      return JSON.parse(text + decoder.decode()) as T;
    });
  }

  /**
   * The items of the answer's array (`at`: under that top-level key, else the body is the array), as they arrive.
   * Retries cover the request until its first byte; a failure after that is thrown, and the caller resumes
   * from the last item it kept (keyset.ts does).
   */
  async *jsonItems(method: string, path: string, req: RequestOptions & { at?: string } = {}): AsyncGenerator<unknown> {
    for await (const items of this.scannedItems(method, path, req)) for (const item of items) yield item.value;
  }

  /**
   * As jsonItems, the items that each piece of the body completed together (one await per piece, not per item),
   * each with its text (json-items.ts: a member can be passed on as JSON text without re-serializing it).
   */
  async *scannedItems(method: string, path: string, req: RequestOptions & { at?: string; parse?: boolean } = {}): AsyncGenerator<ScannedItem[]> {
    const { res, idle } = await this.withRetries(req, () => this.send(method, path, req));
    // The reader, not the body, is cancelled at the end: the body is locked to it, and a consumer that stops
    // early must still let the connection go.
    const reader = res.body!.getReader();
    try {
      const scanner = new JsonArrayScanner(req.at, { parse: req.parse });
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await idle.guard(reader.read());
        if (done) break;
        const items = scanner.pushItems(decoder.decode(value, { stream: true }));
        if (items.length) yield items;
      }
      const items = scanner.pushItems(decoder.decode());
      if (items.length) yield items;
      scanner.end();
    } finally {
      idle.clear();
      await reader.cancel().catch(() => undefined);
    }
  }

  private withRetries<T>(req: RequestOptions, fn: () => Promise<T>): Promise<T> {
    return callWithRetries(fn, { pacer: this.opts.pacer, classify: classifyHttpFailure, onWait: req.onWait, transientAttempts: this.opts.transientAttempts, maxBackoffMs: this.opts.maxBackoffMs });
  }

  /** One request; resolves once a 2xx answer's headers are in, with a timer guarding the body's reads. */
  private async send(method: string, path: string, req: RequestOptions): Promise<{ res: Response; idle: IdleTimer }> {
    const controller = new AbortController();
    const idle = new IdleTimer(this.timeoutMs, controller, () => new ApiTimeout(method, path, this.timeoutMs));
    const headers: Record<string, string> = { accept: 'application/json', ...this.opts.headers };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await idle.guard(
        fetch(this.url(path, req.query), { method, headers, body: req.body === undefined ? undefined : JSON.stringify(req.body), signal: controller.signal, redirect: 'error' }),
      );
    } catch (err) {
      idle.clear();
      throw err;
    }
    if (res.ok) return { res, idle };
    const text = await idle.guard(res.text()).catch(() => '');
    idle.clear();
    if (res.status === 429) throw new RateLimited(retryAfterMs(res.headers.get('retry-after')));
    throw new ApiHttpError(res.status, text.slice(0, ERROR_BODY_LIMIT), method, path);
  }
}

/** Aborts the request when no progress was made for `ms`; every guarded step restarts the clock. */
class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  private fired = false;
  constructor(
    private readonly ms: number,
    private readonly controller: AbortController,
    private readonly error: () => Error,
  ) {}

  async guard<T>(step: Promise<T>): Promise<T> {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fired = true;
      this.controller.abort();
    }, this.ms);
    try {
      return await step;
    } catch (err) {
      throw this.fired ? this.error() : err;
    } finally {
      clearTimeout(this.timer);
    }
  }

  clear() {
    clearTimeout(this.timer);
  }
}
