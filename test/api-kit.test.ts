import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { ApiHttpError, ApiTimeout, Batcher, fieldText, HttpApi, JsonArrayScanner, keysetItems, kitColumn, memberJson, objectRow, rowColumns, type ColumnKind, type ScannedItem } from '../connectors/kit';
import { unixSecondsText } from '../warehouse/tsv';
import { openWarehouse, type Warehouse } from '../warehouse/client';

/**
 * The API connector kit against real parts: a local node:http server playing the API (429s, 5xx, resets,
 * silence, a page broken off mid-stream) and the embedded warehouse reading the rows the kit renders.
 * Back-offs are kept short through the kit's own options; nothing here sleeps for a fixed time.
 */

/** `text` (a JSON array) scanned in the pieces `cuts` makes. */
function scanItems(text: string, cuts: number[], at?: string): ScannedItem[] {
  const scanner = new JsonArrayScanner(at);
  const items: ScannedItem[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    items.push(...scanner.pushItems(text.slice(from, Math.max(from, cut))));
    from = Math.max(from, cut);
  }
  items.push(...scanner.pushItems(text.slice(from)));
  scanner.end();
  return items;
}

/** The items' values (what `push` returns, piece by piece). */
function scan(text: string, cuts: number[], at?: string): unknown[] {
  return scanItems(text, cuts, at).map((item) => item.value);
}

/** A body holding `items`: bare, or under `at` with other keys (holding anything, `at` included deeper down) around it. */
const bodies = fc
  .record({
    items: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 30 }),
    at: fc.option(fc.string({ unit: fc.constantFrom('a', 'r', '"', '\\', '\n', 'é', '{', '[', ':', ',') , maxLength: 6 }), { nil: undefined }),
    before: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    after: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    indent: fc.constantFrom(undefined, 2),
  })
  .map(({ items, at, before, after, indent }) => {
    const expected = JSON.parse(JSON.stringify(items)) as unknown[];
    if (at === undefined) return { at, expected, text: JSON.stringify(items, null, indent), arrayEnd: -1 };
    const others = (o: Record<string, unknown>) => Object.entries(o).filter(([k]) => k !== at);
    // The same key one level down must not be taken for the array.
    const decoy = { [at]: ['not', 'these'] };
    const prefix = `{${[...others(before).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v, null, indent)}`), `"decoy":${JSON.stringify(decoy)}`].join(',')},${JSON.stringify(at)} : `;
    const array = JSON.stringify(items, null, indent);
    const suffix = `${others(after).map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`).join('')}}`;
    return { at, expected, text: prefix + array + suffix, arrayEnd: prefix.length + array.length - 1 };
  })
  .map((b) => ({ ...b, arrayEnd: b.arrayEnd < 0 ? b.text.length - 1 : b.arrayEnd }));

describe('JsonArrayScanner', () => {
  test('any JSON array, bare or under a key among others, cut into any chunks, yields exactly its items', () => {
    fc.assert(
      fc.property(bodies, fc.array(fc.nat(), { maxLength: 20 }), ({ text, at, expected }, cuts) => {
        expect(scan(text, cuts.map((c) => c % (text.length + 1)), at)).toEqual(expected);
      }),
      { numRuns: 400 },
    );
  });

  test('a body cut off before its array ends is an error, after the items that did arrive whole', () => {
    fc.assert(
      fc.property(bodies, fc.nat(), fc.array(fc.nat(), { maxLength: 5 }), ({ text, at, expected, arrayEnd }, end, cuts) => {
        const cutOff = text.slice(0, end % (arrayEnd + 1));
        const scanner = new JsonArrayScanner(at);
        const got: unknown[] = [];
        let from = 0;
        const pieces = [...cuts.map((c) => c % (cutOff.length + 1)).sort((a, b) => a - b), cutOff.length];
        expect(() => {
          for (const cut of pieces) {
            got.push(...scanner.push(cutOff.slice(from, Math.max(from, cut))));
            from = Math.max(from, cut);
          }
          scanner.end();
        }).toThrow();
        expect(got).toEqual(expected.slice(0, got.length));
      }),
      { numRuns: 300 },
    );
  });

  test('no array where one was asked for is an error naming what was expected', () => {
    expect(() => scan('{"a":1}', [], 'results')).toThrow('no "results" array in the response');
    expect(() => scan('{"results":[1]}', [])).toThrow('expected a JSON array');
    expect(() => scan('[1,2]', [], 'results')).toThrow('expected a JSON object holding "results"');
  });
});

