import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { checkReadQuery, UnsafeQueryError } from '../warehouse/read-query';
import { isRunning } from './support/platform';

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The embedded warehouse engine: chDB in a process of its own, reached through @clickhouse/client over IPC.
 * What the platform relies on: ClickHouse's own errors, a read-only session, concurrent queries answered
 * each to its caller, a lost engine replaced, a clean close, and a data dir handed from one engine to the next.
 */
describe('embedded warehouse engine', () => {
  let dataDir: string;
  let wh: Warehouse;
  const open = () => openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-engine-'));
    wh = await open();
    await wh.command('CREATE TABLE tributary.t (id UInt64, s String) ENGINE = MergeTree ORDER BY id');
  });

  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('runs in its own process; rows go in through a stream and a spool file and come back with parameters', async () => {
    expect(wh.enginePid).toBeGreaterThan(0);
    expect(wh.enginePid).not.toBe(process.pid);
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield Buffer.from(Array.from({ length: 1000 }, (_, j) => `${i * 1000 + j}\tné ${j}\n`).join(''));
    }
    await wh.insertStream('t', ['id', 's'], chunks());
    await wh.insertBytes('t', ['id', 's'], Buffer.from('10000\tlast\n'));
    const rows = await wh.queryRows<{ n: string; s: string }>('SELECT toString(count()) AS n, anyIf(s, id = {id:UInt64}) AS s FROM tributary.t', { params: { id: 1234 } });
    expect(rows).toEqual([{ n: '10001', s: 'né 234' }]);
  });

  test("ClickHouse's errors keep their code and name; the read-only session refuses writes", async () => {
    await expect(wh.command('SELEC 1')).rejects.toMatchObject({ code: '62', type: 'SYNTAX_ERROR' });
    await expect(wh.queryReadOnly("INSERT INTO tributary.t VALUES (1, 'x')")).rejects.toMatchObject({ code: '164' });
    expect((await wh.queryReadOnly('SELECT toString(count()) AS n FROM tributary.t')).data).toEqual([{ n: '10001' }]);
    // The platform's own session is not read-only.
    await wh.command("INSERT INTO tributary.t VALUES (20000, 'writable')");
  });

  test('concurrent queries each get their own answer', async () => {
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => wh.queryRows<{ v: number }>(`SELECT ${i} AS v`)));
    expect(answers.map((r) => r[0].v)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  test("a long streaming load holds up none of the platform's short work, other loads or users' queries", async () => {
    await wh.command('CREATE TABLE tributary.slow_load (id UInt64) ENGINE = MergeTree ORDER BY id');
    await wh.command('CREATE TABLE tributary.beside_load (id UInt64) ENGINE = MergeTree ORDER BY id');
    const done: string[] = [];
    let fed = 0;
    let release = false;
    // A source that trickles for up to a minute unless released: anything queued behind the load would
    // finish only after it.
    async function* trickle() {
      for (; fed < 600 && !release; fed++) {
        yield Buffer.from(`${fed}\n`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const load = wh.insertStream('slow_load', ['id'], trickle()).then(() => void done.push('load'));
    await until(() => fed >= 3); // the engine is reading the load's pipe
    async function* one(id: number) {
      yield Buffer.from(`${id}\n`);
    }
    await Promise.all([
      wh.queryRows('SELECT 1').then(() => done.push('platform query')),
      wh.insertBytes('beside_load', ['id'], Buffer.from('1\n')).then(() => done.push('batch insert')), // a CDC flush, a webhook batch
      wh.insertStream('beside_load', ['id'], one(2)).then(() => done.push('another load')),
      wh.queryReadOnly('SELECT count() FROM tributary.beside_load').then(() => done.push('user query')),
    ]);
    release = true;
    await load;
    expect(done.indexOf('load')).toBe(4);
    expect(done.slice(0, 4).sort()).toEqual(['another load', 'batch insert', 'platform query', 'user query']);
    expect(await wh.queryRows('SELECT toString(count()) AS n FROM tributary.slow_load')).toEqual([{ n: String(fed) }]);
    expect(await wh.queryRows('SELECT toString(count()) AS n FROM tributary.beside_load')).toEqual([{ n: '2' }]);
  });

  test('a source failing mid-load fails that load with its error, and every load lane session still serves', async () => {
    await wh.command('CREATE TABLE tributary.failing_load (id UInt64) ENGINE = MergeTree ORDER BY id');
    async function* failing(i: number) {
      yield Buffer.from(`${i}\n`);
      throw new Error(`source ${i} went away`);
    }
    // More failing loads at once than the load lane has sessions: each session fails once, then serves again.
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => wh.insertStream('failing_load', ['id'], failing(i))));
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'loaded'))).toEqual(Array.from({ length: 10 }, (_, i) => `source ${i} went away`));
    async function* rows() {
      yield Buffer.from('100\n101\n');
    }
    await Promise.all(Array.from({ length: 10 }, () => wh.insertStream('failing_load', ['id'], rows())));
    expect(await wh.queryRows("SELECT toString(countIf(id >= 100)) AS n FROM tributary.failing_load")).toEqual([{ n: '20' }]);
  });

  test("a long user query holds up neither the next user's query nor the platform", async () => {
    // Runs until its time limit (30 s by default), cut short by KILL QUERY once the others have answered. (No
    // SETTINGS clause: the read-only sessions refuse any.)
    const long = wh.queryReadOnly('SELECT /* long-user-query */ count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0').then(
      () => 'finished',
      (err: Error) => err.message,
    );
    const running = () =>
      wh.queryRows<{ n: string }>("SELECT toString(count()) AS n FROM system.processes WHERE query LIKE '%long-user-query%' AND query NOT LIKE '%system.processes%'");
    await until(async () => (await running())[0].n === '1');
    const done: string[] = [];
    await Promise.all([
      wh.queryReadOnly('SELECT 1 AS one').then(() => done.push('user query')),
      wh.insertBytes('beside_load', ['id'], Buffer.from('3\n')).then(() => done.push('batch insert')),
    ]);
    done.push(String((await running())[0].n === '1' ? 'long query still running' : 'long query over'));
    // ASYNC: chDB 3.4 never answers KILL QUERY … SYNC.
    await wh.command("KILL QUERY WHERE query LIKE '%long-user-query%' AND query NOT LIKE '%KILL QUERY%' ASYNC");
    expect(await long).toMatch(/cancelled/i);
    expect(done).toEqual(expect.arrayContaining(['user query', 'batch insert']));
    expect(done[2]).toBe('long query still running');
  });

  test('a running user query whose caller goes away is cancelled in the engine, well before its time limit', async () => {
    const marker = `gone-${Date.now()}`;
    const gone = new AbortController();
    const heavy = wh.queryReadOnly(`SELECT /* ${marker} */ count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0`, { signal: gone.signal });
    heavy.catch(() => undefined);
    const inEngine = async () =>
      (await wh.queryRows<{ n: string }>(`SELECT toString(count()) AS n FROM system.processes WHERE query LIKE '%${marker}%' AND query NOT LIKE '%system.processes%'`))[0].n;
    await until(async () => (await inEngine()) === '1');
    expect((await wh.running()).find((q) => q.query.includes(marker))).toMatchObject({ session: 'readonly', state: 'running' });
    gone.abort(new Error('the client closed the request'));
    await expect(heavy).rejects.toThrow('the client closed the request');
    // The default limit is 30 s: gone from the engine and from the platform's list well before that.
    await until(async () => (await inEngine()) === '0' && !(await wh.running()).some((q) => q.query.includes(marker)), 15_000);
    // The user's sessions serve the next query with its own answer (nothing of the cancelled one left in them).
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => wh.queryReadOnly(`SELECT ${i} AS i`)));
    expect(results.map((r) => r.data)).toEqual([0, 1, 2, 3].map((i) => [{ i }]));
  });

  test('an engine killed mid-query fails that query and the next query runs on a new engine', async () => {
    const first = wh.enginePid!;
    const slow = wh.queryRows('SELECT sleepEachRow(0.5) FROM numbers(4)');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(first, 'SIGKILL');
    await expect(slow).rejects.toThrow(/warehouse engine .* stopped \(SIGKILL\)/);
    expect(await wh.queryRows('SELECT toString(count()) AS n FROM tributary.t')).toEqual([{ n: '10002' }]);
    expect(wh.enginePid).toBeDefined();
    expect(wh.enginePid).not.toBe(first);
  });

  test('a second engine waits for the data dir the first still holds, and has its data once it is closed', async () => {
    const opening = open();
    await new Promise((r) => setTimeout(r, 1500));
    const holder = wh.enginePid!;
    await wh.close();
    expect(isRunning(holder)).toBe(false);
    await expect(wh.queryRows('SELECT 1')).rejects.toThrow('the warehouse engine is closed');
    wh = await opening;
    expect(await wh.queryRows('SELECT toString(count()) AS n FROM tributary.t')).toEqual([{ n: '10002' }]);
  });
});

