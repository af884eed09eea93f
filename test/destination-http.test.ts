import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { buildWebhookRequest, closeOutgoingConnections, maskRequest, RESPONSE_BODY_LIMIT, sendRequest, type HttpOutcome } from '../destinations/http-request';
import { addressRefusal, checkOutgoingUrl, outgoingPolicyFromEnv, type OutgoingPolicy } from '../destinations/outgoing-network';
import { classifyOutcome, MAX_ATTEMPTS, RETRY_AFTER_CAP_MS, RETRY_CAP_MS, retryDelayMs } from '../destinations/retry';
import { batchId, changeId, newSigningSecret, signatureHeaders } from '../destinations/signing';
import type { DestinationSecrets, WebhookDestinationConfig } from '../destinations/types';
import { loadConfig } from '../platform/config';
import { RecordingEndpoint } from './support/recording-endpoint';

const DEFAULT = outgoingPolicyFromEnv({});
const LOCAL: OutgoingPolicy = { allowPrivate: true, allowLinkLocal: false };
const now = () => Math.floor(Date.now() / 1000);

function config(url: string, over: Partial<WebhookDestinationConfig> = {}): WebhookDestinationConfig {
  return { url, method: 'POST', headers: {}, secret_headers: [], filters: {}, batch_size: 1, timeout_ms: 10_000, ...over };
}

const change = { table: 'shop_orders', key: '{"id":7}', version: '123456789', op: 'update' };

let endpoint: RecordingEndpoint;
let secrets: DestinationSecrets;

beforeAll(async () => {
  endpoint = await RecordingEndpoint.start();
  secrets = { signing_secret: newSigningSecret(), headers: { authorization: 'Bearer s3cret' } };
});
afterAll(async () => {
  closeOutgoingConnections();
  await endpoint.stop();
});
beforeEach(() => {
  endpoint.requests.length = 0;
  endpoint.respond = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  };
});

