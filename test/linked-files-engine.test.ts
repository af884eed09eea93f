import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { filesConfigSchema, type FilesConfig } from '../connectors/files/config';
import { checkEndpoint } from '../connectors/files/endpoint';
import { FILES_ROOT_ENV } from '../connectors/files/local';
import { probeTables } from '../connectors/files/probe';
import { collectionDdl, linkedEngine, linkedTableDdl, namedCollectionName } from '../connectors/files/sql';
import { SourceError } from '../connectors/types';
import { maskStatement } from '../warehouse/engine';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { testEnv } from './support/env';
import { eventually } from './support/cdc';
import { startVersitygw, type Versitygw } from './support/versitygw';

/** The Files connector against the real engine and a real S3 server, without the platform. */
const ACCESS = 'AKIAENGINETEST';
const CANARY = 'canary-Engine-Secret-42b7e1';
jest.setTimeout(120_000);

let s3: Versitygw;
let wh: Warehouse;
let dataDir: string;
let root: string;
let startup: string[] = [];

const s3Config = (tables: FilesConfig['tables'], extra: Partial<FilesConfig> = {}): FilesConfig =>
  filesConfigSchema.parse({ provider: 's3_compatible', endpoint: s3.endpoint, bucket: 'lake', access_key_id: ACCESS, secret_access_key: CANARY, tables, ...extra }) as FilesConfig;
const localConfig = (tables: FilesConfig['tables']): FilesConfig => filesConfigSchema.parse({ provider: 'local', tables }) as FilesConfig;
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (err: Error) => err);

beforeAll(async () => {
  s3 = await startVersitygw(testEnv().versitygwPath, { access: ACCESS, secret: CANARY, buckets: ['lake'] });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-linked-engine-'));
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-files-root-'));
  process.env[FILES_ROOT_ENV] = root;
  wh = await openWarehouse({ user: 'default', password: '', database: 'default', dataDir, startupStatements: async () => startup });
});

afterAll(async () => {
  delete process.env[FILES_ROOT_ENV];
  await wh?.close();
  await s3?.stop();
});

