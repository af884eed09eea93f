import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { filesConfigSchema, type FilesConfig } from '../connectors/files/config';
import { probeTables } from '../connectors/files/probe';
import { SourceError } from '../connectors/types';
import type { AddressResolver, OutgoingPolicy } from '../destinations/outgoing-network';
import { openWarehouse, sqlString, type Warehouse } from '../warehouse/client';
import { startEgressProxy, type EgressProxy } from '../warehouse/egress-proxy';
import { testEnv } from './support/env';
import { putObject } from './support/s3-objects';
import { startVersitygw, type Versitygw } from './support/versitygw';

/**
 * DNS rebinding of a custom S3 endpoint: the engine's S3 requests go through the platform's egress proxy, which
 * resolves each connection's name itself and connects to the address it checked. A test resolver stands in for a
 * DNS server that rebinds: `files.rebind.test` first answers 127.0.0.1 (a versitygw there, allowed as private),
 * then 169.254.169.254 (cloud metadata, refused). The engine cannot resolve `.test` names at all: a query that
 * reaches versitygw through that name went through the proxy.
 */
const ACCESS = 'AKIAEGRESSTEST';
const SECRET = 'egress-secret-5e1d';
const POLICY: OutgoingPolicy = { allowPrivate: true, allowLinkLocal: false };
jest.setTimeout(120_000);

let s3: Versitygw;
let wh: Warehouse;
let dataDir: string;
/** What the test resolver answers for each name (names not here do not resolve), and the names it was asked. */
const answers = new Map<string, string>();
const asked: string[] = [];
const resolver: AddressResolver = (hostname, _options, callback) => {
  asked.push(hostname);
  const address = answers.get(hostname);
  if (!address) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
  callback(null, [{ address, family: net.isIPv6(address) ? 6 : 4 }]);
};

beforeAll(async () => {
  s3 = await startVersitygw(testEnv().versitygwPath, { access: ACCESS, secret: SECRET, buckets: ['lake'] });
  await putObject({ endpoint: s3.endpoint, access: ACCESS, secret: SECRET }, 'lake', 'orders/a.csv', 'id,amount\n1,2.5\n2,4\n');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-egress-'));
  wh = await openWarehouse({ user: 'default', password: '', database: 'default', dataDir, egressPolicy: POLICY, egressResolver: resolver });
});

