import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { testEnv } from './support/env';
import { makeDataDir, startPlatform, type RunningPlatform } from './support/platform';
import { startVersitygw, type Versitygw } from './support/versitygw';

/** Linked files (connectors/files): real versitygw, the real platform; one platform for the file. */
const ACCESS = 'AKIALINKEDTEST';
const CANARY = 'canary-Secret-7f3a9c1e5b';
jest.setTimeout(240_000);

let s3: Versitygw;
let platform: RunningPlatform;
let dataDir: string;
let filesRoot: string;
const answers: string[] = [];

const put = (key: string, body: string | Buffer) => {
  fs.mkdirSync(path.dirname(path.join(s3.dir, 'lake', key)), { recursive: true });
  fs.writeFileSync(path.join(s3.dir, 'lake', key), body);
};
async function api(method: string, url: string, body?: unknown) {
  const r = await platform.api(method, url, body);
  answers.push(JSON.stringify(r.body));
  return r;
}
const conn = (extra: Record<string, unknown> = {}) => ({
  provider: 's3_compatible',
  endpoint: s3.endpoint,
  bucket: 'lake',
  access_key_id: ACCESS,
  secret_access_key: CANARY,
  ...extra,
});
const query = async (sql: string) => (await api('POST', '/api/query', { sql })).body;

beforeAll(async () => {
  s3 = await startVersitygw(testEnv().versitygwPath, { access: ACCESS, secret: CANARY, buckets: ['lake'] });
  put('events/dt=2024-01-01/a.csv', 'id,name\n1,alpha\n2,beta\n');
  put('events/dt=2024-01-02/b.csv', 'id,name\n3,gamma\n');
  put('gz/part1.csv.gz', zlib.gzipSync('id;amount\n1;2.5\n2;3.5\n'));
  put('jsonl/x.jsonl', '{"k":"a","v":1}\n{"k":"b","v":2}\n');
  put('tsv/t1.tsv', 'a\tb\n1\tx\n');
  put('tsv/t2.tsv', 'a\tb\n2\ty\n');
  put('bad/broken.parquet', 'this is not parquet');
  dataDir = makeDataDir('linked');
  filesRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-files-root-'));
  fs.mkdirSync(path.join(filesRoot, 'logs'));
  fs.writeFileSync(path.join(filesRoot, 'logs/1.jsonl'), '{"level":"info","n":1}\n');
  platform = await startPlatform({ dataDir, env: { TRIBUTARY_FILES_ROOT: filesRoot, TRIBUTARY_FILES_ALLOW_PRIVATE: '1' } });
});

afterAll(async () => {
  await platform?.stop();
  await s3?.stop();
});

