import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the endpoint received, as it arrived. */
export interface RecordedRequest {
  method: string;
  /** Path and query. */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** performance.timeOrigin + performance.now() when its body had fully arrived (ms since the epoch, fractional). */
  receivedAt: number;
}

/** How the endpoint answers a request; the default answers 200 `{"ok":true}`. May be async (a slow endpoint). */
export type Responder = (req: RecordedRequest, res: http.ServerResponse) => void | Promise<void>;

/**
 * A real local HTTP server standing in for a destination's endpoint: records every request (in arrival order) and
 * answers with `respond`, which a test may swap at any time.
 */
export class RecordingEndpoint {
  readonly requests: RecordedRequest[] = [];
  respond: Responder = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  };
  private readonly sockets = new Set<import('node:net').Socket>();

  private constructor(private readonly server: http.Server, readonly url: string) {}

  static async start(host = '127.0.0.1'): Promise<RecordingEndpoint> {
    let endpoint: RecordingEndpoint;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rec: RecordedRequest = {
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          receivedAt: performance.timeOrigin + performance.now(),
        };
        endpoint.requests.push(rec);
        Promise.resolve(endpoint.respond(rec, res)).catch((err) => {
          if (!res.headersSent) res.writeHead(500);
          res.end(String(err));
        });
      });
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    endpoint = new RecordingEndpoint(server, `http://${host.includes(':') ? `[${host}]` : host}:${port}`);
    server.on('connection', (s) => {
      endpoint.sockets.add(s);
      s.on('close', () => endpoint.sockets.delete(s));
    });
    return endpoint;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Polls until `cond` holds (or throws after `timeoutMs`). */
  async waitFor(cond: (requests: RecordedRequest[]) => boolean, timeoutMs = 30_000, what = 'the expected requests'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond(this.requests)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${this.requests.length} requests so far)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