describe('memberJson: a member passed on as its text only when that is what JSON.stringify writes', () => {
  /** Every member's memberJson, checked against JSON.stringify of the parsed member; how many were taken as text. */
  function check(text: string, cuts: number[] = [], at?: string): number {
    let taken = 0;
    for (const item of scanItems(text, cuts, at)) {
      const value = item.value as Record<string, unknown>;
      expect(JSON.parse(item.text)).toEqual(value);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      for (const key of Object.keys(value)) {
        const raw = memberJson(item, key);
        if (raw === undefined) continue;
        expect(raw).toBe(JSON.stringify(value[key]));
        taken++;
      }
      expect(memberJson(item, 'not a key \u0000')).toBeUndefined();
    }
    return taken;
  }

  test('any objects, compact or indented, bare or under a key, in any chunks: the text is the stringified member or none', () => {
    const objects = fc.array(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), { maxLength: 8 });
    fc.assert(
      fc.property(objects, fc.constantFrom(undefined, 1), fc.boolean(), fc.array(fc.nat(), { maxLength: 12 }), (items, indent, keyed, cuts) => {
        const array = JSON.stringify(items, null, indent);
        const text = keyed ? `{"before":{"results":[1]},"results":${array},"after":"x"}` : array;
        check(text, cuts.map((c) => c % (text.length + 1)), keyed ? 'results' : undefined);
      }),
      { numRuns: 400 },
    );
  });

  test('JSON.stringify output without fractions, exponents, long integers, digit keys or \\u escapes is taken as it is, in any chunks', () => {
    const safe = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: fc.constantFrom('a', 'é', '"', '\\', '\n', '\t', '\r', '\b', '\f', '\u0001', '/', '😀', ' ', '\u2028') }),
        fc.integer({ min: -1e12, max: 1e12 }).filter((n) => !Object.is(n, -0)),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.string({ unit: fc.constantFrom('a', 'b', 'é', '_', '"'), minLength: 1, maxLength: 3 }), tie('value'), { maxKeys: 3 }),
      ),
    }));
    const objects = fc.array(fc.dictionary(fc.string({ unit: fc.constantFrom('m', 'k', 'x'), minLength: 1, maxLength: 3 }), safe.value, { minKeys: 1, maxKeys: 4 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(objects, fc.array(fc.nat(), { maxLength: 12 }), (items, cuts) => {
        const text = JSON.stringify(items);
        // A control character other than \b \f \n \r \t is written as \u00XX: not one of the escapes taken as they are.
        const members = items.reduce((n, o) => n + (JSON.stringify(o).includes('\\u') ? 0 : Object.keys(o).length), 0);
        expect(check(text, cuts.map((c) => c % (text.length + 1)))).toBe(members);
      }),
      { numRuns: 300 },
    );
  });

  test.each([
    ['big integers', '[{"m":[12345678901234567890,9007199254740993,1234567890123456]}]'],
    ['exponents and fractions', '[{"m":[1e21,1E2,1.0,1.50,2e-7,0.1]}]'],
    ['minus zero', '[{"m":-0}]'],
    ['an escaped slash and \\u escapes', '[{"m":"a\\/b\\u00e9\\u0041\\ud83d\\ude00"}]'],
    ['whitespace', '[{"m": {"a":1}}]'],
    ['whitespace after the item', '[{"m":{"a":1}} ]'],
    ['a duplicate key at the top', '[{"m":{"a":1},"m":{"b":2}}]'],
    ['a duplicate key deep down', '[{"m":{"a":1,"a":2},"n":1}]'],
    ['a duplicate key in another member', '[{"m":{"a":1},"n":{"x":1,"x":2}}]'],
    ['digit keys (JSON.parse puts them first)', '[{"m":{"b":1,"2":2,"1":3}}]'],
    ['a lone surrogate', '[{"m":"a\ud800b"}]'],
  ])('not taken as it is: %s', (_, text) => {
    const [item] = scanItems(text, []);
    expect(memberJson(item, 'm')).toBeUndefined();
    check(text);
    // Whatever the pieces, the same answer.
    for (let cut = 0; cut <= text.length; cut++) expect(memberJson(scanItems(text, [cut])[0], 'm')).toBeUndefined();
  });

  test.each([
    ['nested arrays and objects', '[{"id":"x","m":[[1,[2,[]]],{"a":{"b":[{}]}},"s",true,false,null]}]', undefined],
    ['escapes JSON.stringify writes itself, unicode, an emoji', '[{"m":{"q":"say \\"hi\\"\\\\ \\n\\t\\r\\b\\f é 😀 \u2028"}}]', undefined],
    ['integers up to 15 digits, negative ones, zero', '[{"m":[123456789012345,-123456789012345,0,-1,10]}]', undefined],
    ['a number member, a string member, null', '[{"m":5,"n":"t","o":null}]', undefined],
    ['a __proto__ key', '[{"m":{"__proto__":{"a":1}}}]', undefined],
    ['under a key, among others', '{"startTime":1,"results":[{"m":{"a":[1]}}],"x":"y"}', 'results'],
  ] as [string, string, string | undefined][])('taken as it is: %s', (_, text, at) => {
    const [item] = scanItems(text, [], at);
    const value = item.value as Record<string, unknown>;
    expect(memberJson(item, 'm')).toBe(JSON.stringify(value.m));
    for (let cut = 0; cut <= text.length; cut++) expect(memberJson(scanItems(text, [cut], at)[0], 'm')).toBe(JSON.stringify(value.m));
    // TabSeparated escaping is skipped only for a text without a backslash.
    expect(item.backslashes).toBe(item.text.includes('\\'));
  });
});

