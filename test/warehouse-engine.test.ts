import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWarehouse, type Warehouse } from '../warehouse/client';
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
    // Cheap on the CPU: one row a second, cut short by KILL QUERY once the others have answered.
    const long = wh.queryReadOnly('SELECT /* long-user-query */ sleepEachRow(1) FROM numbers(60) SETTINGS max_block_size = 1').then(
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