/**
 * Users' queries run on the engine's read-only session under limits the platform sets (warehouse/query-limits.ts):
 * over one, a query fails with ClickHouse's own error and the engine is free for the next; no query can lift them.
 */
describe('user query limits on the embedded engine', () => {
  const HEAVY = 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0';
  let dataDir: string;
  let wh: Warehouse;

  beforeAll(async () => {
    // One read-only session, so that a second user query waits in the platform's queue (what a caller going
    // away drops before it runs).
    process.env.TRIBUTARY_ENGINE_SESSIONS = '1';
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-limits-'));
    wh = await openWarehouse({
      user: 'default',
      password: '',
      database: 'tributary',
      dataDir,
      userQueryLimits: { timeoutSeconds: 3, maxMemoryBytes: 50_000_000, maxResultRows: 1000, maxResultBytes: 200_000, maxThreads: 1 },
    });
  });

  afterAll(async () => {
    delete process.env.TRIBUTARY_ENGINE_SESSIONS;
    await wh?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a query over its time limit fails as TIMEOUT_EXCEEDED and the next query answers', async () => {
    await expect(wh.queryReadOnly(HEAVY)).rejects.toMatchObject({ code: '159', type: 'TIMEOUT_EXCEEDED' });
    expect((await wh.queryReadOnly('SELECT 1 AS one')).data).toEqual([{ one: 1 }]);
  });

  test('result rows, result bytes and memory are bounded; 64-bit integers come back as strings', async () => {
    await expect(wh.queryReadOnly('SELECT number FROM numbers(1001)')).rejects.toMatchObject({ code: '396', message: expect.stringMatching(/max rows/) });
    expect((await wh.queryReadOnly('SELECT number FROM numbers(1000)')).rows).toBe(1000);
    await expect(wh.queryReadOnly('SELECT repeat(toString(number), 1000) FROM numbers(500)')).rejects.toMatchObject({ code: '396', message: expect.stringMatching(/max bytes/) });
    await expect(wh.queryReadOnly('SELECT groupArray(number) FROM numbers(100000000)')).rejects.toMatchObject({ code: '241' });
    expect((await wh.queryReadOnly('SELECT toUInt64(1) AS n')).data).toEqual([{ n: '1' }]);
  });

  test('a query cannot lift its limits with SETTINGS or SET, even inside a subquery', async () => {
    const limits = await wh.queryReadOnly(
      "SELECT getSetting('max_execution_time') AS t, toString(getSetting('max_result_rows')) AS r, toString(getSetting('max_threads')) AS th, getSetting('readonly') AS ro",
    );
    expect(limits.data).toEqual([{ t: 3, r: '1000', th: '1', ro: 1 }]);
    for (const sql of [
      'SELECT number FROM numbers(2000) SETTINGS max_result_rows = 0',
      `${HEAVY} SETTINGS max_execution_time = 0`,
      'SELECT * FROM view(SELECT number FROM numbers(2000) SETTINGS max_result_rows = 0)',
    ]) {
      // Refused by the engine (READONLY), or run under the limit it tried to lift.
      await expect(wh.queryReadOnly(sql)).rejects.toMatchObject({ code: expect.stringMatching(/^(164|396|159)$/) });
      await expect(checkReadQuery(wh, sql)).rejects.toThrow(/readonly mode|not allowed/);
    }
    await expect(wh.queryReadOnly('SELECT 1 SETTINGS max_result_rows = 0')).rejects.toMatchObject({ code: '164', message: expect.stringMatching(/Cannot modify 'max_result_rows' setting in readonly mode/) });
    await expect(checkReadQuery(wh, 'SET max_result_rows = 0')).rejects.toThrow(UnsafeQueryError);
    await expect(checkReadQuery(wh, 'SET readonly = 0')).rejects.toThrow(UnsafeQueryError);
    await expect(wh.queryReadOnly('SELECT number FROM numbers(1001)')).rejects.toMatchObject({ code: '396' });
  });

  test('what runs is listed; a query still waiting for the engine is dropped when its caller gives up', async () => {
    const heavy = wh.queryReadOnly(HEAVY);
    heavy.catch(() => undefined);
    await waitFor(async () => (await wh.running()).some((q) => q.query.includes('sipHash64') && q.session === 'readonly'));
    const aborts = new AbortController();
    const waiting = wh.queryReadOnly('SELECT 42 AS waited', { signal: aborts.signal });
    await waitFor(async () => (await wh.running()).some((q) => q.query.includes('42 AS waited') && q.state === 'queued'));
    aborts.abort();
    await expect(waiting).rejects.toThrow(/abort/i);
    const running = await wh.running();
    expect(running.map((q) => q.query)).not.toContainEqual(expect.stringContaining('42 AS waited'));
    const listed = running.find((q) => q.query.includes('sipHash64'))!;
    expect(listed).toMatchObject({ session: 'readonly', state: 'running' });
    expect(listed.age_ms).toBeGreaterThanOrEqual(0);
    await expect(heavy).rejects.toMatchObject({ code: '159' });
  });
});

describe('opening the data dir', () => {
  test('another engine holding the data dir beyond the wait: the open fails naming the holder', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-lock-'));
    const holder = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    try {
      await expect(openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir, engineLockWaitMs: 500 })).rejects.toThrow(
        new RegExp(`locked by process ${holder.enginePid}`),
      );
      expect(await holder.queryRows('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await holder.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a data dir the engine cannot load fails at once (no retry: no other process holds it), with the cause', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-broken-'));
    fs.mkdirSync(path.join(dataDir, 'warehouse', 'metadata'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'warehouse', 'metadata', 'tributary.sql'), 'not a database (((');
    try {
      // A lock wait far beyond the test's timeout: only a failure without retry ends in time.
      await expect(openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir, engineLockWaitMs: 3_600_000 })).rejects.toThrow(
        /could not open .*Syntax error \(in file metadata\/tributary\.sql\)/s,
      );
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 20_000);
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