test('db-schema lists and infers; create links; queries read the files on every query; errors are specific', async () => {
  const tables = [
    { name: 'events', path: 'events/**/*.csv', format: 'csv_with_header' },
    { name: 'amounts', path: 'gz/*.csv.gz', format: 'csv_with_header', delimiter: ';' },
    { name: 'kv', path: 'jsonl/*.jsonl', format: 'jsonl' },
    { name: 'tabs', path: 'tsv/t{1,2}.tsv', format: 'tsv' },
  ];
  const schema = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ tables }) });
  expect(schema.status).toBe(200);
  const events = schema.body.find((t: any) => t.table === 'events');
  expect(events.files.count).toBe(2);
  expect(events.available_columns.map((c: any) => c.field)).toEqual(['id', 'name', 'dt']);
  expect(schema.body.find((t: any) => t.table === 'tabs').files.count).toBe(2);

  // Sync settings that do not apply are refused before anything is stored.
  const withFrequency = await api('POST', '/api/sources', {
    source_type: 'Files',
    prefix: 'lake',
    payload: { ...conn({ tables }), schemas: tables.map((t) => ({ name: t.name, should_sync: true, sync_type: 'linked', sync_frequency: '1hour' })) },
  });
  expect([withFrequency.status, withFrequency.body.details[0].field]).toEqual([400, 'payload.schemas.0.sync_frequency']);
  const copied = await api('POST', '/api/sources', {
    source_type: 'Files',
    prefix: 'lake',
    payload: { ...conn({ tables }), schemas: tables.map((t) => ({ name: t.name, should_sync: true, sync_type: 'incremental', incremental_field: 'id', incremental_field_type: 'integer' })) },
  });
  expect(copied.status).toBe(400);
  expect(copied.body.message).toMatch(/a Files table is linked/);

  const created = await api('POST', '/api/sources', {
    source_type: 'Files',
    prefix: 'lake',
    payload: { ...conn({ tables }), schemas: tables.map((t) => ({ name: t.name, should_sync: true, sync_type: 'linked' })) },
  });
  expect([created.status, created.status === 201 ? '' : JSON.stringify(created.body) + platform.output().slice(-3000)]).toEqual([201, '']);
  expect(created.body.payload.secret_access_key).toBe('********');
  expect(created.body.schemas.every((s: any) => s.sync_type === 'linked' && s.status === 'Linked')).toBe(true);

  expect((await query('SELECT count() AS n, max(dt) AS d FROM lake_events')).rows).toEqual([{ n: '3', d: '2024-01-02' }]);
  expect((await query('SELECT sum(amount) AS s FROM lake_amounts')).rows[0].s).toBe(6);
  expect((await query('SELECT count() AS n FROM lake_kv')).rows[0].n).toBe('2');
  expect((await query('SELECT count() AS n FROM lake_tabs')).rows[0].n).toBe('2');

  put('events/dt=2024-01-03/c.csv', 'id,name\n4,delta\n');
  expect((await query('SELECT count() AS n FROM lake_events')).rows[0].n).toBe('4');

  // The user's SQL may not reach storage itself.
  const direct = await api('POST', '/api/query', { sql: `SELECT * FROM s3('${s3.endpoint}/lake/events/**/*.csv')` });
  expect(direct.status).toBe(400);
  const show = await query('SHOW CREATE TABLE lake_events');
  expect(JSON.stringify(show)).not.toContain(CANARY);
  const nc = await query('SELECT * FROM system.named_collections');
  expect(JSON.stringify(nc)).not.toContain(CANARY);

  // Frequency and cursor do not apply to linked tables.
  const id = created.body.schemas.find((s: any) => s.name === 'events').id;
  const freq = await api('PATCH', `/api/schemas/${id}`, { sync_frequency: '1hour' });
  expect(freq.status).toBe(400);
  expect(freq.body.message).toMatch(/does not apply to a linked table/);
  const retype = await api('PATCH', `/api/schemas/${id}`, { sync_type: 'full_refresh' });
  expect([retype.status, retype.body.details[0].field]).toEqual([400, 'sync_type']);
  expect((await api('POST', `/api/schemas/${id}/sync`)).status).toBe(409);

  // A type override, then stats.
  const typed = await api('PATCH', `/api/schemas/${id}`, { column_types: { id: 'Int32' } });
  expect(typed.status).toBe(200);
  expect(typed.body.columns.find((c: any) => c.name === 'id').type).toBe('Int32');
  expect((await query("SELECT toTypeName(id) AS t FROM lake_events LIMIT 1")).rows[0].t).toBe('Int32');
  const stats = await api('GET', `/api/schemas/${id}/linked-stats`);
  expect(stats.body).toMatchObject({ files: 3, rows_estimate: 4 });

  const one = [{ name: 'events', path: 'events/**/*.csv', format: 'csv_with_header' }];
  const wrong = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ secret_access_key: 'wrong', tables: one }) });
  expect(wrong.status).toBe(400);
  expect(wrong.body.message).toMatch(/access denied/);
  const nobucket = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ bucket: 'nosuchbucket', tables: one }) });
  expect(nobucket.body.message).toMatch(/no such bucket "nosuchbucket"/);
  const metadata = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ endpoint: 'http://169.254.169.254', tables: one }) });
  expect([metadata.status, metadata.body.details[0].field]).toEqual([400, 'endpoint']);
  expect(metadata.body.message).toMatch(/TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1/);
  const empty = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ tables: [{ name: 'x', path: 'nothing/*.csv', format: 'csv' }] }) });
  expect(empty.body.message).toMatch(/no file matches "nothing\/\*\.csv"/);
  const corrupt = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...conn({ tables: [{ name: 'p', path: 'bad/*.parquet', format: 'parquet' }] }) });
  expect(corrupt.status).toBe(400);
  expect(corrupt.body.message).toMatch(/lake\/bad\/broken\.parquet" does not parse as parquet/);

  // The secret is nowhere but sealed: not in the data dir, not in the log, not in any answer.
  const grep = spawnSync('grep', ['-rl', '--binary-files=text', CANARY, dataDir], { encoding: 'utf8' }).stdout;
  expect(grep).toBe('');
}, 240_000);