describe('time text', () => {
  const reference = (ms: number) => {
    const whole = Math.floor(ms);
    const seconds = Math.floor(whole / 1000);
    return `${unixSecondsText(seconds)}.${String(whole - seconds * 1000).padStart(3, '0')}`;
  };

  test('timestamp_ms and whole-second timestamps read as Date writes them, over all of DateTime64', () => {
    fc.assert(
      fc.property(fc.integer({ min: -2_208_988_800_000, max: 10_413_791_999_999 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (ms, frac) => {
        expect(fieldText('timestamp_ms', ms)).toBe(reference(ms));
        expect(fieldText('timestamp_ms', ms + frac)).toBe(reference(ms + frac));
        const s = Math.trunc(ms / 1000);
        expect(fieldText('timestamp', s)).toBe(unixSecondsText(s));
      }),
      { numRuns: 2000 },
    );
    for (const ms of [-2_208_988_800_000, -1, 0, 1, 86_399_999, 86_400_000, 951_782_400_000, 10_413_791_999_999]) expect(fieldText('timestamp_ms', ms)).toBe(reference(ms));
    expect(fieldText('timestamp', 1.5)).toBe(unixSecondsText(1.5));
    expect(fieldText('timestamp', -1.5)).toBe(unixSecondsText(-1.5));
  });
});

describe('Batcher', () => {
  test('a batch holds the rows as UTF-8, counted in bytes, cut once past the byte limit', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'é', '😀', '\t', '€'), maxLength: 3000 }), { maxLength: 60 }), fc.integer({ min: 1, max: 200_000 }), (lines, maxBytes) => {
        const batcher = new Batcher(['c'], maxBytes, 1_000_000);
        const batches: { data: Buffer; rows: number }[] = [];
        const expected: string[][] = [[]];
        for (const line of lines) {
          batcher.add(line);
          expected[expected.length - 1].push(line);
          if (batcher.full) {
            expect(Buffer.byteLength(expected[expected.length - 1].join(''))).toBeGreaterThanOrEqual(maxBytes);
            batches.push(batcher.take({}));
            expected.push([]);
          }
        }
        batches.push(batcher.take({}));
        expect(batches.map((b) => b.data.toString('utf8'))).toEqual(expected.map((e) => e.join('')));
        expect(batches.map((b) => b.rows)).toEqual(expected.map((e) => e.length));
        expect(batches.map((b) => b.data.length)).toEqual(expected.map((e) => Buffer.byteLength(e.join(''))));
      }),
      { numRuns: 200 },
    );
  });
});