afterAll(async () => {
  await wh?.close();
  await s3?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const port = () => new URL(s3.endpoint).port;
const read = (host: string) =>
  wh.queryRows<{ id: string; amount: string }>(
    `SELECT toString(id) AS id, toString(amount) AS amount FROM s3(${sqlString(`http://${host}:${port()}/lake/orders/*.csv`)}, ${sqlString(ACCESS)}, ${sqlString(SECRET)}, 'CSVWithNames') ORDER BY id`,
  );

test("the engine's S3 requests go through the proxy, and a name that rebinds to the metadata address is refused when the engine connects", async () => {
  answers.set('files.rebind.test', '127.0.0.1');
  expect(await read('files.rebind.test')).toEqual([{ id: '1', amount: '2.5' }, { id: '2', amount: '4' }]);
  expect(asked).toContain('files.rebind.test');

  // The name now rebinds (as a DNS server under an attacker's control answers, after the link-time check).
  answers.set('files.rebind.test', '169.254.169.254');
  // A connection made before stays with the address it was checked for (a rebinding cannot move it): the next one
  // meets the new answer. None is kept here (chDB opens one per proxied request), but say so rather than rely on it.
  await wh.command('SYSTEM DROP CONNECTIONS CACHE');
  asked.length = 0;
  const err = await read('files.rebind.test').then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/Tributary refused the connection: files\.rebind\.test resolves to 169\.254\.169\.254 is a link-local or cloud metadata address/);
  expect(asked).toContain('files.rebind.test');
});

test("the connector's probe says the endpoint was refused (not the key), with the files sources' switch; an unreachable one stays unreachable", async () => {
  answers.set('files.rebind.test', '169.254.169.254');
  const config = (endpoint: string) =>
    filesConfigSchema.parse({ provider: 's3_compatible', endpoint, bucket: 'lake', access_key_id: ACCESS, secret_access_key: SECRET, tables: [{ name: 'o', path: 'orders/*.csv', format: 'csv_with_header' }] }) as FilesConfig;
  const err = await probeTables(wh, config(`http://files.rebind.test:${port()}`)).then(() => undefined, (e: SourceError) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect(err?.field).toBe('endpoint');
  expect(err?.message).toMatch(/^cannot connect to http:\/\/files\.rebind\.test:\d+: files\.rebind\.test resolves to 169\.254\.169\.254 is a link-local or cloud metadata address; set TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1 to allow it$/);
  expect(err?.message).not.toContain(SECRET);
  // Nothing listens on port 1: the proxy's 502 reads as the engine's own "Connection refused".
  const down = await probeTables(wh, config('http://127.0.0.1:1')).then(() => undefined, (e: SourceError) => e);
  expect(down?.message).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:1: .*Connection refused/);
  expect(down?.field).toBe('endpoint');
});

test('a literal metadata address is refused too (never looked up, judged as written)', async () => {
  // A listing (a GET: the refusal's message reaches the engine's error; a single key's HEAD shows only the 403).
  const err = await wh.queryRows(`SELECT * FROM s3('http://169.254.169.254/lake/*.csv', 'a', 'b', 'CSVWithNames')`).then(() => undefined, (e: Error) => e);
  expect(err?.message).toMatch(/Tributary refused the connection: 169\.254\.169\.254 is a link-local/);
  const one = await wh.queryRows(`SELECT * FROM s3('http://169.254.169.254/lake/x.csv', 'a', 'b', 'CSVWithNames')`).then(() => undefined, (e: Error) => e);
  expect(one?.message).toMatch(/HTTP response code: 403/);
});

describe('the proxy itself', () => {
  let proxy: EgressProxy;
  let upstream: http.Server;
  let upstreamPort: number;
  const hits: string[] = [];
  beforeAll(async () => {
    proxy = await startEgressProxy({ allowPrivate: false, allowLinkLocal: false }, { resolve: resolver });
    upstream = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url} ${req.headers.host}`);
      res.end('ok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await proxy?.close();
    await new Promise((r) => upstream?.close(r));
  });

  /** One request through the proxy, as the engine sends it (absolute URL), on a connection of its own. */
  const viaProxy = (url: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const p = new URL(proxy.uri);
      const req = http.request({ host: p.hostname, port: p.port, path: url, headers: { host: new URL(url).host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });

  /** A CONNECT through the proxy: its status line and what followed. */
  const connect = (target: string) =>
    new Promise<string>((resolve, reject) => {
      const p = new URL(proxy.uri);
      const sock = net.connect(Number(p.port), p.hostname, () => sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
      let got = '';
      sock.on('data', (d) => {
        got += d;
        if (/^HTTP\/1\.1 200/.test(got) && got.includes('\r\n\r\n')) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });

  test('private and loopback refused without the switch: by name at connect time, and as a literal', async () => {
    answers.set('internal.rebind.test', '10.1.2.3');
    const byName = await viaProxy('http://internal.rebind.test/latest/meta-data/');
    expect(byName.status).toBe(403);
    expect(byName.body).toMatch(/<Code>AccessDenied<\/Code><Message>Tributary refused the connection: internal\.rebind\.test resolves to 10\.1\.2\.3 is a private or loopback address/);
    const literal = await viaProxy(`http://127.0.0.1:${upstreamPort}/x`);
    expect(literal.status).toBe(403);
    expect(await connect('169.254.169.254:443')).toMatch(/^HTTP\/1\.1 403 Forbidden[\s\S]*169\.254\.169\.254 is a link-local/);
    answers.set('meta.rebind.test', '169.254.169.254');
    expect(await connect('meta.rebind.test:443')).toMatch(/^HTTP\/1\.1 403 Forbidden[\s\S]*meta\.rebind\.test resolves to 169\.254\.169\.254/);
    expect(await connect('metadata.google.internal:80')).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(hits).toEqual([]);
  });

  test('an allowed address is connected to: the request goes to the address the check returned, with its Host as sent', async () => {
    const open = await startEgressProxy({ allowPrivate: true, allowLinkLocal: false }, { resolve: resolver });
    try {
      answers.set('store.rebind.test', '127.0.0.1');
      const p = new URL(open.uri);
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: p.hostname, port: p.port, path: `http://store.rebind.test:${upstreamPort}/bucket/key?list-type=2`, headers: { host: `store.rebind.test:${upstreamPort}` }, agent: false }, (r) => {
          let body = '';
          r.on('data', (d) => (body += d));
          r.on('end', () => resolve({ status: r.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(res).toEqual({ status: 200, body: 'ok' });
      expect(hits).toEqual([`GET /bucket/key?list-type=2 store.rebind.test:${upstreamPort}`]);
    } finally {
      await open.close();
    }
  });
});