describe('Standard Webhooks signing', () => {
  test('the spec example signs to its published signature', () => {
    const h = signatureHeaders('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(h).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });

  test('a request received by a real server verifies with the standardwebhooks package, and a changed body does not', async () => {
    const id = changeId(change);
    const req = buildWebhookRequest(config(`${endpoint.url}/hook`), secrets, [{ id, body: { text: 'Order 7 paid', amount: 120.5 } }], now());
    const out = await sendRequest(req, { timeoutMs: 5000, policy: LOCAL });
    expect(out).toMatchObject({ kind: 'response', status: 200, body: '{"ok":true}' });
    expect(endpoint.requests).toHaveLength(1);
    const got = endpoint.requests[0];
    expect(got.headers['webhook-id']).toBe(id);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers.authorization).toBe('Bearer s3cret');
    const wh = new Webhook(secrets.signing_secret);
    expect(wh.verify(got.body, got.headers as Record<string, string>)).toEqual({ text: 'Order 7 paid', amount: 120.5 });
    expect(() => wh.verify(got.body.replace('120.5', '1205'), got.headers as Record<string, string>)).toThrow(/signature/i);
    expect(() => new Webhook(newSigningSecret()).verify(got.body, got.headers as Record<string, string>)).toThrow(/signature/i);
  });

  test('the webhook-id is the same for the same change and differs for another version, op, key or table', () => {
    const id = changeId(change);
    expect(id).toMatch(/^chg_[0-9a-f]{32}$/);
    expect(changeId({ ...change })).toBe(id);
    expect(changeId({ ...change, version: 123456789n })).toBe(id);
    const others = [{ version: '123456790' }, { op: 'delete' }, { key: '{"id":8}' }, { table: 'shop_items' }].map((d) => changeId({ ...change, ...d }));
    expect(new Set([id, ...others]).size).toBe(5);
    // Two requests for the same change at different times: same id, each signature valid for its own timestamp.
    const a = buildWebhookRequest(config('http://example.com/'), secrets, [{ id, body: { n: 1 } }], 1_700_000_000);
    const b = buildWebhookRequest(config('http://example.com/'), secrets, [{ id, body: { n: 1 } }], 1_700_000_060);
    expect(a.headers['webhook-id']).toBe(b.headers['webhook-id']);
    expect(a.headers['webhook-signature']).not.toBe(b.headers['webhook-signature']);
  });

  test('a batched request carries an array and a bat_ id over its change ids in order', async () => {
    const ids = [changeId(change), changeId({ ...change, version: '2' })];
    const req = buildWebhookRequest(config(endpoint.url, { batch_size: 10 }), secrets, ids.map((id, i) => ({ id, body: { i } })), now());
    expect(req.id).toBe(batchId(ids));
    expect(req.id).toMatch(/^bat_[0-9a-f]{32}$/);
    expect(batchId([...ids].reverse())).not.toBe(req.id);
    await sendRequest(req, { timeoutMs: 5000, policy: LOCAL });
    const got = endpoint.requests[0];
    expect(JSON.parse(got.body)).toEqual([{ i: 0 }, { i: 1 }]);
    expect(new Webhook(secrets.signing_secret).verify(got.body, got.headers as Record<string, string>)).toEqual([{ i: 0 }, { i: 1 }]);
  });

  test('user headers cannot replace the signature headers; secret headers are masked on request', () => {
    const req = buildWebhookRequest(
      config('http://example.com/', { headers: { 'Webhook-Id': 'forged', 'X-Team': 'ops' }, secret_headers: ['Authorization'] }),
      secrets,
      [{ id: 'chg_1', body: {} }],
      1_700_000_000,
    );
    expect(req.headers['webhook-id']).toBe('chg_1');
    expect(req.headers['x-team']).toBe('ops');
    const masked = maskRequest(req, ['Authorization'], '********');
    expect(masked.headers.authorization).toBe('********');
    expect(req.headers.authorization).toBe('Bearer s3cret');
  });
});

describe('sending', () => {
  test.each(['GET', 'DELETE'] as const)('%s has no body and no content-type; its signature is over the empty body', async (method) => {
    const req = buildWebhookRequest(config(`${endpoint.url}/x?y=1`, { method }), secrets, [{ id: 'chg_a', body: { big: 'x'.repeat(100) } }], now());
    expect(req.body).toBeUndefined();
    await sendRequest(req, { timeoutMs: 5000, policy: LOCAL });
    const got = endpoint.requests[0];
    expect(got.method).toBe(method);
    expect(got.path).toBe('/x?y=1');
    expect(got.body).toBe('');
    expect(got.headers['content-type']).toBeUndefined();
    expect(got.headers['content-length'] ?? '0').toBe('0');
    expect(new Webhook(secrets.signing_secret).verify('', got.headers as Record<string, string>)).toBeUndefined();
  });

  test.each(['PUT', 'PATCH'] as const)('%s carries the body', async (method) => {
    await sendRequest(buildWebhookRequest(config(endpoint.url, { method }), secrets, [{ id: 'chg_b', body: [1, 'two'] }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(endpoint.requests[0]).toMatchObject({ method, body: '[1,"two"]' });
  });

  test('an endpoint slower than timeout_ms is a network_error (and the request did reach it)', async () => {
    endpoint.respond = (_req, res) => void setTimeout(() => res.end('late'), 3000).unref();
    const out = await sendRequest(buildWebhookRequest(config(endpoint.url), secrets, [{ id: 'chg_t', body: {} }], now()), { timeoutMs: 300, policy: LOCAL });
    expect(out).toMatchObject({ kind: 'network_error', error: expect.stringMatching(/timed out after 300 ms/) });
    expect(out.durationMs).toBeGreaterThanOrEqual(300);
    expect(endpoint.requests).toHaveLength(1);
    expect(classifyOutcome(out)).toBe('retry');
  });

  test('a connection refused is a network_error', async () => {
    const closed = await RecordingEndpoint.start();
    const url = closed.url;
    await closed.stop();
    const out = await sendRequest(buildWebhookRequest(config(url), secrets, [{ id: 'chg_c', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(out).toMatchObject({ kind: 'network_error', error: expect.stringMatching(/ECONNREFUSED/) });
    expect(classifyOutcome(out)).toBe('retry');
  });

  test('a 3xx is answered as it is, not followed, and counts as failure', async () => {
    endpoint.respond = (req, res) => {
      if (req.path === '/moved') {
        res.writeHead(302, { location: `${endpoint.url}/elsewhere` });
        res.end();
      } else res.end('followed');
    };
    const out = await sendRequest(buildWebhookRequest(config(`${endpoint.url}/moved`), secrets, [{ id: 'chg_r', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(out).toMatchObject({ kind: 'response', status: 302, headers: { location: `${endpoint.url}/elsewhere` } });
    expect(endpoint.requests.map((r) => r.path)).toEqual(['/moved']);
    expect(classifyOutcome(out)).toBe('failure');
  });

  test('a response body is kept to its first 4 KiB, marked truncated', async () => {
    const big = 'abcdefgh'.repeat(2000); // 16,000 bytes
    endpoint.respond = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(big);
    };
    const out = await sendRequest(buildWebhookRequest(config(endpoint.url), secrets, [{ id: 'chg_big', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(out.kind).toBe('response');
    if (out.kind !== 'response') return;
    expect(out.status).toBe(500);
    expect(out.body).toBe(big.slice(0, RESPONSE_BODY_LIMIT));
    expect(RESPONSE_BODY_LIMIT).toBe(4096);
    expect(out.truncated).toBe(true);
    const small = await sendRequest(buildWebhookRequest(config(endpoint.url), secrets, [{ id: 'chg_s', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(small).toMatchObject({ body: big.slice(0, RESPONSE_BODY_LIMIT), truncated: true });
    endpoint.respond = (_req, res) => void res.end('short');
    expect(await sendRequest(buildWebhookRequest(config(endpoint.url), secrets, [{ id: 'chg_s2', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL })).toMatchObject({
      body: 'short',
      truncated: false,
    });
  });

  test('consecutive requests reuse a kept-alive connection', async () => {
    const ports = new Set<number>();
    const server = http.createServer((req, res) => {
      ports.add(req.socket.remotePort!);
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/`;
    for (let i = 0; i < 5; i++) {
      expect(await sendRequest(buildWebhookRequest(config(url), secrets, [{ id: `chg_${i}`, body: {} }], now()), { timeoutMs: 5000, policy: LOCAL })).toMatchObject({ status: 200 });
    }
    expect(ports.size).toBe(1);
    closeOutgoingConnections();
    await new Promise((r) => server.close(r));
  });
});

describe('outgoing network policy (SSRF)', () => {
  const refusedBy = async (url: string, policy: OutgoingPolicy) => {
    const out = await sendRequest(buildWebhookRequest(config(url), secrets, [{ id: 'chg_ssrf', body: {} }], now()), { timeoutMs: 3000, policy });
    expect(out.kind).toBe('network_error');
    if (out.kind === 'network_error') {
      expect(out.refused).toBe(true);
      expect(classifyOutcome(out)).toBe('failure');
      return out.error;
    }
    return '';
  };

  test.each([
    ['http://169.254.169.254/latest/meta-data/', /link-local or cloud metadata.*TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL=1/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[::ffff:169.254.169.254]/', /link-local/],
    ['http://0xa9fea9fe/', /link-local/], // 169.254.169.254 in hex, as a URL parser normalises it
    ['http://metadata.google.internal/computeMetadata/v1/', /metadata\.google\.internal is a link-local or cloud metadata/],
    ['http://[fd00:ec2::254]/', /link-local/],
    ['http://127.0.0.1:9/', /private or loopback.*TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE=1/],
    ['http://[::1]:9/', /private or loopback/],
    ['http://[::ffff:127.0.0.1]:9/', /private or loopback/],
    ['http://10.1.2.3/', /private/],
    ['http://0.0.0.0:9/', /private/],
  ])('%s is refused by default, without connecting', async (url, why) => {
    expect(checkOutgoingUrl(url, DEFAULT)).toMatch(why);
    expect(await refusedBy(url, DEFAULT)).toMatch(why);
  });

  test('link-local stays refused when only private ranges are allowed, and is allowed by its own setting', () => {
    const privateOnly = outgoingPolicyFromEnv({ TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1' });
    expect(privateOnly).toEqual({ allowPrivate: true, allowLinkLocal: false });
    expect(checkOutgoingUrl('http://10.1.2.3/', privateOnly)).toBeNull();
    expect(checkOutgoingUrl('http://169.254.169.254/', privateOnly)).toMatch(/link-local/);
    expect(checkOutgoingUrl('http://[::ffff:a9fe:a9fe]/', privateOnly)).toMatch(/link-local/);
    const linkLocal = outgoingPolicyFromEnv({ TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL: '1' });
    expect(checkOutgoingUrl('http://169.254.169.254/', linkLocal)).toBeNull();
    expect(checkOutgoingUrl('http://[fe80::1]/', linkLocal)).toBeNull();
    expect(checkOutgoingUrl('http://127.0.0.1/', linkLocal)).toMatch(/private/);
    expect(loadConfig({}).outgoingNetwork).toEqual({ allowPrivate: false, allowLinkLocal: false });
    expect(loadConfig({ TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL: 'true' }).outgoingNetwork).toEqual({ allowPrivate: false, allowLinkLocal: true });
    expect(() => outgoingPolicyFromEnv({ TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: 'maybe' })).toThrow(/TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE must be 1 or 0/);
  });

  test('public addresses and names pass; other schemes do not', () => {
    for (const url of ['https://hooks.slack.com/services/T/B/X', 'http://93.184.215.14/', 'http://[2606:4700::1111]/', 'http://172.32.0.1/', 'http://100.128.0.1/']) {
      expect(checkOutgoingUrl(url, DEFAULT)).toBeNull();
    }
    expect(checkOutgoingUrl('ftp://example.com/', DEFAULT)).toMatch(/http or https/);
    expect(checkOutgoingUrl('not a url', DEFAULT)).toMatch(/not a valid URL/);
    expect(addressRefusal('224.0.0.1', { allowPrivate: true, allowLinkLocal: true })).toMatch(/multicast/);
    expect(addressRefusal('64:ff9b::a9fe:a9fe', DEFAULT)).toMatch(/link-local/);
    expect(addressRefusal('172.31.255.255', DEFAULT)).toMatch(/private/);
  });

  test('a host name that resolves to 127.0.0.1 is refused at connect time by default, and allowed with the setting', async () => {
    const url = `http://localhost:${endpoint.port}/by-name`;
    // As written the URL names no refused address: what refuses it is the address its name resolves to.
    expect(checkOutgoingUrl(url, DEFAULT)).toBeNull();
    expect(await refusedBy(url, DEFAULT)).toMatch(/localhost resolves to (127\.0\.0\.1|::1) is a private or loopback address/);
    expect(endpoint.requests).toHaveLength(0);
    const out = await sendRequest(buildWebhookRequest(config(url), secrets, [{ id: 'chg_ok', body: {} }], now()), {
      timeoutMs: 5000,
      policy: outgoingPolicyFromEnv({ TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1' }),
    });
    expect(out).toMatchObject({ kind: 'response', status: 200 });
    expect(endpoint.requests.map((r) => r.path)).toEqual(['/by-name']);
  });
});

describe('retries', () => {
  const response = (status: number, headers: Record<string, string> = {}): HttpOutcome => ({ kind: 'response', status, headers, body: '', truncated: false, durationMs: 1 });

  test('outcomes are classified as seed 002 says', () => {
    expect(MAX_ATTEMPTS).toBe(3);
    expect([200, 201, 204, 299].map((s) => classifyOutcome(response(s)))).toEqual(['success', 'success', 'success', 'success']);
    expect([408, 429, 500, 502, 503, 599].map((s) => classifyOutcome(response(s)))).toEqual(Array(6).fill('retry'));
    expect([400, 401, 404, 409, 422].map((s) => classifyOutcome(response(s)))).toEqual(Array(5).fill('rejected'));
    expect([301, 302, 307, 308, 101].map((s) => classifyOutcome(response(s)))).toEqual(Array(5).fill('failure'));
    expect(classifyOutcome({ kind: 'network_error', error: 'ECONNRESET', durationMs: 1 })).toBe('retry');
  });

  test('backoff grows exponentially with full jitter and is capped', () => {
    const top = (attempt: number) => retryDelayMs(attempt, response(503), () => 0.999999);
    expect([1, 2, 3, 4].map(top)).toEqual([999, 1999, 3999, 7999]);
    expect(top(20)).toBe(RETRY_CAP_MS - 1);
    expect(retryDelayMs(2, response(503), () => 0)).toBe(0);
    expect(retryDelayMs(2, { kind: 'network_error', error: 'x', durationMs: 1 }, () => 0.5)).toBe(1000);
  });

  test('Retry-After is honoured as seconds or as an HTTP date, capped', () => {
    const nowMs = Date.parse('2026-12-02T06:00:00Z');
    expect(retryDelayMs(1, response(429, { 'retry-after': '7' }), () => 0, nowMs)).toBe(7000);
    expect(retryDelayMs(1, response(503, { 'retry-after': 'Wed, 02 Dec 2026 06:00:30 GMT' }), () => 0, nowMs)).toBe(30_000);
    expect(retryDelayMs(1, response(503, { 'retry-after': 'Wed, 02 Dec 2026 05:59:00 GMT' }), () => 0.5, nowMs)).toBe(0);
    expect(retryDelayMs(1, response(429, { 'retry-after': '86400' }), () => 0, nowMs)).toBe(RETRY_AFTER_CAP_MS);
    // Unreadable: the backoff.
    expect(retryDelayMs(1, response(429, { 'retry-after': 'soon' }), () => 0.5, nowMs)).toBe(500);
    expect(retryDelayMs(1, response(429, { 'retry-after': '-3' }), () => 0.5, nowMs)).toBe(500);
  });

  test('a real 429 with Retry-After reaches the delay through sendRequest', async () => {
    endpoint.respond = (_req, res) => {
      res.writeHead(429, { 'retry-after': '2' });
      res.end('slow down');
    };
    const out = await sendRequest(buildWebhookRequest(config(endpoint.url), secrets, [{ id: 'chg_429', body: {} }], now()), { timeoutMs: 5000, policy: LOCAL });
    expect(classifyOutcome(out)).toBe('retry');
    expect(retryDelayMs(1, out, () => 0)).toBe(2000);
  });
});
