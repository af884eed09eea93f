import { fromZod } from '../api/errors';
import fc from 'fast-check';
import { ApiHttpError, fieldText, JsonArrayScanner, memberJson, rowColumns, type KitColumn } from '../connectors/kit';
import { AggregationRefused, baseUrl, pendoError, setupError } from '../connectors/pendo/client';
import { pendoConfigSchema } from '../connectors/pendo/config';
import { aggregationBody, aggregationPipeline, quoteLiteral } from '../connectors/pendo/pipeline';
import { incrementalCursor } from '../connectors/pendo/read';
import { pendoRow } from '../connectors/pendo/rows';
import { spec } from '../connectors/pendo/spec';
import { pendoTable, PENDO_TABLES } from '../connectors/pendo/tables';
import { connectorFor } from '../connectors/registry';
import { SourceError, SourceRefused } from '../connectors/types';
import { pendoConnector } from '../connectors/pendo';
import { generatedVisitors, makeAccount, makeVisitor, startPendoFake, type PendoFake } from './support/pendo-fake';

/**
 * The Pendo connector's pure parts: the aggregation requests it sends, how Pendo objects land as typed
 * warehouse rows, and how bad configuration is named. Requests against a Pendo-like server are in
 * pendo.e2e.test.ts.
 */

/** A rendered row as { column: TabSeparated text }. */
function rendered(table: string, object: Record<string, unknown>): Record<string, string> {
  const columns = pendoTable(table)!.columns;
  const line = pendoRow(columns, object, 7n);
  expect(line.endsWith('\n')).toBe(true);
  const values = line.slice(0, -1).split('\t');
  const names = rowColumns(columns);
  expect(values).toHaveLength(names.length);
  return Object.fromEntries(names.map((n, i) => [n, values[i]]));
}

