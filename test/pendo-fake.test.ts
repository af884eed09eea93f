import { generatedVisitors, makeVisitor, startPendoFake, type PendoFake } from './support/pendo-fake';

/**
 * The local Pendo the e2e tests and the bench rely on, held to what Pendo documents: keys bound to their region's
 * host, write access for aggregation, the pipeline stages checked strictly, filters over escaped strings, and a
 * generated mode that pages exactly as the stored one does.
 */
describe('the local Pendo API', () => {
  let fake: PendoFake;
  const ids = ['a', 'a"b', 'a\\b', 'a\\"', 'b', 'c "quoted" \\ end'];

  beforeAll(async () => {
    fake = await startPendoFake();
    fake.addKey('eu-key', 'app.eu.pendo.io');
    fake.addKey('eu-read-only', 'app.eu.pendo.io', { readOnly: true });
    for (const id of ids) fake.putVisitor(makeVisitor(id, 1_000 + id.length, [-323232]));
  });
  afterAll(() => fake.stop());

  const post = async (pipeline: unknown, key = 'eu-key', host = 'app.eu.pendo.io') => {
    const res = await fetch(`${fake.url}/${host}/api/v1/aggregation`, {
      method: 'POST',
      headers: { 'x-pendo-integration-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ response: { mimeType: 'application/json' }, request: { pipeline } }),
    });
    const text = await res.text();
    return { status: res.status, text, ids: res.status === 200 ? (JSON.parse(text).results as { visitorId: string }[]).map((v) => v.visitorId) : [] };
  };
  const source = { source: { visitors: null } };

  test('a key answers on its own region\'s host only; a read-only key may list but not aggregate', async () => {
    expect((await post([source], 'eu-key', 'app.pendo.io')).status).toBe(401);
    expect((await post([source], 'nobody')).status).toBe(401);
    expect((await post([source], 'eu-read-only')).status).toBe(403);
    const list = await fetch(`${fake.url}/app.eu.pendo.io/api/v1/page`, { headers: { 'x-pendo-integration-key': 'eu-read-only' } });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual([]);
  });

  test('unknown stages and malformed pipelines are 400s', async () => {
    for (const pipeline of [[], [{ sort: ['visitorId'] }], [source, { group: {} }], [source, { filter: 'visitorId >' }], [source, { filter: 'visitorId > "open' }], [source, { limit: -1 }], [source, { sort: 'visitorId' }], [{ source: { events: null } }], [source, source]]) {
      expect({ pipeline, status: (await post(pipeline)).status }).toEqual({ pipeline, status: 400 });
    }
  });

  test('sorted by id, a filter past an escaped id and a limit page through every visitor exactly once', async () => {
    const sorted = [...ids].sort();
    expect((await post([source, { sort: ['visitorId'] }])).ids).toEqual(sorted);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const stages = [source, { sort: ['visitorId'] }, ...(after === undefined ? [] : [{ filter: `visitorId > ${JSON.stringify(after)}` }]), { limit: 2 }];
      const page = (await post(stages)).ids;
      seen.push(...page);
      if (page.length < 2) break;
      after = page[page.length - 1];
    }
    expect(seen).toEqual(sorted);
    // Several filters, joined or not, with a number comparison on a nested field.
    const newer = await post([source, { filter: 'metadata.auto.lastupdated >= 1003 && visitorId > "a"' }, { sort: ['-visitorId'] }]);
    expect(newer.ids).toEqual(ids.filter((id) => 1_000 + id.length >= 1003 && id > 'a').sort().reverse());
  });

  test('generated visitors page from any id as stored ones would, and match their object form', async () => {
    const g = generatedVisitors(10_000);
    fake.generate(g);
    try {
      const page = await post([source, { sort: ['visitorId'] }, { filter: `visitorId > ${JSON.stringify(g.idOf(4_321))}` }, { limit: 3 }]);
      expect(page.ids).toEqual([g.idOf(4_322), g.idOf(4_323), g.idOf(4_324)]);
      expect(JSON.parse(page.text).results[0]).toEqual(g.visitor(4_322));
      expect((await post([source, { filter: `visitorId >= ${JSON.stringify(g.idOf(9_999))}` }])).ids).toEqual([g.idOf(9_999)]);
    } finally {
      fake.generate(undefined);
    }
  });

  test('faults: 429s without Retry-After, then a body cut off mid-way', async () => {
    fake.rateLimit(2, 'aggregation');
    for (let n = 0; n < 2; n++) {
      const res = await fetch(`${fake.url}/app.eu.pendo.io/api/v1/aggregation`, { method: 'POST', headers: { 'x-pendo-integration-key': 'eu-key', 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toBeNull();
      await res.text();
    }
    fake.inject({ kind: 'destroy', afterBytes: 100 }, 1, 'aggregation');
    await expect(post([source])).rejects.toThrow();
    expect((await post([source])).ids).toHaveLength(ids.length);
  });
});
