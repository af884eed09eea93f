import http from 'node:http';
import net from 'node:net';
import { addressRefusal, guardedLookup, OutgoingAddressRefused, type AddressResolver, type OutgoingPolicy } from '../destinations/outgoing-network';
import { withSwitch } from '../connectors/files/endpoint';
import type { Logger } from '../platform/logger';

/**
 * The embedded engine's way out to object storage: a small HTTP proxy on 127.0.0.1 that the engine's configuration
 * names (`<proxy>`, engine-process.ts), through which chDB sends its S3 (and url()) requests — an http:// request
 * as a forward-proxy request with its absolute URL, an https:// one as a CONNECT tunnel. chDB then never resolves
 * a storage host name itself: this proxy resolves the name of each connection with `guardedLookup` and connects to
 * the very address it checked, so the SSRF check and the connection are one step. A custom endpoint's name that
 * passed the check at link time (connectors/files/endpoint.ts) and later rebinds to 169.254.169.254 or a private
 * address is refused here, when the engine connects (DNS rebinding).
 *
 * Not through here: the hosts the engine was started with as direct (`<no_proxy>`; connectors/files/sql.ts
 * directHost), whose address no user can move — the catalog's IPv4-literal endpoints and the provider presets'
 * storage hosts. chDB opens a new connection to this proxy for every request (no pooling: a scan's ~150 range
 * requests each pay a connection, and for https a CONNECT and a TLS handshake), which cost a linked Parquet scan
 * ~40 % of its speed (BENCHMARKS.md); to a direct host it keeps its own pooled connections.
 *
 * Each forwarded http request gets a connection of its own (no pool): a name is resolved and judged again for every
 * request. A CONNECT tunnel is one connection to one checked address, which chDB may keep for many requests.
 * A refusal answers 403 with an S3-style XML error, so the engine's error says why.
 */
export interface EgressProxy {
  /** `http://127.0.0.1:PORT`, what the engine's `<proxy>` configuration names. */
  uri: string;
  close(): Promise<void>;
}

/** Hop-by-hop headers: about the connection to this proxy, not to pass on (the rest, `host` too, is signed by S3 clients and goes as sent). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade']);

const withoutHopByHop = (headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([k, v]) => v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())));

const xmlText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An answer as an S3 error document: what the engine's S3 client reads and shows. */
function errorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlText(message)}</Message></Error>\n`;
}

/** A refusal, naming the files sources' switches (the policy is theirs). */
const refusalText = (why: string) => `Tributary refused the connection: ${withSwitch(why)}`;

/** An upstream that could not be reached, in the words the engine's own connection errors use (connectors/files/probe.ts reads them). */
function unreachable(host: string, err: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    ECONNREFUSED: 'Connection refused', ETIMEDOUT: 'Timeout: connect timed out', ENOTFOUND: 'Could not resolve host', EAI_AGAIN: 'Could not resolve host (temporary failure)',
    EHOSTUNREACH: 'No route to host', ENETUNREACH: 'Network is unreachable', ECONNRESET: 'Connection reset by peer',
  };
  return `${host}: ${words[err.code ?? ''] ?? err.code ?? err.message}`;
}

/** How long the proxy waits for a connection to storage to open. */
const CONNECT_TIMEOUT_MS = 10_000;

function connectTimeout(socket: net.Socket, host: string) {
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`connect to ${host} timed out`), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

/** Why a host as written may not be connected to (a literal address is never looked up, so judged here), or null. */
function literalRefusal(host: string, policy: OutgoingPolicy): string | null {
  const bare = host.replace(/^\[|\]$/g, '');
  return net.isIP(bare) ? addressRefusal(bare, policy) : null;
}

export async function startEgressProxy(policy: OutgoingPolicy, opts: { log?: Logger; resolve?: AddressResolver } = {}): Promise<EgressProxy> {
  const lookup = guardedLookup(policy, opts.resolve);
  const log = opts.log;
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    const answer = (status: number, code: string, message: string) => {
      if (res.headersSent) return res.destroy();
      const body = errorBody(code, message);
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
    };
    const refuse = (status: number, why: string) => {
      log?.warn({ url: req.url?.slice(0, 300), why }, 'the engine was refused a connection to object storage');
      answer(status, 'AccessDenied', refusalText(why));
    };
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return refuse(400, 'not a proxy request (no absolute URL)');
    }
    if (target.protocol !== 'http:') return refuse(400, `${target.protocol} is not proxied as a request (https goes through CONNECT)`);
    log?.debug({ target: target.host, method: req.method }, 'an engine request through the egress proxy');
    const literal = literalRefusal(target.hostname, policy);
    if (literal) return refuse(403, literal);
    const upstream = http.request(
      {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port || 80,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers: withoutHopByHop(req.headers),
        lookup,
        agent: false,
      },
      (got) => {
        res.writeHead(got.statusCode ?? 502, withoutHopByHop(got.headers));
        got.pipe(res);
        got.on('error', (err) => res.destroy(err));
      },
    );
    upstream.on('socket', (socket) => connectTimeout(socket, target.host));
    // Not reachable: a 502 the engine's S3 client retries, as it retries a connection of its own that failed.
    upstream.on('error', (err) => (err instanceof OutgoingAddressRefused ? refuse(403, err.message) : answer(502, 'BadGateway', unreachable(target.host, err))));
    req.pipe(upstream);
    req.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  });

  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const refuse = (status: string, why: string) => {
      log?.warn({ target: req.url?.slice(0, 300), why }, 'the engine was refused a connection to object storage');
      client.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${why}\n`);
    };
    client.on('error', () => undefined);
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? '');
    if (!m) return refuse('400 Bad Request', `CONNECT needs host:port, got ${JSON.stringify(req.url)}`);
    const host = m[1].replace(/^\[|\]$/g, '');
    log?.debug({ target: req.url }, 'an engine tunnel (CONNECT) through the egress proxy');
    const literal = literalRefusal(host, policy);
    if (literal) return refuse('403 Forbidden', refusalText(literal));
    let open = false;
    const upstream = net.connect({ host, port: Number(m[2]), lookup });
    connectTimeout(upstream, m[1]);
    upstream.once('connect', () => {
      open = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', (err) => {
      if (open) return client.destroy();
      if (err instanceof OutgoingAddressRefused) refuse('403 Forbidden', refusalText(err.message));
      else client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${unreachable(req.url ?? '', err)}\n`);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // The engine keeps its connections to the proxy open; they are not requests to wait for when closing.
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    uri: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