/** The values a filter stage's string literal stands for, read back as the grammar says (\" and \\ only). */
function unquote(literal: string): string {
  expect(literal).toMatch(/^"(?:[^"\\]|\\["\\])*"$/);
  return literal.slice(1, -1).replace(/\\(["\\])/g, '$1');
}

describe('aggregation pipeline', () => {
  test('a first page: source, sort on the key, limit — no filter', () => {
    expect(aggregationBody({ source: 'visitors', key: 'visitorId', limit: 5000 })).toEqual({
      response: { mimeType: 'application/json' },
      request: { pipeline: [{ source: { visitors: null } }, { sort: ['visitorId'] }, { limit: 5000 }] },
    });
  });

  test('resuming: a filter past the last id, after the sort', () => {
    expect(aggregationPipeline({ source: 'accounts', key: 'accountId', limit: 2, after: 'acme-9' })).toEqual([
      { source: { accounts: null } },
      { sort: ['accountId'] },
      { filter: 'accountId > "acme-9"' },
      { limit: 2 },
    ]);
  });

  test('ids with quotes and backslashes are escaped so the literal reads back as the id', () => {
    for (const id of ['say "hi"', 'C:\\Users\\x', 'end\\', '\\"', 'a"b\\"c', '', 'ünï "ç" 中文']) {
      const literal = quoteLiteral(id);
      expect(unquote(literal)).toBe(id);
      const [, , filter] = aggregationPipeline({ source: 'visitors', key: 'visitorId', limit: 10, after: id });
      expect(filter).toEqual({ filter: `visitorId > ${literal}` });
    }
    // A trailing backslash must not escape the closing quote.
    expect(quoteLiteral('end\\')).toBe('"end\\\\"');
    expect(quoteLiteral('a"b')).toBe('"a\\"b"');
  });

  test('incremental: the lastupdated filter comes right after the source, before the sort and the resume filter', () => {
    expect(aggregationPipeline({ source: 'visitors', key: 'visitorId', limit: 100, updatedSince: 1_700_000_000_123.9, after: 'v"1' })).toEqual([
      { source: { visitors: null } },
      { filter: 'metadata.auto.lastupdated >= 1700000000123' },
      { sort: ['visitorId'] },
      { filter: 'visitorId > "v\\"1"' },
      { limit: 100 },
    ]);
  });

  test('a stored incremental cursor: JSON with the run in flight, or a bare number taken as since', () => {
    expect(incrementalCursor(undefined)).toEqual({});
    expect(incrementalCursor('1700000000000')).toEqual({ since: 1_700_000_000_000 });
    expect(incrementalCursor('{"since":5,"run":{"from":1,"after":"x","max":9}}')).toEqual({ since: 5, run: { from: 1, after: 'x', max: 9 } });
    expect(() => incrementalCursor('{oops')).toThrow(/not valid JSON/);
  });
});

describe('rows are typed, not dumped', () => {
  // A visitor as the aggregation endpoint returns it (Pendo's documented metadata groups).
  const visitor = {
    visitorId: 'user-"42"\\x',
    metadata: {
      auto: {
        accountid: 'acme',
        accountids: ['acme', 'globex'],
        firstvisit: 1_500_000_000_000,
        lastvisit: 1_700_000_000_123,
        lastupdated: 1_700_000_100_000,
        idhash: 1234567890,
        lastbrowsername: 'Chrome',
        lastbrowserversion: '120.0',
        lastoperatingsystem: 'Mac OS X',
        lastservername: 'app.example.com',
        lastuseragent: 'Mozilla/5.0\t(Macintosh)',
        id: 'user-"42"\\x',
      },
      agent: { email: 'a@example.com', language: 'en-US' },
      custom: { plan: 'pro' },
      auto__323232: { lastvisit: 1_700_000_000_000 },
    },
  };

  test('visitor: key, metadata kept whole, common auto fields lifted with their types', () => {
    const row = rendered('visitors', visitor);
    expect(row.visitor_id).toBe('user-"42"\\\\x'); // TabSeparated escapes the backslash
    expect(JSON.parse(row.metadata.replace(/\\\\/g, '\\'))).toEqual(visitor.metadata);
    expect(row.accountid).toBe('acme');
    expect(JSON.parse(row.accountids)).toEqual(['acme', 'globex']);
    expect(row.firstvisit).toBe('2017-07-14 02:40:00.000');
    expect(row.lastvisit).toBe('2023-11-14 22:13:20.123');
    expect(row.lastupdated).toBe('2023-11-14 22:15:00.000');
    expect(row.idhash).toBe('1234567890');
    expect(row.lastbrowsername).toBe('Chrome');
    expect(row.lastuseragent).toBe('Mozilla/5.0\\t(Macintosh)');
    expect(row.nid).toBe('\\N'); // absent → NULL
    // A never-visited app's zero time is NULL in its lifted column, and stays 0 inside metadata.
    const fresh = rendered('visitors', { visitorId: 'v', metadata: { auto: { lastvisit: 0, lastupdated: 5 } } });
    expect(fresh.lastvisit).toBe('\\N');
    expect(JSON.parse(fresh.metadata)).toEqual({ auto: { lastvisit: 0, lastupdated: 5 } });
    expect(row._tributary_version).toBe('7');
    expect(row._tributary_is_deleted).toBe('0');
  });

  test('a row rendered from the scanned text equals the row rendered from the parsed object, byte for byte', () => {
    const tables = ['visitors', 'accounts', 'features', 'guides'].map((t) => pendoTable(t)!);
    const check = (text: string, expectRaw: boolean) => {
      const items = new JsonArrayScanner().pushItems(text);
      for (const item of items) {
        const object = item.value as Record<string, unknown>;
        for (const t of tables) expect(pendoRow(t.columns, object, 7n, item)).toBe(pendoRow(t.columns, object, 7n));
        // The fast path is what ran (the bench's visitors are JSON.stringify output): metadata is the text itself.
        if (expectRaw) expect(memberJson(item, 'metadata')).toBe(JSON.stringify(object.metadata));
      }
    };
    check(JSON.stringify([visitor, makeVisitor('v\\"1', 1_700_000_000_000, [-323232, 5]), generatedVisitors(3).visitor(2)]), true);
    check(JSON.stringify([visitor], null, 2), false);
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), fc.constantFrom(undefined, 1), (custom, indent) => {
        const v = makeVisitor('v"\\é', 1_700_000_000_123, [-323232], { custom });
        check(JSON.stringify([v, { ...v, group: custom, steps: [custom] }], null, indent), false);
      }),
      { numRuns: 300 },
    );
    // Numbers and escapes JSON.stringify writes differently from how they came: the parsed value is rendered.
    check('[{"visitorId":"v","metadata":{"custom":{"a":1e21,"b":-0,"c":12345678901234567890,"d":1.50,"e":"\\u00e9\\/"}}}]', false);
  });

  test('rows are what a plain per-column rendering writes (path walked per column, each value through fieldText)', () => {
    const plain = (columns: KitColumn[], object: Record<string, unknown>, version: bigint) => {
      const fields = columns.map((c) => {
        let v: unknown = object;
        for (const k of c.path ?? [c.sourceName]) v = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined;
        return c.kind === 'timestamp_ms' && v === 0 ? '\\N' : fieldText(c.kind, v);
      });
      return [...fields, String(version), '0'].join('\t') + '\n';
    };
    const auto = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.dictionary(fc.constantFrom('accountid', 'accountids', 'firstvisit', 'lastvisit', 'lastupdated', 'idhash', 'nid', 'lastuseragent'), fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constant(0), fc.integer({ min: -1e13, max: 1e13 }))));
    const metadata = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({ auto, custom: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }));
    fc.assert(
      fc.property(fc.string(), metadata, fc.jsonValue({ maxDepth: 2 }), (visitorId, md, group) => {
        for (const table of PENDO_TABLES) {
          const object = { visitorId, accountId: visitorId, id: visitorId, metadata: md, group, steps: group, createdAt: 0, appId: group };
          const text = JSON.stringify([object]);
          const [item] = new JsonArrayScanner().pushItems(text);
          expect(pendoRow(table.columns, object, 3n)).toBe(plain(table.columns, object, 3n));
          expect(pendoRow(table.columns, item.value as Record<string, unknown>, 3n, item)).toBe(plain(table.columns, object, 3n));
        }
      }),
      { numRuns: 300 },
    );
  });

  test('feature: epoch-ms times, appId an integer, flags bools, nested objects and arrays JSON text', () => {
    const feature = {
      id: 'feat-1',
      appId: -323232,
      name: 'Save button',
      kind: 'Feature',
      createdAt: 1_600_000_000_000,
      lastUpdatedAt: 1_650_000_000_500,
      createdByUser: { id: 'u1', username: 'ann', role: 8 },
      group: { id: 'g1', name: 'Core' },
      dirty: false,
      isCoreEvent: true,
      appWide: 'yes', // not a bool: NULL rather than a wrong value
      pageId: 'page-1',
      elementPathRules: ['button.save', '#save'],
      eventPropertyConfigurations: null,
    };
    const row = rendered('features', feature);
    expect(row.id).toBe('feat-1');
    expect(row.app_id).toBe('-323232');
    expect(row.created_at).toBe('2020-09-13 12:26:40.000');
    expect(row.last_updated_at).toBe('2022-04-15 05:20:00.500');
    expect(JSON.parse(row.created_by_user)).toEqual(feature.createdByUser);
    expect(JSON.parse(row.group)).toEqual(feature.group);
    expect(JSON.parse(row.element_path_rules)).toEqual(feature.elementPathRules);
    expect(row.dirty).toBe('false');
    expect(row.is_core_event).toBe('true');
    expect(row.app_wide).toBe('\\N');
    expect(row.event_property_configurations).toBe('\\N');
    expect(row.valid_through).toBe('\\N');
  });

  test('guide: publishedAt is a time, 0 (never) is NULL, steps JSON', () => {
    const guide = { id: 'g', appId: 1, state: 'public', publishedAt: 1_700_000_000_000, resetAt: 0, expiresAfter: 0, isMultiStep: true, steps: [{ id: 's1', rank: 0 }] };
    const row = rendered('guides', guide);
    expect(row.published_at).toBe('2023-11-14 22:13:20.000');
    expect(row.reset_at).toBe('\\N');
    expect(row.expires_after).toBe('\\N');
    expect(row.is_multi_step).toBe('true');
    expect(JSON.parse(row.steps)).toEqual([{ id: 's1', rank: 0 }]);
  });

  test('declared types: keys not nullable, times DateTime64(3, UTC), appId Int64, metadata a JSON string', () => {
    const type = (table: string, source: string) => pendoTable(table)!.columns.find((c) => c.sourceName === source)?.type;
    expect(type('visitors', 'visitorId')).toBe('String');
    expect(type('accounts', 'accountId')).toBe('String');
    for (const t of ['features', 'pages', 'guides']) {
      expect(type(t, 'id')).toBe('String');
      expect(type(t, 'createdAt')).toBe("Nullable(DateTime64(3, 'UTC'))");
      expect(type(t, 'appId')).toBe('Nullable(Int64)');
    }
    expect(type('visitors', 'lastupdated')).toBe("Nullable(DateTime64(3, 'UTC'))");
    expect(type('accounts', 'lastvisit')).toBe("Nullable(DateTime64(3, 'UTC'))");
    expect(type('visitors', 'metadata')).toBe('Nullable(String)');
    for (const t of PENDO_TABLES) {
      const names = t.columns.map((c) => c.name);
      expect(new Set(names).size).toBe(names.length);
      for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9_]*$/);
    }
  });
});

