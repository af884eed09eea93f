import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { isRunning } from './support/platform';

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
