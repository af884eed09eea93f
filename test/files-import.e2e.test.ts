import fs from 'node:fs';
import { createLogger } from '../platform/logger';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { tableChanges, tableChangesWhen, type Change } from './support/change-log';
import { testEnv } from './support/env';
import { freePort } from './support/ports';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { deleteObject, putObject, type S3Target } from './support/s3-objects';
import { ensureVersitygw, startVersitygw, type Versitygw } from './support/versitygw';

/**
 * Imported files tables (issue 15): a Files source's tables copied into MergeTrees by the engine, on a real
 * S3 server (versitygw), through the real platform. Objects are uploaded through the S3 API (so they carry ETags,
 * as a user's uploads do). One Temporal dev server apart from the platform (so a SIGKILL kills only the worker),
 * one platform for every case: the first case kills it mid-import and the rest run on its successor.
 */
const ACCESS = 'import-access';
const SECRET = 'import-secret-canary-7f3a';
const BUCKET = 'imports';
const HOLD = 'files slice inserted';

/** How many changes of each operation. */
const ops = (changes: Change[]) => changes.reduce<Record<string, number>>((m, c) => ({ ...m, [c.op]: (m[c.op] ?? 0) + 1 }), {});

/** `n` rows of a CSV file whose ids start at `from`, each tagged with `tag`. */
const csv = (from: number, n: number, tag: string) =>
  'id,tag,amount\n' + Array.from({ length: n }, (_, i) => `${from + i},${tag},${(from + i) % 7}.5`).join('\n') + '\n';