describe('configuration and errors name the field', () => {
  const details = (body: unknown) => {
    const parsed = pendoConfigSchema.safeParse(body);
    if (parsed.success) throw new Error(`accepted: ${JSON.stringify(body)}`);
    return fromZod(parsed.error).details;
  };

  test('a good config passes, the key trimmed', () => {
    expect(pendoConfigSchema.parse({ integration_key: ' k-1.us ', region: 'EU' })).toEqual({ integration_key: 'k-1.us', region: 'EU' });
  });

  test('an unknown region names the field and the choices', () => {
    expect(details({ integration_key: 'k', region: 'eu' })).toEqual([{ field: 'region', message: expect.stringMatching(/^region must be one of US, US1, EU, Japan, Australia/) }]);
    expect(details({ integration_key: 'k' })).toEqual([{ field: 'region', message: expect.stringMatching(/^region must be one of/) }]);
  });

  test('a missing or empty key names integration_key', () => {
    expect(details({ region: 'US' })).toEqual([{ field: 'integration_key', message: expect.stringMatching(/integration_key is required/) }]);
    expect(details({ integration_key: '  ', region: 'US' })).toEqual([{ field: 'integration_key', message: expect.stringMatching(/integration_key/) }]);
  });

  test('an unknown key is refused, with the known one it most likely meant', () => {
    expect(details({ integration_key: 'k', region: 'US', integraton_key: 'k' })).toEqual([
      { field: 'integraton_key', message: 'unknown field "integraton_key": did you mean "integration_key"?' },
    ]);
  });

  test('401/403 name the key and the region, and say a key from another region is the usual cause', () => {
    const config = { integration_key: 'k', region: 'Japan' as const };
    for (const status of [401, 403]) {
      const err = pendoError(new ApiHttpError(status, '', 'GET', '/api/v1/page'), config);
      expect(err).toBeInstanceOf(SourceError);
      expect((err as SourceError).field).toBe('integration_key');
      expect((err as Error).message).toMatch(/integration_key/);
      expect((err as Error).message).toMatch(/Japan \(app\.jpn\.pendo\.io\)/);
      expect((err as Error).message).toMatch(/another region is the usual cause/);
    }
    const refused = pendoError(new ApiHttpError(403, '', 'POST', '/api/v1/aggregation'), config, true);
    expect(refused).toBeInstanceOf(AggregationRefused);
    expect((refused as Error).message).toMatch(/"Allow Write Access"/);
    const other = new ApiHttpError(500, '', 'GET', '/api/v1/page');
    expect(pendoError(other, config)).toBe(other); // a sync retries it
  });

  test('setup calls turn every failure from Pendo into a SourceError (a 400), an unreachable host naming the region', () => {
    const config = { integration_key: 'k', region: 'EU' as const };
    const status = setupError(new ApiHttpError(502, 'Bad Gateway', 'GET', '/api/v1/page'), config, 'GET /api/v1/page');
    expect(status).toBeInstanceOf(SourceError);
    expect((status as Error).message).toBe('Pendo answered GET /api/v1/page with HTTP 502 in region EU: Bad Gateway');
    const unreachable = setupError(new TypeError('fetch failed'), config, 'GET /api/v1/page') as SourceError;
    expect(unreachable).toBeInstanceOf(SourceError);
    expect(unreachable.field).toBe('region');
    expect(unreachable.message).toMatch(/^Could not reach Pendo at .*app\.eu\.pendo\.io.*region EU/);
    const bug = new RangeError('ours');
    expect(setupError(bug, config, 'GET /api/v1/page')).toBe(bug);
  });

  test('regions map to their hosts, through the test template when set', () => {
    const before = process.env.TRIBUTARY_PENDO_API_URL;
    try {
      delete process.env.TRIBUTARY_PENDO_API_URL;
      expect(baseUrl('US')).toBe('https://app.pendo.io');
      expect(baseUrl('US1')).toBe('https://us1.app.pendo.io');
      expect(baseUrl('Australia')).toBe('https://app.au.pendo.io');
      process.env.TRIBUTARY_PENDO_API_URL = 'http://127.0.0.1:5555/{host}';
      expect(baseUrl('EU')).toBe('http://127.0.0.1:5555/app.eu.pendo.io');
    } finally {
      if (before === undefined) delete process.env.TRIBUTARY_PENDO_API_URL;
      else process.env.TRIBUTARY_PENDO_API_URL = before;
    }
  });

  test('the wizard entry: Pendo, alpha, not featured, a secret key and the five regions', () => {
    expect(connectorFor('Pendo')?.spec).toBe(spec);
    expect(spec).toMatchObject({ name: 'Pendo', featured: false, unreleasedSource: false });
    expect(spec.caption).toMatch(/alpha/i);
    const [key, region] = spec.fields;
    expect(key).toMatchObject({ name: 'integration_key', type: 'password', secret: true, required: true });
    expect(region).toMatchObject({ name: 'region', type: 'select', required: true });
    expect(region.options!.map((o) => o.value)).toEqual(['US', 'US1', 'EU', 'Japan', 'Australia']);
  });
});