describe('columns', () => {
  const cases: { kind: ColumnKind; value: unknown; text: string }[] = [
    { kind: 'string', value: 'tab\there\nnew \\ line', text: 'tab\\there\\nnew \\\\ line' },
    { kind: 'string', value: 42, text: '42' },
    { kind: 'int', value: 9_007_199_254_740_991, text: '9007199254740991' },
    { kind: 'int', value: -12, text: '-12' },
    { kind: 'int', value: 1.5, text: '\\N' },
    { kind: 'int', value: true, text: '\\N' },
    { kind: 'float', value: 1.25, text: '1.25' },
    { kind: 'float', value: '1.25', text: '\\N' },
    { kind: 'bool', value: false, text: 'false' },
    { kind: 'bool', value: 'false', text: '\\N' },
    { kind: 'bool', value: 1, text: '\\N' },
    { kind: 'timestamp', value: 1_764_672_000, text: '2025-12-02 10:40:00' },
    { kind: 'timestamp', value: '1764672000', text: '\\N' },
    { kind: 'timestamp', value: 1e15, text: '\\N' },
    { kind: 'timestamp_ms', value: 1_764_672_000_007, text: '2025-12-02 10:40:00.007' },
    { kind: 'timestamp_ms', value: -1, text: '1969-12-31 23:59:59.999' },
    { kind: 'timestamp_ms', value: '1764672000007', text: '\\N' },
    { kind: 'timestamp_ms', value: 1e20, text: '\\N' },
    { kind: 'id', value: 'cus_1', text: 'cus_1' },
    { kind: 'id', value: { id: 'cus_2', object: 'customer' }, text: 'cus_2' },
    { kind: 'id', value: { object: 'customer' }, text: '\\N' },
    { kind: 'json', value: { a: [1, 'x\ty'] }, text: '{"a":[1,"x\\\\ty"]}' },
    { kind: 'strings', value: ["it's", 'a\\b', 'c\td'], text: "['it\\'s','a\\\\b','c\\td']" },
    { kind: 'strings', value: 'not a list', text: '[]' },
    { kind: 'strings', value: null, text: '[]' },
  ];

  test.each(cases)('$kind: $value → $text', ({ kind, value, text }) => {
    const columns = [kitColumn('v', kind)];
    expect(objectRow(columns, { v: value }, 7n, false)).toBe(`${text}\t7\t0\n`);
  });

  test('each kind has its ClickHouse type; nested paths; missing values are NULL (a missing list is [])', () => {
    const columns = (['string', 'int', 'float', 'bool', 'timestamp', 'timestamp_ms', 'id', 'json', 'strings'] as ColumnKind[]).map((k) => kitColumn(k, k));
    expect(Object.fromEntries(columns.map((c) => [c.name, c.type]))).toEqual({
      string: 'Nullable(String)',
      int: 'Nullable(Int64)',
      float: 'Nullable(Float64)',
      bool: 'Nullable(Bool)',
      timestamp: "Nullable(DateTime64(0, 'UTC'))",
      timestamp_ms: "Nullable(DateTime64(3, 'UTC'))",
      id: 'Nullable(String)',
      json: 'Nullable(String)',
      strings: 'Array(String)',
    });
    expect(kitColumn('id', 'string', { nullable: false }).type).toBe('String');
    const deep = kitColumn('last_visit', 'timestamp_ms', { path: ['metadata', 'auto', 'lastvisit'] });
    expect(objectRow([deep], { metadata: { auto: { lastvisit: 1000 } } }, 1n, true)).toBe('1970-01-01 00:00:01.000\t1\t1\n');
    expect(objectRow([deep], { metadata: { auto: 'x' } }, 1n, false)).toBe('\\N\t1\t0\n');
    expect(objectRow(columns, {}, 1n, false)).toBe(`${Array(8).fill('\\N').join('\t')}\t[]\t1\t0\n`);
    expect(rowColumns(columns).slice(-2)).toEqual(['_tributary_version', '_tributary_is_deleted']);
  });

  describe('as the warehouse reads them', () => {
    let dataDir: string;
    let wh: Warehouse;
    beforeAll(async () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-kit-'));
      wh = await openWarehouse({ user: 'default', password: '', database: 'tributary', dataDir });
    });
    afterAll(async () => {
      await wh?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    test('every case lands as the value it stands for', async () => {
      const columns = cases.map(({ kind }, i) => kitColumn(`c${i}`, kind));
      const ddl = [...columns.map((c) => `${c.name} ${c.type}`), '_tributary_version UInt64', '_tributary_is_deleted UInt8'].join(', ');
      await wh.command(`CREATE TABLE tributary.kit (${ddl}) ENGINE = MergeTree ORDER BY tuple()`);
      const object = Object.fromEntries(cases.map(({ value }, i) => [`c${i}`, value]));
      await wh.insertBytes('kit', rowColumns(columns), Buffer.from(objectRow(columns, object, 3n, false)));
      const [row] = await wh.queryRows<Record<string, unknown>>(`SELECT ${columns.map((c) => `toJSONString(${c.name}) AS ${c.name}`).join(', ')} FROM tributary.kit`, { settings: { output_format_json_quote_64bit_integers: 0 } });
      const landed = cases.map((_, i) => JSON.parse(String(row[`c${i}`])));
      expect(landed).toEqual([
        'tab\there\nnew \\ line', '42', 9_007_199_254_740_991, -12, null, null, 1.25, null, false, null, null,
        '2025-12-02 10:40:00', null, null, '2025-12-02 10:40:00.007', '1969-12-31 23:59:59.999', null, null,
        'cus_1', 'cus_2', null, '{"a":[1,"x\\ty"]}', ["it's", 'a\\b', 'c\td'], [], [],
      ]);
    });
  });
});

/** A local API: each request is answered by the next scripted handler (the last one repeats). */
interface Seen {
  method: string;
  url: URL;
  body: string;
}
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void;

async function startApi() {
  const seen: Seen[] = [];
  let script: Handler[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? 'GET', url: new URL(req.url ?? '/', 'http://api'), body: Buffer.concat(chunks).toString() };
      seen.push(s);
      const handler = script.length > 1 ? script.shift()! : script[0];
      handler(req, res, s);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    answer(...handlers: Handler[]) {
      script = handlers;
      seen.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
const reset: Handler = (req) => req.socket.destroy();
/** Never answers: only the client's timeout ends the request. */
const silent: Handler = () => undefined;

describe('HttpApi', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  const client = (opts: Partial<ConstructorParameters<typeof HttpApi>[0]> = {}) =>
    new HttpApi({ baseUrl: `${api.url}/base/`, headers: { 'x-api-key': 'k1' }, timeoutMs: 2_000, maxBackoffMs: 20, ...opts });

  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.stop());

  test('429 without Retry-After: backed off and retried until it goes through, heartbeating while it waits', async () => {
    api.answer(json(429, { error: 'slow down' }), json(429, {}), json(429, {}), json(200, { ok: true, echo: 1 }));
    let beats = 0;
    const got = await client({ transientAttempts: 0 }).json('POST', '/things', { body: { q: 1 }, query: { a: 'b c' }, onWait: () => beats++ });
    expect(got).toEqual({ ok: true, echo: 1 });
    expect(api.seen).toHaveLength(4);
    expect(beats).toBeGreaterThanOrEqual(3);
    expect(api.seen[3]).toMatchObject({ method: 'POST', body: '{"q":1}' });
    expect(api.seen[3].url.pathname).toBe('/base/things');
    expect(api.seen[3].url.searchParams.get('a')).toBe('b c');
  });

  test('429 with Retry-After: the next attempt waits as long as the API asks, not the short back-off', async () => {
    const at: number[] = [];
    const stamp =
      (h: Handler): Handler =>
      (req, res, s) => {
        at.push(Date.now());
        h(req, res, s);
      };
    api.answer(stamp(json(429, {}, { 'retry-after': '1' })), stamp(json(200, [1])));
    expect(await client().json('GET', '/x')).toEqual([1]);
    expect(api.seen).toHaveLength(2);
    // maxBackoffMs is 20 ms: only Retry-After explains a gap of a second.
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(950);
  });

  test('5xx and a reset connection are retried', async () => {
    api.answer(json(503, { error: 'down' }), reset, json(502, 'bad gateway'), json(200, { fine: true }));
    expect(await client().json('GET', '/x')).toEqual({ fine: true });
    expect(api.seen).toHaveLength(4);
  });

  test('no answer within timeoutMs: retried; still none after the attempts: ApiTimeout', async () => {
    api.answer(silent, json(200, { late: false }));
    expect(await client({ timeoutMs: 150 }).json('GET', '/slow')).toEqual({ late: false });
    expect(api.seen).toHaveLength(2);

    api.answer(silent);
    await expect(client({ timeoutMs: 150, transientAttempts: 2 }).json('GET', '/slow')).rejects.toBeInstanceOf(ApiTimeout);
    expect(api.seen).toHaveLength(3);
  });

  test('a body that stalls mid-stream times out too', async () => {
    api.answer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[1,2,');
    });
    const items: unknown[] = [];
    await expect(
      (async () => {
        for await (const item of client({ timeoutMs: 150 }).jsonItems('GET', '/stall')) items.push(item);
      })(),
    ).rejects.toBeInstanceOf(ApiTimeout);
    expect(items).toEqual([1, 2]);
  });

  test('401: ApiHttpError at once, with the status and the body', async () => {
    api.answer(json(401, { message: 'Invalid integration key' }));
    const err = await client().json('GET', '/secret').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiHttpError);
    expect(err).toMatchObject({ status: 401, body: '{"message":"Invalid integration key"}', method: 'GET', path: '/secret' });
    expect(api.seen).toHaveLength(1);
  });

  test('jsonItems streams the array under its key', async () => {
    api.answer(json(200, { startTime: 1, results: [{ id: 'a' }, { id: 'b' }], more: { results: ['x'] } }));
    const items: unknown[] = [];
    for await (const item of client().jsonItems('POST', '/agg', { at: 'results', body: {} })) items.push(item);
    expect(items).toEqual([{ id: 'a' }, { id: 'b' }]);
  });

  test('keysetItems: a page broken off mid-stream resumes after its last whole item; none lost or repeated', async () => {
    // Keys with quotes and backslashes, sorted as strings.
    const all = Array.from({ length: 23 }, (_, i) => ({ id: `k${String(i).padStart(2, '0')}${i % 5 === 0 ? '"\\' : ''}`, n: i })).sort((a, b) => (a.id < b.id ? -1 : 1));
    let broken = false;
    api.answer((_req, res, s) => {
      const after = s.url.searchParams.get('after');
      const limit = Number(s.url.searchParams.get('limit'));
      const page = all.filter((x) => after === null || x.id > after).slice(0, limit);
      res.writeHead(200, { 'content-type': 'application/json' });
      if (!broken && after !== null) {
        // The second page: four whole items, half of the fifth, then the connection drops.
        broken = true;
        const text = JSON.stringify(page);
        const cut = text.indexOf(JSON.stringify(page[4])) + 7;
        res.write(text.slice(0, cut), () => res.socket?.destroy());
        return;
      }
      res.end(JSON.stringify(page));
    });
    const paged = client();
    const got: { item: { id: string; n: number }; key: string }[] = [];
    for await (const x of keysetItems<{ id: string; n: number }>({
      limit: 10,
      keyOf: (item) => item.id,
      page: (after, limit) => paged.jsonItems('GET', '/items', { query: { ...(after === undefined ? {} : { after }), limit: String(limit) } }) as AsyncIterable<{ id: string; n: number }>,
      maxBackoffMs: 20,
    })) {
      got.push(x);
    }
    expect(got.map((x) => x.item)).toEqual(all);
    expect(got.map((x) => x.key)).toEqual(all.map((x) => x.id));
    const afters = api.seen.map((s) => s.url.searchParams.get('after'));
    // First page, the broken second page, the second page again after its fourth item, then on.
    expect(afters.slice(0, 3)).toEqual([null, all[9].id, all[13].id]);
    expect(broken).toBe(true);
  });

  test('keysetItems: a page request that keeps failing is retried by the client only, not again by the paging (attempts add, never multiply)', async () => {
    api.answer(json(503, { error: 'down' }));
    const paged = client({ transientAttempts: 3 });
    const err = await (async () => {
      for await (const _ of keysetItems<{ id: string }>({
        limit: 2,
        keyOf: (x) => x.id,
        page: () => paged.jsonItems('GET', '/items') as AsyncIterable<{ id: string }>,
        attempts: 4,
        maxBackoffMs: 20,
      }));
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiHttpError);
    // The first request and the client's 3 retries; before, each of the paging's 4 retries asked 4 times again (20).
    expect(api.seen).toHaveLength(4);
  });

  test('keysetItems starts after a stored key and stops at a short page', async () => {
    const all = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id }));
    api.answer((_req, res, s) => {
      const after = s.url.searchParams.get('after');
      json(200, all.filter((x) => after === null || x.id > after).slice(0, 2))(_req, res, s);
    });
    const paged = client();
    const keys: string[] = [];
    for await (const { key } of keysetItems<{ id: string }>({
      after: 'a',
      limit: 2,
      keyOf: (x) => x.id,
      page: (after, limit) => paged.jsonItems('GET', '/items', { query: { after: after!, limit: String(limit) } }) as AsyncIterable<{ id: string }>,
    }))
      keys.push(key);
    expect(keys).toEqual(['b', 'c', 'd', 'e']);
    expect(api.seen.map((s) => s.url.searchParams.get('after'))).toEqual(['a', 'c', 'e']);
  });
});