describe('imported files tables: full refresh, by new files, SIGKILL mid-import', () => {
  let gw: Versitygw;
  let s3: S3Target;
  let temporal: DevServer;
  let temporalDir: string;
  let dataDir: string;
  let platform: RunningPlatform;
  let token: string;
  const env = (extra: Record<string, string> = {}) => ({
    TEMPORAL_ADDRESS: temporal.address,
    TRIBUTARY_HEARTBEAT_THROTTLE_MS: '100',
    TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '3000',
    TRIBUTARY_FILES_IMPORT_SLICE_FILES: '2',
    TRIBUTARY_FILES_ALLOW_PRIVATE: '1', // versitygw listens on 127.0.0.1
    LOG_LEVEL: 'debug',
    ...extra,
  });
  const schemas: Record<string, string> = {};

  const table = (name: string, path: string) => ({ name, path, format: 'csv_with_header' });
  const put = (key: string, body: string) => putObject(s3, BUCKET, key, body);

  async function sync(schemaId: string): Promise<any> {
    const done = (await platform.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results.filter((j: any) => j.status !== 'Running').length;
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    return waitForJobs(platform, schemaId, done + 1);
  }

  const perFile = async (t: string) =>
    Object.fromEntries(
      (await query(platform, `SELECT _tributary_file AS f, toString(count()) AS n, toString(uniqExact(id)) AS u FROM ${t} GROUP BY f ORDER BY f`)).map((r) => [
        String(r.f).replace(`${BUCKET}/`, ''),
        `${r.n}/${r.u}`,
      ]),
    );

  beforeAll(async () => {
    gw = await startVersitygw(await ensureVersitygw(), { access: ACCESS, secret: SECRET, buckets: [BUCKET] });
    s3 = { endpoint: gw.endpoint, access: ACCESS, secret: SECRET };
    temporalDir = makeDataDir('files-import-temporal');
    temporal = await startDevServer({
      cliPath: testEnv().temporalCliPath, dataDir: temporalDir, port: await freePort(), uiPort: await freePort(), namespace: 'default', log: createLogger('warn'),
    });
    for (let i = 1; i <= 6; i++) await put(`crash/part-${i}.csv`, csv(i * 1000, 300, `c${i}`));
    for (let i = 1; i <= 2; i++) await put(`full/part-${i}.csv`, csv(i * 1000, 50, `f${i}`));
    for (let i = 1; i <= 2; i++) await put(`append/part-${i}.csv`, csv(i * 1000, 40, `a${i}`));
    dataDir = makeDataDir('files-import');
    // The first slice of the first import holds (once per data dir) with its rows in and its files not yet recorded.
    platform = await startPlatform({ dataDir, env: env({ TRIBUTARY_TEST_HOLD_AT: HOLD }) });
    token = platform.token;
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Files',
      prefix: 'imp',
      payload: {
        provider: 's3_compatible',
        endpoint: gw.endpoint,
        bucket: BUCKET,
        access_key_id: ACCESS,
        secret_access_key: SECRET,
        tables: [table('crashed', 'crash/*.csv'), table('refreshed', 'full/*.csv'), table('appended', 'append/*.csv')],
        schemas: [
          { name: 'crashed', should_sync: true, sync_type: 'append', sync_frequency: '24hour' },
          { name: 'refreshed', should_sync: false },
          { name: 'appended', should_sync: false },
        ],
      },
    });
    expect(res.status).toBe(201);
    for (const s of res.body.schemas) schemas[s.name] = s.id;
  }, 120_000);

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await gw?.stop();
    for (const d of [dataDir, temporalDir, gw?.dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a worker killed after a slice is inserted but before it is recorded: the retry loads every file exactly once', async () => {
    const deadline = Date.now() + 60_000;
    while (!platform.output().includes('test hold: waiting here')) {
      if (Date.now() > deadline) throw new Error(`the import never reached the hold:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The held slice's rows are in the live table; its files are not recorded as loaded.
    await platform.kill();
    platform = await startPlatform({ dataDir, token, env: env() });
    const job = await waitForJobs(platform, schemas.crashed, 1, 90_000);
    expect(job.status).toBe('Completed');
    const files = await perFile('imp_crashed');
    expect(files).toEqual(Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`crash/part-${i}.csv`, '300/300'])));
    // The held slice's rows were never in the change log: deleting them before the reload is no delete event.
    expect(ops(await tableChanges(platform, 'imp_crashed'))).toEqual({ insert: 1800 });
    // Nothing new: the next run loads nothing.
    const again = await sync(schemas.crashed);
    expect(again.status).toBe('Completed');
    expect(Number(again.rows_synced)).toBe(0);
    expect(await perFile('imp_crashed')).toEqual(files);
  }, 150_000);

  test('full refresh: every file loaded into a fresh table and swapped in, with change-log events', async () => {
    const patched = await platform.api('PATCH', `/api/schemas/${schemas.refreshed}`, {
      should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour', primary_key_columns: ['id'],
    });
    expect(patched.status).toBe(200);
    const first = await waitForJobs(platform, schemas.refreshed, 1);
    expect(first.status).toBe('Completed');
    expect(Number(first.rows_synced)).toBe(100);
    expect(await perFile('imp_refreshed')).toEqual({ 'full/part-1.csv': '50/50', 'full/part-2.csv': '50/50' });
    await tableChangesWhen(platform, 'imp_refreshed', 100);

    // A file rewritten (one row fewer, one changed), one deleted, one added: the refresh holds exactly what is there.
    await put('full/part-1.csv', csv(1000, 49, 'f1-rewritten'));
    await deleteObject(s3, BUCKET, 'full/part-2.csv');
    await put('full/part-3.csv', csv(3000, 10, 'f3'));
    const second = await sync(schemas.refreshed);
    expect(second.status).toBe('Completed');
    expect(await perFile('imp_refreshed')).toEqual({ 'full/part-1.csv': '49/49', 'full/part-3.csv': '10/10' });
    const [{ tags }] = await query(platform, 'SELECT groupUniqArray(tag) AS tags FROM imp_refreshed FINAL');
    expect([...tags].sort()).toEqual(['f1-rewritten', 'f3']);
    // 100 inserts; then 49 updates, 1 + 50 deletes, 10 inserts.
    const changes = await tableChangesWhen(platform, 'imp_refreshed', 100 + 49 + 51 + 10);
    expect(ops(changes.slice(100))).toEqual({ update: 49, delete: 51, insert: 10 });
  }, 120_000);

  test('by new files: an added file is loaded, a rewritten one reloaded without its old rows, a deleted one kept', async () => {
    const patched = await platform.api('PATCH', `/api/schemas/${schemas.appended}`, { should_sync: true, sync_type: 'append', sync_frequency: '24hour' });
    expect(patched.status).toBe(200);
    const first = await waitForJobs(platform, schemas.appended, 1);
    expect(first.status).toBe('Completed');
    expect(Number(first.rows_synced)).toBe(80);
    // The job completes once its changes are recorded: the log is final here.
    expect(ops(await tableChanges(platform, 'imp_appended'))).toEqual({ insert: 80 });

    await put('append/part-3.csv', csv(3000, 25, 'a3'));
    const second = await sync(schemas.appended);
    expect(second.status).toBe('Completed');
    expect(Number(second.rows_synced)).toBe(25);
    expect(ops(await tableChanges(platform, 'imp_appended'))).toEqual({ insert: 105 });

    await put('append/part-1.csv', csv(1000, 30, 'a1-rewritten'));
    await deleteObject(s3, BUCKET, 'append/part-2.csv');
    const third = await sync(schemas.appended);
    expect(third.status).toBe('Completed');
    expect(Number(third.rows_synced)).toBe(30); // part-1 again; part-2 untouched
    expect(await perFile('imp_appended')).toEqual({ 'append/part-1.csv': '30/30', 'append/part-2.csv': '40/40', 'append/part-3.csv': '25/25' });
    const [{ old }] = await query(platform, "SELECT toString(countIf(tag = 'a1')) AS old FROM imp_appended");
    expect(old).toBe('0');
    expect(JSON.stringify(third)).toMatch(/1 file loaded earlier is no longer in the source: its rows are kept/);
    // The rewritten file: its 40 old rows deleted, then its 30 new ones inserted; the deleted file's rows stay.
    const changes = (await tableChanges(platform, 'imp_appended')).slice(105);
    expect(changes.map((c) => c.op)).toEqual([...Array(40).fill('delete'), ...Array(30).fill('insert')]);
    const deleted = changes.slice(0, 40);
    expect(new Set(deleted.map((c) => c.old_row?.tag))).toEqual(new Set(['a1']));
    expect(deleted.map((c) => Number(c.old_row?.id)).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => 1000 + i));
    expect(new Set(deleted.map((c) => JSON.stringify([c.key, c.row])))).toEqual(new Set(['[{},{}]'])); // keyless: the old row says which
    expect(new Set(changes.slice(40).map((c) => c.row.tag))).toEqual(new Set(['a1-rewritten']));

    const fourth = await sync(schemas.appended);
    expect(Number(fourth.rows_synced)).toBe(0);
    expect(await tableChanges(platform, 'imp_appended')).toHaveLength(175);
  }, 120_000);

  test('the rules: an append by files takes no incremental_field, and an imported table does not turn linked', async () => {
    const cursor = await platform.api('PATCH', `/api/schemas/${schemas.appended}`, { incremental_field: 'id', incremental_field_type: 'integer' });
    expect(cursor.status).toBe(400);
    expect(cursor.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'incremental_field', message: expect.stringMatching(/by new files/) })]));
    const linked = await platform.api('PATCH', `/api/schemas/${schemas.appended}`, { sync_type: 'linked' });
    expect(linked.status).toBe(400);
    expect(linked.body.details).toEqual([expect.objectContaining({ field: 'sync_type' })]);
  });

  test("the engine's object storage requests go through the platform's egress proxy, but to the catalog's IPv4-literal endpoint", () => {
    // The successor platform's engine started with the source in the catalog: its endpoint 127.0.0.1, an address no
    // name can rebind, is connected to directly; any other host through the proxy (test/egress-proxy.test.ts: a
    // rebound name refused), and no redirect followed.
    const config = fs.readFileSync(`${dataDir}/warehouse/tributary-engine.xml`, 'utf8');
    expect(config).toMatch(
      /<s3_max_redirects>0<\/s3_max_redirects><proxy><no_proxy>127\.0\.0\.1<\/no_proxy><http><uri>http:\/\/127\.0\.0\.1:\d+<\/uri><\/http><https><uri>http:\/\/127\.0\.0\.1:\d+<\/uri><\/https><\/proxy>/,
    );
  });

  test('the secret is nowhere in the data dir or the log', () => {
    expect(platform.output()).not.toContain(SECRET);
    const grep = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = `${dir}/${e.name}`;
        if (e.isDirectory()) return grep(p);
        if (!e.isFile()) return [];
        return fs.readFileSync(p).includes(SECRET) ? [p] : [];
      });
    expect(grep(dataDir)).toEqual([]);
  });
});
