import { packItems, unpackItems, JsonArrayScanner, renderThreadAfter } from '../connectors/kit';
import { pendoConnector } from '../connectors/pendo';
import type { Batch, ReadRequest } from '../connectors/types';
import { generatedVisitors, makeVisitor, startPendoFake, type GeneratedVisitors, type PendoFake } from './support/pendo-fake';

/**
 * Rows rendered on a thread of their own (connectors/kit/row-thread.ts): a Pendo read that hands its items to a
 * render thread yields the very rows and positions it yields rendering them itself — from the first item, and
 * when it hands over halfway (every position a resume point that reads exactly the rest) — for full refresh and
 * incremental, with items that take every path of the renderer (escapes, whitespace, \u escapes, duplicate keys,
 * ids with quotes and backslashes, items without a string id). A failure in the thread reaches the read after
 * the batches cut before it, as on one thread. Against the local Pendo server, through the production client.
 */

const KEY = 'row-thread-key-us';
const N = 900;

/** The visitors without a string id (never the last of a 64-item page: its key is where the next page starts). */
const noId = (i: number) => i % 11 === 7 && i % 64 !== 63;

/** Generated visitors, with odd ones among them; ids sort in index order. */
function oddVisitors(broken?: number): GeneratedVisitors {
  const base = generatedVisitors(N);
  const idOf = (i: number) => (i % 97 === 5 ? `${base.idOf(i)} say "hi" C:\\x` : base.idOf(i));
  const json = (i: number): string => {
    if (i === broken) return `{"visitorId":${JSON.stringify(idOf(i))},"metadata":{"auto":{"lastupdated":tru}}}`;
    const text = base.json(i).replace(JSON.stringify(base.idOf(i)), JSON.stringify(idOf(i)));
    if (noId(i)) return text.replace(/^\{"visitorId":"[^"\\]*(?:\\.[^"\\]*)*"/, '{"visitorId":7,"id":' + JSON.stringify(idOf(i)));
    switch (i % 11) {
      case 1:
        return text.replace('"metadata":{', '"metadata": {'); // whitespace: not canonical
      case 2:
        return text.replace('"Chrome"', '"Chr\\u006fme"'); // a \u escape
      case 3:
        return text.replace('"role":"admin"', '"role":"ad\\/min\\ttab\\nline"'); // \/ and TSV-special escapes
      case 4:
        return text.replace('"custom":{', '"custom":{"plan":"dup",'); // a duplicate key
      case 6:
        return text.replace('"metadata":{', '"metadata":{"auto":{"id":1},'); // duplicate `auto`: the later one wins
      default:
        return text;
    }
  };
  return { count: N, idOf, json, visitor: (i) => JSON.parse(json(i)) };
}

async function readAll(req: Partial<ReadRequest>, renderAfter: string): Promise<Batch[]> {
  process.env.TRIBUTARY_RENDER_THREAD_AFTER = renderAfter;
  const columns = await pendoConnector.describe({ integration_key: KEY, region: 'US' }, 'visitors');
  const batches: Batch[] = [];
  for await (const b of pendoConnector.read({ integration_key: KEY, region: 'US' }, { table: 'visitors', mode: 'full_refresh', columns, version: 3n, batchBytes: 24 * 1024, ...req })) {
    batches.push({ ...b, data: Buffer.from(b.data) });
  }
  return batches;
}

const bytes = (batches: Batch[]) => Buffer.concat(batches.map((b) => b.data)).toString('utf8');
const shape = (batches: Batch[]) => batches.map((b) => ({ rows: b.rows, cursor: b.cursor, data: b.data.toString('utf8') }));

describe('rows rendered on a render thread', () => {
  let fake: PendoFake;
  const saved = { ...process.env };

  beforeAll(async () => {
    fake = await startPendoFake();
    fake.addKey(KEY, 'app.pendo.io');
    process.env.TRIBUTARY_PENDO_API_URL = fake.apiUrl;
    process.env.TRIBUTARY_PENDO_PAGE_SIZE = '64';
    process.env.TRIBUTARY_PENDO_RPS = '1000';
  });
  afterAll(async () => {
    process.env = saved;
    await fake.stop();
  });

  test('the setting: a count, 0, or off', () => {
    expect(renderThreadAfter({})).toBe(20_000);
    expect(renderThreadAfter({ TRIBUTARY_RENDER_THREAD_AFTER: '0' })).toBe(0);
    expect(renderThreadAfter({ TRIBUTARY_RENDER_THREAD_AFTER: ' OFF ' })).toBe(Infinity);
    expect(renderThreadAfter({ TRIBUTARY_RENDER_THREAD_AFTER: '-3' })).toBe(20_000);
  });

  test('items cross to the thread as they were scanned', () => {
    const text = JSON.stringify([{ a: 1, b: 'x\\y' }, [1, 2], 'str', { visitorId: 'v "1"', m: { n: null } }]);
    const items = new JsonArrayScanner(undefined, { parse: false }).pushItems(text);
    expect(items.map((i) => i.value)).toEqual([undefined, undefined, undefined, undefined]);
    expect(unpackItems(packItems(items))).toEqual(items);
  });

  test('full refresh: the same batches from the first item on a thread, the same rows and resumable positions when handed over halfway', async () => {
    fake.generate(oddVisitors());
    const own = await readAll({}, 'off');
    expect(own.reduce((n, b) => n + b.rows, 0)).toBe(Array.from({ length: N }, (_, i) => i).filter((i) => !noId(i)).length);
    expect(own.length).toBeGreaterThan(10);
    const threaded = await readAll({}, '0');
    expect(shape(threaded)).toEqual(shape(own));

    const handedOver = await readAll({}, '300');
    expect(bytes(handedOver)).toBe(bytes(own));
    expect(JSON.parse(handedOver.at(-1)!.cursor!)).toEqual(JSON.parse(own.at(-1)!.cursor!));
    // Every position (the hand-over batch's among them) resumes on exactly the rest, on either thread. In one page:
    // a page that ended on an item without a string id would start the next one over (ids are strings in Pendo).
    process.env.TRIBUTARY_PENDO_PAGE_SIZE = '1000';
    let before = '';
    for (const [i, b] of handedOver.entries()) {
      before += b.data.toString('utf8');
      if (i % 3 !== 0 && i !== handedOver.length - 2) continue;
      const rest = await readAll({ cursor: b.cursor }, i % 2 ? '0' : 'off');
      expect(before + bytes(rest)).toBe(bytes(own));
    }
    process.env.TRIBUTARY_PENDO_PAGE_SIZE = '64';
  });

  test('incremental: the same batches and positions on a thread as on the read’s own', async () => {
    fake.generate(undefined);
    const at = Date.UTC(2026, 3, 1);
    for (let i = 0; i < 500; i++) fake.putVisitor(makeVisitor(`inc-${String(i).padStart(4, '0')}${i % 50 === 3 ? '\\"q' : ''}`, at + (i % 37) * 60_000, [-323232]));
    const req = { mode: 'incremental' as const, cursorField: 'lastupdated', cursor: JSON.stringify({ since: at + 20 * 60_000 + 3_600_000 }) };
    const own = await readAll(req, 'off');
    expect(own.reduce((n, b) => n + b.rows, 0)).toBeGreaterThan(100);
    expect(shape(await readAll(req, '0'))).toEqual(shape(own));
    const handedOver = await readAll(req, '150');
    expect(bytes(handedOver)).toBe(bytes(own));
    expect(handedOver.at(-1)!.cursor).toBe(own.at(-1)!.cursor);
    // A position mid-run (the run in flight) resumes on the rest.
    const mid = handedOver[Math.floor(handedOver.length / 2)];
    expect(JSON.parse(mid.cursor!).run.after).toEqual(expect.any(String));
    const upTo = handedOver.slice(0, handedOver.indexOf(mid) + 1);
    expect(bytes(upTo) + bytes(await readAll({ ...req, cursor: mid.cursor }, '0'))).toBe(bytes(own));
  });

  test('a thread that takes many items in and cuts no batch (none has a string id) still lets the read go on', async () => {
    const base = generatedVisitors(15_000);
    fake.generate({ ...base, json: (i) => (i < base.count - 1 ? `{"visitorId":${i},"id":"${base.idOf(i)}"}` : base.json(i)) });
    process.env.TRIBUTARY_PENDO_PAGE_SIZE = '20000';
    try {
      const batches = await readAll({}, '0');
      expect(batches.reduce((n, b) => n + b.rows, 0)).toBe(1);
      expect(JSON.parse(batches.at(-1)!.cursor!)).toEqual({ after: base.idOf(base.count - 1) });
    } finally {
      process.env.TRIBUTARY_PENDO_PAGE_SIZE = '64';
    }
  });

  test('an item that is not JSON fails the read after the batches before it, on either thread', async () => {
    fake.generate(oddVisitors(500));
    const outcome = async (after: string) => {
      const got: Batch[] = [];
      process.env.TRIBUTARY_RENDER_THREAD_AFTER = after;
      const columns = await pendoConnector.describe({ integration_key: KEY, region: 'US' }, 'visitors');
      try {
        for await (const b of pendoConnector.read({ integration_key: KEY, region: 'US' }, { table: 'visitors', mode: 'full_refresh', columns, version: 3n, batchBytes: 24 * 1024 })) got.push(b);
      } catch (err) {
        return { rows: got.reduce((n, b) => n + b.rows, 0), error: `${(err as Error).name}: ${(err as Error).message}` };
      }
      throw new Error('the read did not fail');
    };
    const own = await outcome('off');
    expect(own.error).toMatch(/^SyntaxError: .*JSON/);
    expect(own.rows).toBeGreaterThan(0);
    expect(await outcome('0')).toEqual(own);
  });
});
