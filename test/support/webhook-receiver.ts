import crypto from 'node:crypto';
import type http from 'node:http';
import { RecordingEndpoint, type RecordedRequest } from './recording-endpoint';

/** One request the receiver got, as it came, and what it answered ('dropped': the connection was closed unanswered). */
export type ReceivedRequest = RecordedRequest & { answered: number | 'dropped' };

/** What to answer: a status with headers and body, or drop the connection (a network error for the sender). */
export type Answer = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'drop';

/**
 * The recording endpoint (test/support/recording-endpoint.ts) with an answer per path, set by the test: many
 * destinations share one server, each on its own path, and each test says how its path answers.
 */
export class WebhookReceiver {
  private endpoint!: RecordingEndpoint;
  private answers = new Map<string, (r: RecordedRequest) => Answer>();

  async start(): Promise<this> {
    this.endpoint = await RecordingEndpoint.start();
    this.endpoint.respond = async (rec, res: http.ServerResponse) => {
      const r = rec as ReceivedRequest;
      const answer = this.answers.get(pathOf(r))?.(r) ?? { status: 200, body: '{"ok":true}' };
      if (answer === 'drop') {
        r.answered = 'dropped';
        res.socket?.destroy();
        return;
      }
      r.answered = answer.status;
      if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
      res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
      res.end(answer.body ?? '{}');
    };
    return this;
  }

  url(path: string): string {
    return `${this.endpoint.url}${path}`;
  }

  get requests(): ReceivedRequest[] {
    return this.endpoint.requests as ReceivedRequest[];
  }

  /** How `path` answers from now on (default: 200). */
  answer(path: string, fn: (r: RecordedRequest) => Answer): void {
    this.answers.set(path, fn);
  }

  at(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => pathOf(r) === path);
  }

  /** The requests to `path` that were answered 2xx. */
  delivered(path: string): ReceivedRequest[] {
    return this.at(path).filter((r) => typeof r.answered === 'number' && r.answered >= 200 && r.answered < 300);
  }

  stop(): Promise<void> {
    return this.endpoint.stop();
  }
}

const pathOf = (r: RecordedRequest) => r.path.split('?')[0];

/**
 * Whether the request carries a valid Standard Webhooks signature under `secret` (whsec_ + base64 key):
 * `webhook-signature` holds `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`.
 */
export function verifyStandardWebhook(r: Pick<RecordedRequest, 'headers' | 'body'>, secret: string): boolean {
  const id = r.headers['webhook-id'];
  const ts = r.headers['webhook-timestamp'];
  const sig = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string' || !secret.startsWith('whsec_')) return false;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${r.body}`).digest('base64');
  return sig.split(' ').some((s) => s === `v1,${expected}`);
}
