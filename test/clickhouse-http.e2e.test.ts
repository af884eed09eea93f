import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClickHouseError } from '@clickhouse/client';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { DEFAULT_QUERY_LIMITS, queryUserProfile } from '../warehouse/query-limits';
import { startClickHouseHttp, type RunningClickHouseHttp } from './support/clickhouse-http';

/**
 * The test ClickHouse server (test/support/clickhouse-http.ts) against ClickHouse's documented HTTP interface, and
 * warehouse/client.ts's HTTP branches (CLICKHOUSE_URL) through it: settings as URL parameters, streamed insert
 * bodies, INSERT … SELECT FROM input(), errors with their codes, the read-only lane, a query user of its own.
 */
describe('ClickHouse over HTTP (test server in front of chDB)', () => {
  let server: RunningClickHouseHttp;
  let wh: Warehouse;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ch-http-test-'));
    server = await startClickHouseHttp({
      dataDir: path.join(dir, 'data'),
      defaultDatabase: 'nothing_here',
      users: {
        tributary: { password: 'secret' },
        reader: { password: 'reader-secret', settings: queryUserProfile(DEFAULT_QUERY_LIMITS) },
      },
    });
    wh = await openWarehouse({ url: server.url, user: 'tributary', password: 'secret', database: 'tenant_a', dataDir: dir });
  }, 60_000);

  afterAll(async () => {
    await wh?.close();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const raw = (q: string, init: RequestInit & { auth?: string } = {}) =>
    fetch(`${server.url}/?${q}`, { ...init, headers: { authorization: 'Basic ' + Buffer.from(init.auth ?? 'tributary:secret').toString('base64'), ...(init.headers ?? {}) } });

  test('/ping and GET / answer Ok.; other paths are 404', async () => {
    expect(await (await fetch(`${server.url}/ping`)).text()).toBe('Ok.\n');
    expect(await (await fetch(`${server.url}/`)).text()).toBe('Ok.\n');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  test('query in the URL, in the body, or split; format header; summary header; settings as parameters', async () => {
    const inUrl = await raw(`query=${encodeURIComponent('SELECT 1 + 1')}`);
    expect(await inUrl.text()).toBe('2\n');
    expect(inUrl.headers.get('x-clickhouse-format')).toBe('TabSeparated');
    expect(JSON.parse(inUrl.headers.get('x-clickhouse-summary')!)).toEqual(expect.objectContaining({ read_rows: expect.any(String), elapsed_ns: expect.any(String) }));
    const inBody = await raw('default_format=JSONEachRow', { method: 'POST', body: 'SELECT 3 AS x' });
    expect(await inBody.text()).toBe('{"x":3}\n');
    expect(inBody.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
    const split = await raw(`query=${encodeURIComponent('SELECT')}`, { method: 'POST', body: '4' });
    expect(await split.text()).toBe('4\n');
    const setting = await raw(`max_threads=3&query=${encodeURIComponent("SELECT value FROM system.settings WHERE name = 'max_threads'")}`);
    expect(await setting.text()).toBe('3\n');
    // A request's settings are its own: the next one has the default again.
    expect(await (await raw(`query=${encodeURIComponent("SELECT changed FROM system.settings WHERE name = 'max_threads'")}`)).text()).toBe('0\n');
  });

  test('errors: status by code, X-ClickHouse-Exception-Code, ClickHouse text body; the client sees the code', async () => {
    const unknown = await raw(`query=${encodeURIComponent('SELECT * FROM no_such_table')}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('x-clickhouse-exception-code')).toBe('60');
    expect(await unknown.text()).toMatch(/^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\) \(version \d+\.\d+/);
    const syntax = await raw('', { method: 'POST', body: 'SELEC 1' });
    expect([syntax.status, syntax.headers.get('x-clickhouse-exception-code')]).toEqual([400, '62']);
    const badAuth = await raw(`query=SELECT%201`, { auth: 'tributary:wrong' });
    expect([badAuth.status, badAuth.headers.get('x-clickhouse-exception-code')]).toEqual([401, '516']);
    const byHeaders = await fetch(`${server.url}/?query=SELECT%205`, { headers: { 'X-ClickHouse-User': 'tributary', 'X-ClickHouse-Key': 'secret' } });
    expect(await byHeaders.text()).toBe('5\n');
    // GET is readonly: no writes.
    const getWrite = await raw(`query=${encodeURIComponent('CREATE TABLE tenant_a.g (a Int32) ENGINE = Memory')}`);
    expect([getWrite.status, getWrite.headers.get('x-clickhouse-exception-code')]).toEqual([403, '164']);
    await expect(wh.command('SELECT * FROM tenant_a.missing')).rejects.toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    await expect(wh.command('SELECT * FROM tenant_a.missing')).rejects.toBeInstanceOf(ClickHouseError);
  });

  test('session_id keeps settings between requests; a busy session is locked; session_check finds none', async () => {
    await raw('session_id=s1', { method: 'POST', body: 'SET max_threads = 2' });
    expect(await (await raw(`session_id=s1&query=${encodeURIComponent("SELECT value FROM system.settings WHERE name = 'max_threads'")}`)).text()).toBe('2\n');
    const slow = raw('session_id=s2', { method: 'POST', body: 'SELECT sleep(1)' });
    await new Promise((r) => setTimeout(r, 200)); // (the slow request must have reached the server: it is the condition under test)
    const locked = await raw('session_id=s2', { method: 'POST', body: 'SELECT 1' });
    expect(locked.headers.get('x-clickhouse-exception-code')).toBe('373');
    expect((await slow).status).toBe(200);
    const missing = await raw('session_id=never&session_check=1', { method: 'POST', body: 'SELECT 1' });
    expect(missing.headers.get('x-clickhouse-exception-code')).toBe('372');
  });

  test('the client: DDL, parameters, insertBytes, a streamed insert, INSERT … SELECT FROM input(), all in the named database', async () => {
    await wh.command('CREATE TABLE tenant_a.t (id UInt64, name String, at DateTime64(6, \'UTC\')) ENGINE = MergeTree ORDER BY id');
    await wh.insertBytes('t', ['id', 'name', 'at'], Buffer.from('1\tone\t2026-01-01 00:00:00.000001\n2\ttwo\t2026-01-02 00:00:00\n'));
    async function* chunks() {
      for (let i = 0; i < 50; i++) {
        const lines: string[] = [];
        for (let j = 0; j < 1000; j++) lines.push(`${1000 + i * 1000 + j}\tn${j}\t2026-03-01 00:00:00`);
        yield Buffer.from(lines.join('\n') + '\n');
      }
    }
    await wh.insertStream('t', ['id', 'name', 'at'], chunks());
    await wh.insertSelectBytes((src) => `INSERT INTO tenant_a.t SELECT id * 1000000, upper(name), now64(6) FROM ${src}`, 'id UInt64, name String', Buffer.from('7\tseven\n'));
    const rows = await wh.queryRows<{ n: string; s: string }>('SELECT count() AS n, toString(sum(id)) AS s FROM tenant_a.t WHERE id < {max:UInt64}', { params: { max: 1_000_000 } });
    expect(Number(rows[0].n)).toBe(50_002);
    // String parameters arrive escaped (tabs, newlines, quotes, backslashes) and reach the engine as they were.
    const tricky = "it's\ta\nline \\ {x} 'q'";
    expect(await wh.queryRows('SELECT {s:String} AS s, length({s:String}) AS n', { params: { s: tricky } })).toEqual([{ s: tricky, n: tricky.length }]);
    expect(await wh.queryRows('SELECT has({names:Array(String)}, {s:String}) AS h', { params: { names: ['a b', 'c'], s: 'a b' } })).toEqual([{ h: 1 }]);
    expect(await wh.queryRows('SELECT name, at FROM tenant_a.t WHERE id IN (1, 7000000) ORDER BY id')).toEqual([
      { name: 'one', at: '2026-01-01 00:00:00.000001' },
      { name: 'SEVEN', at: expect.any(String) },
    ]);
    // A stream that breaks midway fails the insert.
    async function* broken() {
      yield Buffer.from('9\tnine\t2026-01-01 00:00:00\n');
      throw new Error('source went away');
    }
    await expect(wh.insertStream('t', ['id', 'name', 'at'], broken())).rejects.toThrow();
    // Bad data: the engine's parse error with its code.
    await expect(wh.insertBytes('t', ['id', 'name', 'at'], Buffer.from('x\ty\tz\n'))).rejects.toMatchObject({ code: expect.stringMatching(/^(6|27|38|117)$/) });
  });

  test("users' queries: in CLICKHOUSE_DATABASE, readonly, limits as settings; a query user of the server's own", async () => {
    const r = await wh.queryReadOnly('SELECT count() AS n FROM t');
    expect(r.data).toEqual([{ n: expect.any(String) }]);
    await expect(wh.queryReadOnly('DROP TABLE t')).rejects.toMatchObject({ code: '164' });
    await expect(wh.queryReadOnly("SELECT 1 SETTINGS max_threads = 64")).rejects.toMatchObject({ code: '164' });
    const asReader = await openWarehouse({ url: server.url, user: 'tributary', password: 'secret', database: 'tenant_a', dataDir: dir, queryUser: 'reader', queryPassword: 'reader-secret' });
    try {
      expect((await asReader.queryReadOnly('SELECT count() AS n FROM t')).rows).toBe(1);
      await expect(asReader.queryReadOnly('DROP TABLE t')).rejects.toMatchObject({ code: '164' });
      expect(await asReader.ping()).toEqual({ ok: true });
    } finally {
      await asReader.close();
    }
    // The server refuses the reader any setting its profile does not have.
    const res = await raw(`max_threads=64&query=SELECT%201`, { auth: 'reader:reader-secret' });
    expect(res.headers.get('x-clickhouse-exception-code')).toBe('164');
  });

  test('every statement the client sent named its database: none ran against the empty default', async () => {
    const fromClient = server.statements().filter((s) => s.user === 'tributary' && !s.query.startsWith('SELECT 1') && s.database === undefined);
    expect(fromClient.length).toBeGreaterThan(3);
    // Those whose tables would be looked up in the default database fail there (UNKNOWN_TABLE), and none did.
    expect(fromClient.filter((s) => s.error === 60 && !/no_such_table|missing/.test(s.query))).toEqual([]);
    const tables = await wh.queryRows("SELECT name FROM system.tables WHERE database = 'nothing_here'");
    expect(tables).toEqual([]);
  });
});
