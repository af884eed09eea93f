import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { filesDirectHosts } from '../api/linked-tables';
import { openCatalog, sealConfig } from '../catalog';
import { insertSource } from '../catalog/sources';
import { filesConfigSchema, type FilesConfig } from '../connectors/files/config';
import { probeTables } from '../connectors/files/probe';
import { spec as filesSpec } from '../connectors/files/spec';
import { collectionDdl, directHost, linkedEngine, linkedTableDdl, namedCollectionName } from '../connectors/files/sql';
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
 * reaches versitygw through that name went through the proxy. The engine connects to an IPv4-literal endpoint
 * itself (its `<no_proxy>`, sql.ts directHost): versitygw's own 127.0.0.1 is one.
 */
const ACCESS = 'AKIAEGRESSTEST';
const SECRET = 'egress-secret-5e1d';
const POLICY: OutgoingPolicy = { allowPrivate: true, allowLinkLocal: false };
jest.setTimeout(120_000);

let s3: Versitygw;
let wh: Warehouse;
let dataDir: string;
/** The proxy's log: a line for each request and tunnel the engine sends through it. */
const logLines: string[] = [];
const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }));
const proxiedTo = () => logLines.filter((l) => / through the egress proxy/.test(l)).map((l) => (JSON.parse(l) as { target: string }).target);
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
  wh = await openWarehouse({
    user: 'default',
    password: '',
    database: 'default',
    dataDir,
    log,
    egressPolicy: POLICY,
    egressResolver: resolver,
    egressDirect: async () => [directHost(s3Config(s3.endpoint), POLICY)!],
  });
});

const s3Config = (endpoint: string) =>
  filesConfigSchema.parse({ provider: 's3_compatible', endpoint, bucket: 'lake', access_key_id: ACCESS, secret_access_key: SECRET, tables: [{ name: 'o', path: 'orders/*.csv', format: 'csv_with_header' }] }) as FilesConfig;