test('config: each provider says what it needs and what does not apply', () => {
  const base = { tables: [{ name: 't', path: 'a/*.csv', format: 'csv' }] };
  const issues = (c: object) => (filesConfigSchema.safeParse(c).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
  expect(issues({ ...base, provider: 'aws', bucket: 'lake', access_key_id: 'a', secret_access_key: 'b' })).toEqual([expect.stringMatching(/^region: region is required/)]);
  expect(issues({ ...base, provider: 'local', bucket: 'lake' })).toEqual([expect.stringMatching(/^bucket: bucket does not apply to a local folder/)]);
  expect(issues({ ...base, provider: 'r2', account_id: 'x', bucket: 'lake', access_key_id: 'a', secret_access_key: 'b' })).toEqual([expect.stringMatching(/^account_id: /)]);
  expect(issues({ provider: 'local', tables: [{ name: 't', path: 'a', format: 'parquet', delimiter: ';' }] })).toEqual([expect.stringMatching(/delimiter applies to CSV only/)]);
  expect(issues({ provider: 'local', tables: [{ name: 't', path: 'a', format: 'csv', extra: 1 }] })).toEqual([expect.stringMatching(/extra/)]);
});

test('secrets in named collection statements are masked wherever statements are shown', () => {
  for (const stmt of collectionDdl('nc', { access_key_id: 'AK', secret_access_key: CANARY })) expect(maskStatement(stmt)).not.toContain(CANARY);
  expect(maskStatement('SELECT 1')).toBe('SELECT 1');
});

test('parquet and gzip CSV over S3: inferred, linked, read on every query; linked tables come back after an engine restart', async () => {
  // Files written by the engine itself, straight into the bucket's folder.
  fs.mkdirSync(path.join(s3.dir, 'lake/pq/region=eu'), { recursive: true });
  await wh.command(`INSERT INTO FUNCTION file('${s3.dir}/lake/pq/region=eu/p1.parquet', 'Parquet', 'id Int64, amount Float64') SELECT number, number * 1.5 FROM numbers(10)`);
  await wh.command(`INSERT INTO FUNCTION file('${s3.dir}/lake/csvgz/g1.csv.gz', 'CSVWithNames', 'id Int64, s String') SELECT number, toString(number) FROM numbers(5)`);
  const config = s3Config([
    { name: 'pq', path: 'pq/**/*.parquet', format: 'parquet', compression: 'auto' },
    { name: 'gz', path: 'csvgz/*.csv.gz', format: 'csv_with_header', compression: 'auto' },
  ]);
  const [pq, gz] = await probeTables(wh, config);
  // Parquet's own types; the hive folder region=eu is a column.
  expect(pq.columns).toEqual([
    { name: 'id', type: 'Int64' },
    { name: 'amount', type: 'Float64' },
    { name: 'region', type: expect.stringContaining('String') },
  ]);
  expect(gz.files.count).toBe(1);

  const collection = namedCollectionName('11111111-2222-3333-4444-555555555555');
  startup = [
    ...collectionDdl(collection, { access_key_id: ACCESS, secret_access_key: CANARY }),
    ...linkedTableDdl('default', 'lake_pq', 'schema-pq', pq.columns, linkedEngine(config, config.tables[0], { collection })),
  ];
  for (const stmt of startup) await wh.command(stmt);
  const count = async () => Number((await wh.queryReadOnly('SELECT count() AS n, any(region) AS r FROM lake_pq')).data[0].n);
  expect(await count()).toBe(10);
  await wh.command(`INSERT INTO FUNCTION file('${s3.dir}/lake/pq/region=eu/p2.parquet', 'Parquet', 'id Int64, amount Float64') SELECT number, 0 FROM numbers(3)`);
  expect(await count()).toBe(13);

  // A crash of the engine: the Memory database and the collections are gone; the startup statements bring them back.
  process.kill(wh.enginePid!, 'SIGKILL');
  await eventually(async () => expect(await count()).toBe(13));

  const grep = spawnSync('grep', ['-rl', '--binary-files=text', CANARY, dataDir], { encoding: 'utf8' }).stdout;
  expect(grep).toBe('');
  expect(JSON.stringify(await wh.queryReadOnly('SELECT * FROM system.named_collections'))).not.toContain(CANARY);
  expect(JSON.stringify(await wh.queryReadOnly('SELECT create_table_query FROM system.tables'))).not.toContain(CANARY);
});

test('an unreachable endpoint fails the probe with what to fix instead of hanging', async () => {
  const err = await failure(probeTables(wh, s3Config([{ name: 't', path: '*.csv', format: 'csv', compression: 'auto' }], { endpoint: 'http://127.0.0.1:1' })));
  expect(err).toBeInstanceOf(SourceError);
  expect(err.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
});

test('a custom endpoint follows the SSRF rules: loopback only when allowed, cloud metadata never by default', async () => {
  await expect(checkEndpoint('http://127.0.0.1:9000', { allowPrivate: false, allowLinkLocal: false })).rejects.toThrow(/TRIBUTARY_FILES_ALLOW_PRIVATE=1/);
  await expect(checkEndpoint('http://localhost:9000', { allowPrivate: false, allowLinkLocal: false })).rejects.toThrow(/resolves to .*TRIBUTARY_FILES_ALLOW_PRIVATE/);
  await expect(checkEndpoint('http://169.254.169.254', { allowPrivate: true, allowLinkLocal: false })).rejects.toThrow(/TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1/);
  await expect(checkEndpoint('file:///etc', { allowPrivate: true, allowLinkLocal: true })).rejects.toThrow(/http or https/);
  await expect(checkEndpoint('http://127.0.0.1:9000', { allowPrivate: true, allowLinkLocal: false })).resolves.toBeUndefined();
});

test('a local folder is confined to the files root: absolute paths, .., and symlinks out are refused', async () => {
  fs.mkdirSync(path.join(root, 'in'), { recursive: true });
  fs.writeFileSync(path.join(root, 'in/a.csv'), 'x,y\n1,2\n');
  const [ok] = await probeTables(wh, localConfig([{ name: 't', path: 'in/*.csv', format: 'csv_with_header', compression: 'auto' }]));
  expect(ok.columns.map((c) => c.name)).toEqual(['x', 'y']);

  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-outside-'));
  fs.writeFileSync(path.join(outside, 'secret.csv'), 'p\nleaked\n');
  fs.symlinkSync(path.join(outside, 'secret.csv'), path.join(root, 'in/link.csv'));
  const cases: [string, RegExp][] = [
    ['in/*.csv', /link\.csv" resolves to a place outside the files root/],
    [path.join(outside, '*.csv'), /must be relative to the files root/],
    ['in/../../*.csv', /must not contain "\.\."/],
    ['in/{..,x}/*.csv', /must not contain "\.\."/],
  ];
  for (const [p, message] of cases) {
    const err = await failure(probeTables(wh, localConfig([{ name: 't', path: p, format: 'csv_with_header', compression: 'auto' }])));
    expect([p, err.message]).toEqual([p, expect.stringMatching(message)]);
  }
  // Numeric ranges are globs, not a way out.
  fs.rmSync(path.join(root, 'in/link.csv'));
  fs.writeFileSync(path.join(root, 'in/f1.csv'), 'x,y\n3,4\n');
  const [range] = await probeTables(wh, localConfig([{ name: 't', path: 'in/f{1..3}.csv', format: 'csv_with_header', compression: 'auto' }]));
  expect(range.files.count).toBe(1);

  delete process.env[FILES_ROOT_ENV];
  const off = await failure(probeTables(wh, localConfig([{ name: 't', path: 'in/*.csv', format: 'csv', compression: 'auto' }])));
  expect(off.message).toMatch(/TRIBUTARY_FILES_ROOT/);
  process.env[FILES_ROOT_ENV] = root;
});

test("processes' startup statements may run at once on one server: every interleaving of two leaves the view readable", async () => {
  fs.mkdirSync(path.join(s3.dir, 'lake/race'), { recursive: true });
  await wh.command(`INSERT INTO FUNCTION file('${s3.dir}/lake/race/r.parquet', 'Parquet', 'id Int64') SELECT number FROM numbers(4)`);
  const config = s3Config([{ name: 'race', path: 'race/*.parquet', format: 'parquet', compression: 'auto' }]);
  const collection = namedCollectionName('99999999-2222-3333-4444-555555555555');
  for (const stmt of collectionDdl(collection, { access_key_id: ACCESS, secret_access_key: CANARY })) await wh.command(stmt);
  const ddl = (mode: 'replace' | 'ensure') => linkedTableDdl('default', 'lake_race', 'schema-race', [{ name: 'id', type: 'Int64' }], linkedEngine(config, config.tables[0], { collection }), mode);
  // Every order of two processes' statements that keeps each process's own order.
  const interleavings = (a: number, b: number): ('A' | 'B')[][] =>
    a === 0 ? [Array(b).fill('B')] : b === 0 ? [Array(a).fill('A')] : [...interleavings(a - 1, b).map((r) => ['A' as const, ...r]), ...interleavings(a, b - 1).map((r) => ['B' as const, ...r])];
  const run = async (mode: 'replace' | 'ensure', order: ('A' | 'B')[]) => {
    const next = { A: 0, B: 0 };
    const failed: string[] = [];
    for (const who of order) {
      const stmt = ddl(mode)[next[who]++];
      await wh.command(stmt).catch((err: Error) => failed.push(`${who}: ${err.message.slice(0, 80)}`));
    }
    return failed;
  };
  const n = ddl('ensure').length;
  for (const order of interleavings(n, n)) {
    expect([order.join(''), await run('ensure', order)]).toEqual([order.join(''), []]);
    expect(Number((await wh.queryReadOnly('SELECT count() AS n FROM lake_race')).data[0].n)).toBe(4);
  }
  // What 'ensure' avoids: with the link-time statements, one process's DROP between the other's CREATE and VIEW fails it.
  expect(ddl('replace').map((s) => s.split(' ')[0])).toEqual(['CREATE', 'DROP', 'CREATE', 'CREATE']); // database, drop, table, view
  expect(await run('replace', [...'AAABBABB'] as ('A' | 'B')[])).toEqual([expect.stringMatching(/^A: Unknown table/)]);
});
