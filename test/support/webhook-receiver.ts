import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got, as it came. */
export interface ReceivedRequest {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The signature checked out against the destination's secret (set by `verify`). */
  at: number;
  /** What the receiver answered ('dropped': it closed the connection without answering). */
  answered: number | 'dropped';
}

/** What to answer: a status with headers and body, or drop the connection (a network error for the sender). */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'drop';

/**
 * A local HTTP endpoint standing in for a destination: records every request (answered or not) and answers
 * what the test says, per path.
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  private answers = new Map<string, (r: ReceivedRequest, n: number) => Answer>();
  private server!: http.Server;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0];
        const r: ReceivedRequest = { path, method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), answered: 200 };
        const n = this.requests.filter((x) => x.path === path).length;
        const answer = this.answers.get(path)?.(r, n) ?? { status: 200, body: '{"ok":true}' };
        this.requests.push(r);
        if (answer === 'drop') {
          r.answered = 'dropped';
          req.socket.destroy();
          return;
        }
        r.answered = answer.status;
        res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(answer.body ?? '{}');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** How `path` answers from now on (default: 200). `n` counts the requests to that path before this one. */
  answer(path: string, fn: (r: ReceivedRequest, n: number) => Answer): void {
    this.answers.set(path, fn);
  }

  at(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** The requests to `path` that were answered 2xx. */
  delivered(path: string): ReceivedRequest[] {
    return this.at(path).filter((r) => typeof r.answered === 'number' && r.answered >= 200 && r.answered < 300);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Whether the request carries a valid Standard Webhooks signature under `secret` (whsec_ + base64 key):
 * `webhook-signature` holds `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`.
 */
export function verifyStandardWebhook(r: Pick<ReceivedRequest, 'headers' | 'body'>, secret: string): boolean {
  const id = r.headers['webhook-id'];
  const ts = r.headers['webhook-timestamp'];
  const sig = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string' || !secret.startsWith('whsec_')) return false;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${r.body}`).digest('base64');
  return sig.split(' ').some((s) => s === `v1,${expected}`);
}