describe('against the local Pendo API', () => {
  let fake: PendoFake;
  const config = { integration_key: 'eu-key-for-unit-tests', region: 'EU' as const };
  const saved = { url: process.env.TRIBUTARY_PENDO_API_URL, rps: process.env.TRIBUTARY_PENDO_RPS };

  beforeAll(async () => {
    fake = await startPendoFake();
    fake.addKey(config.integration_key, 'app.eu.pendo.io');
    process.env.TRIBUTARY_PENDO_API_URL = fake.apiUrl;
    process.env.TRIBUTARY_PENDO_RPS = '1000';
    for (let i = 0; i < 7; i++) {
      const v = makeVisitor(`v${i}`, 1_700_000_000_000 + i, [-323232]);
      // Three never updated: Pendo leaves lastupdated out (or null).
      if (i % 3 === 0) delete v.metadata.auto.lastupdated;
      if (i === 1) v.metadata.auto.lastupdated = null;
      fake.putVisitor(v);
    }
    for (let i = 0; i < 4; i++) fake.putAccount(makeAccount(`a${i}`, 1_700_000_000_000));
  });
  afterAll(async () => {
    await fake.stop();
    for (const [k, v] of [['TRIBUTARY_PENDO_API_URL', saved.url], ['TRIBUTARY_PENDO_RPS', saved.rps]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  test('countNullCursor: visitors and accounts an incremental filter on lastupdated never matches, counted by Pendo', async () => {
    expect(await pendoConnector.countNullCursor!(config, 'visitors', 'lastupdated')).toBe(4);
    expect(await pendoConnector.countNullCursor!(config, 'accounts', 'lastupdated')).toBe(0);
    const asked = fake.requests.filter((r) => r.path === '/api/v1/aggregation').map((r) => r.pipeline);
    expect(asked[0]).toEqual([{ source: { visitors: null } }, { filter: 'metadata.auto.lastupdated == null' }, { count: null }]);
    // Lists are full refresh only: nothing to count.
    expect(await pendoConnector.countNullCursor!(config, 'features', 'lastupdated')).toBe(0);
  });

  test('a key refused in the middle of a read is a SourceRefused: the activity fails the run at once instead of retrying it', async () => {
    const columns = await pendoConnector.describe(config, 'visitors');
    fake.inject({ kind: 'status', status: 401, body: 'Not authorized' }, 1, 'aggregation');
    const err = await (async () => {
      for await (const _ of pendoConnector.read(config, { table: 'visitors', mode: 'full_refresh', columns, version: 1n }));
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceRefused);
    expect((err as Error).message).toMatch(/rejected integration_key in region EU/);
  });
});