test('a local folder: linked, a file added shows on the next query, a symlink out of the root is refused', async () => {
  const created = await api('POST', '/api/sources', {
    source_type: 'Files',
    prefix: 'disk',
    payload: { provider: 'local', tables: [{ name: 'logs', path: 'logs/*.jsonl', format: 'jsonl' }], schemas: [{ name: 'logs', should_sync: true, sync_type: 'linked' }] },
  });
  expect(created.status).toBe(201);
  expect((await query('SELECT count() AS n FROM disk_logs')).rows[0].n).toBe('1');
  fs.writeFileSync(path.join(filesRoot, 'logs/2.jsonl'), '{"level":"warn","n":2}\n');
  expect((await query('SELECT sum(n) AS s FROM disk_logs')).rows[0].s).toBe('3');

  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-outside-'));
  fs.writeFileSync(path.join(outside, 'x.jsonl'), '{"level":"secret","n":100}\n');
  fs.symlinkSync(path.join(outside, 'x.jsonl'), path.join(filesRoot, 'logs/3.jsonl'));
  const refused = await api('POST', '/api/query', { sql: 'SELECT sum(n) AS s FROM disk_logs' });
  expect(refused.status).toBe(400);
  expect(refused.body.message).toMatch(/3\.jsonl" resolves to a place outside the files root/);
  fs.rmSync(path.join(filesRoot, 'logs/3.jsonl'));

  const up = await api('POST', '/api/sources/db-schema', { source_type: 'Files', provider: 'local', tables: [{ name: 'x', path: '../*.jsonl', format: 'jsonl' }] });
  expect(up.status).toBe(400);
  expect(up.body.message).toMatch(/must not contain "\.\."/);
});

test('linked tables are back after a restart; refresh-schema re-infers; deleting the source removes its tables', async () => {
  await platform.stop();
  platform = await startPlatform({ dataDir, token: platform.token, env: { TRIBUTARY_FILES_ROOT: filesRoot, TRIBUTARY_FILES_ALLOW_PRIVATE: '1' } });
  expect((await query('SELECT count() AS n FROM lake_events')).rows[0].n).toBe('4');
  expect((await query('SELECT sum(n) AS s FROM disk_logs')).rows[0].s).toBe('3');

  const sources = (await api('GET', '/api/sources')).body.results;
  const lake = sources.find((s: any) => s.prefix === 'lake');
  const events = (await api('GET', `/api/sources/${lake.id}/schemas`)).body.results.find((s: any) => s.name === 'events');
  put('events/dt=2024-01-04/d.csv', 'id,name,extra\n5,eps,yes\n');
  const refreshed = await api('POST', `/api/schemas/${events.id}/refresh-schema`);
  expect(refreshed.status).toBe(200);
  expect(refreshed.body.columns.map((c: any) => c.name)).toContain('id');
  // The override made before is kept.
  expect(refreshed.body.columns.find((c: any) => c.name === 'id').type).toBe('Int32');

  const del = await api('DELETE', `/api/sources/${lake.id}`);
  expect(del.status).toBe(200);
  const gone = await api('POST', '/api/query', { sql: 'SELECT count() FROM lake_events' });
  expect(gone.status).toBe(400);
});

afterAll(() => {
  expect(platform.output()).not.toContain(CANARY);
  expect(answers.join('\n')).not.toContain(CANARY);
});