afterAll(async () => {
  await wh?.close();
  await s3?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

const port = () => new URL(s3.endpoint).port;
const read = (host: string, at = port()) =>
  wh.queryRows<{ id: string; amount: string }>(
    `SELECT toString(id) AS id, toString(amount) AS amount FROM s3(${sqlString(`http://${host}:${at}/lake/orders/*.csv`)}, ${sqlString(ACCESS)}, ${sqlString(SECRET)}, 'CSVWithNames') ORDER BY id`,
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
  const config = s3Config;
  const err = await probeTables(wh, config(`http://files.rebind.test:${port()}`)).then(() => undefined, (e: SourceError) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect(err?.field).toBe('endpoint');
  expect(err?.message).toMatch(/^cannot connect to http:\/\/files\.rebind\.test:\d+: files\.rebind\.test resolves to 169\.254\.169\.254 is a link-local or cloud metadata address; set TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1 to allow it$/);
  expect(err?.message).not.toContain(SECRET);
  // Nothing listens on port 1 (an IPv4 literal: the engine's own connection), "Connection refused".
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

test('a linked table over an IPv4-literal endpoint is read without the proxy; over a host name, through it', async () => {
  const linked = async (endpoint: string, view: string) => {
    const config = s3Config(endpoint);
    const collection = namedCollectionName(`00000000-0000-0000-0000-${view.padStart(12, '0')}`);
    const columns = [{ name: 'id', type: 'Int64' }, { name: 'amount', type: 'Float64' }];
    for (const stmt of [...collectionDdl(collection, { access_key_id: ACCESS, secret_access_key: SECRET }), ...linkedTableDdl('default', view, `schema-${view}`, columns, linkedEngine(config, config.tables[0], { collection }))]) await wh.command(stmt);
    logLines.length = 0;
    asked.length = 0;
    const rows = await wh.queryRows<{ n: number; total: number }>(`SELECT toUInt32(count()) AS n, sum(amount) AS total FROM ${view}`);
    expect(rows).toEqual([{ n: 2, total: 6.5 }]);
    return proxiedTo();
  };
  expect(await linked(s3.endpoint, 'byip')).toEqual([]);
  answers.set('files.rebind.test', '127.0.0.1');
  const byName = await linked(`http://files.rebind.test:${port()}`, 'byname');
  expect(byName.length).toBeGreaterThan(0);
  expect(new Set(byName)).toEqual(new Set([`files.rebind.test:${port()}`]));
  expect(asked).toContain('files.rebind.test');
});

test("a direct IP's entry lets no name through: evil.<ip> is no endpoint, and a redirect the store sends is not followed", async () => {
  // ClickHouse matches a no_proxy entry with its subdomains: evil.127.0.0.1 would go direct too, resolved by the engine.
  const parsed = filesConfigSchema.safeParse({ ...s3Config(s3.endpoint), endpoint: `http://evil.127.0.0.1:${port()}` });
  expect(parsed.error?.issues.map((i) => i.path.join('.'))).toEqual(['endpoint']);

  // A store at the direct address that redirects: to evil.127.0.0.1 (which the engine would resolve itself, past the
  // proxy), and to a name (which would rebind). The engine follows neither.
  answers.set('evil.127.0.0.1', '127.0.0.1');
  answers.set('files.rebind.test', '127.0.0.1');
  let to = '';
  const redirected: string[] = [];
  const store = http.createServer((req, res) => {
    redirected.push(req.url ?? '');
    res.writeHead(307, { location: `http://${to}:${port()}${req.url}` }).end();
  });
  await new Promise<void>((r) => store.listen(0, '127.0.0.1', () => r()));
  try {
    const storePort = (store.address() as net.AddressInfo).port;
    for (const host of ['evil.127.0.0.1', 'files.rebind.test']) {
      to = host;
      logLines.length = 0;
      redirected.length = 0;
      const err = await read('127.0.0.1', String(storePort)).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/Too many redirects while trying to access http:\/\/127\.0\.0\.1:\d+\/lake/);
      expect(redirected.length).toBeGreaterThan(0);
      expect(proxiedTo()).toEqual([]);
    }
    // At link time the probe says so, on the endpoint.
    const probe = await probeTables(wh, s3Config(`http://127.0.0.1:${storePort}`)).then(() => undefined, (e: SourceError) => e);
    expect(probe).toBeInstanceOf(SourceError);
    expect(probe?.field).toBe('endpoint');
    expect(probe?.message).toMatch(/^http:\/\/127\.0\.0\.1:\d+ answered with a redirect, which is not followed: set endpoint to where it redirects$/);
  } finally {
    await new Promise((r) => store.close(r));
  }
});

test("the catalog's files sources connected to directly: provider presets' storage hosts and allowed IPv4 literals, never a name", async () => {
  const catalogDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-egress-catalog-'));
  const catalog = await openCatalog({ dataDir: catalogDir, secretKey: 'b'.repeat(64) });
  try {
    const keys = { access_key_id: ACCESS, secret_access_key: SECRET };
    const tables = [{ name: 'o', path: 'orders/*.csv', format: 'csv_with_header' }];
    const sources: Record<string, unknown>[] = [
      { provider: 'aws', region: 'eu-west-3', bucket: 'lake', ...keys, tables },
      { provider: 'gcs', bucket: 'lake', ...keys, tables },
      { provider: 'r2', account_id: '0123456789abcdef0123456789abcdef', bucket: 'lake', ...keys, tables },
      { provider: 's3_compatible', endpoint: 'http://10.1.2.3:9000', bucket: 'lake', ...keys, tables },
      { provider: 's3_compatible', endpoint: 'https://203.0.113.7', bucket: 'lake', ...keys, tables },
      { provider: 's3_compatible', endpoint: 'http://169.254.169.254', bucket: 'lake', ...keys, tables },
      { provider: 's3_compatible', endpoint: 'https://minio.example.com:9000', bucket: 'lake', ...keys, tables },
      { provider: 's3_compatible', endpoint: 'http://[::1]:9000', bucket: 'lake', ...keys, tables },
      { provider: 'local', tables },
    ];
    let n = 0;
    for (const config of sources) await insertSource(catalog.db, { source_type: 'Files', prefix: `f${n++}`, ...sealConfig(catalog.secrets, filesSpec, config) });
    const presets = ['0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com', 's3.eu-west-3.amazonaws.com', 'storage.googleapis.com'];
    // The policy of the moment: a private literal linked while allowed is proxied (and refused there) once it is not.
    expect(await filesDirectHosts(catalog, { allowPrivate: true, allowLinkLocal: false })).toEqual([...presets, '10.1.2.3', '203.0.113.7'].sort());
    expect(await filesDirectHosts(catalog, { allowPrivate: false, allowLinkLocal: false })).toEqual([...presets, '203.0.113.7'].sort());
  } finally {
    await catalog.db.close();
    fs.rmSync(catalogDir, { recursive: true, force: true });
  }
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
