import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PENDO_TABLES } from '../connectors/pendo/tables';
import type { DevServer } from '../temporal/dev-server';
import { makeAccount, makeFeature, makeGuide, makePage, makeVisitor, startPendoFake, type PendoFake } from './support/pendo-fake';
import { startTestTemporal } from './support/temporal-dev';
import { historyText, withTemporal } from './support/temporal-history';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';

/**
 * The Pendo source end to end: the real platform (one for the whole file, Temporal apart from it so it can be
 * killed) against a local server that follows Pendo's documented API, reached through the connector's production
 * client. Every table by full refresh with its values checked in the warehouse, incremental on visitors and
 * accounts (and the full refresh a deletion needs), a wrong-region key, a read-only key, 429s / a 5xx / a reset /
 * a slow page waited out, and a SIGKILL in the middle of loading visitors.
 */
const DEFAULT_APP = -323232;
const SECOND_APP = 5629499534213120;
const AT = Date.UTC(2026, 9, 1, 12, 0, 0, 123);
const PAGE_SIZE = 100;
const KEY = 'f3c1a2b4-5d6e-4f70-8a9b-0c1d2e3f4a5b.eu';
const READ_ONLY_KEY = '0a1b2c3d-4e5f-4061-9728-394a5b6c7d8e.eu';
/** Real ids hold quotes and backslashes; paging past them must escape them. */
const ODD_IDS = ['he said "hi"', 'C:\\Users\\pat', 'both\\"\\', "it's", 'ünï ✓'];

type Entry = { name: string; should_sync: boolean; sync_type?: string; incremental_field?: string; incremental_field_type?: string; sync_frequency?: string };

describe('Pendo source (local Pendo API)', () => {
  let fake: PendoFake;
  let temporal: DevServer;
  let temporalDir: string;
  let dataDir: string;
  let platform: RunningPlatform;
  let incremental: { field: string; type: string };
  const sources: Record<string, Record<string, string>> = {};

  const env = () => ({
    TEMPORAL_ADDRESS: temporal.address,
    TRIBUTARY_PENDO_API_URL: fake.apiUrl,
    TRIBUTARY_PENDO_PAGE_SIZE: String(PAGE_SIZE),
    TRIBUTARY_PENDO_RPS: '1000',
    TRIBUTARY_BATCH_BYTES: String(32 * 1024),
    // Loads past 250 visitors go on with a render thread (connectors/kit/row-thread.ts): the crash and resume tests cover it.
    TRIBUTARY_RENDER_THREAD_AFTER: '250',
    // Heartbeats reach Temporal every 100 ms, so a worker killed mid-load has left a position to resume from.
    TRIBUTARY_HEARTBEAT_THROTTLE_MS: '100',
    // ... and the killed load is retried 5 s after its last heartbeat, not 30 s.
    TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'debug',
  });

  function schemas(enabled: Record<string, string>): Entry[] {
    return PENDO_TABLES.map((t) => {
      const type = enabled[t.name];
      if (!type) return { name: t.name, should_sync: false };
      const cursor = type === 'incremental' ? { incremental_field: incremental.field, incremental_field_type: incremental.type } : {};
      return { name: t.name, should_sync: true, sync_type: type, sync_frequency: '24hour', ...cursor };
    });
  }

  async function createSource(prefix: string, enabled: Record<string, string>, key = KEY) {
    const res = await platform.api('POST', '/api/sources', { source_type: 'Pendo', prefix, payload: { integration_key: key, region: 'EU', schemas: schemas(enabled) } });
    expect(res.status).toBe(201);
    sources[prefix] = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    for (const name of Object.keys(enabled)) {
      const job = await waitForJobs(platform, sources[prefix][name], 1);
      expect({ table: name, status: job.status, error: job.latest_error }).toEqual({ table: name, status: 'Completed', error: null });
    }
  }

  async function syncNow(prefix: string, table: string, jobs: number) {
    expect((await platform.api('POST', `/api/schemas/${sources[prefix][table]}/sync`)).status).toBe(202);
    const job = await waitForJobs(platform, sources[prefix][table], jobs, 240_000);
    expect({ status: job.status, error: job.latest_error }).toEqual({ status: 'Completed', error: null });
    return job;
  }

  const col = async (table: string, column: string) => (await query(platform, `SELECT ${column} AS v FROM ${table} FINAL ORDER BY v`)).map((r) => r.v);
  const one = async (sql: string) => (await query(platform, sql))[0];
  const aggregations = (source: string, since: number) =>
    fake.requests.filter((r) => r.path === '/api/v1/aggregation' && r.at >= since && r.status === 200 && JSON.stringify(r.pipeline?.[0]) === JSON.stringify({ source: { [source]: null } }));

  beforeAll(async () => {
    fake = await startPendoFake();
    fake.appIds = [DEFAULT_APP, SECOND_APP];
    fake.addKey(KEY, 'app.eu.pendo.io');
    fake.addKey(READ_ONLY_KEY, 'app.eu.pendo.io', { readOnly: true });
    const odd = (i: number, prefix: string) => (i < ODD_IDS.length ? `${prefix}${ODD_IDS[i]}` : `${prefix}${String(i).padStart(4, '0')}`);
    for (let i = 0; i < 30; i++) fake.features.push(makeFeature(odd(i, 'f:'), i % 3 ? DEFAULT_APP : SECOND_APP, AT + i * 1000));
    for (let i = 0; i < 20; i++) fake.pages.push(makePage(odd(i, 'p:'), i % 2 ? DEFAULT_APP : SECOND_APP, AT + i * 1000));
    for (let i = 0; i < 12; i++) fake.guides.push(makeGuide(odd(i, 'g:'), i % 2 ? DEFAULT_APP : SECOND_APP, AT + i * 1000, { state: ['public', 'draft', 'disabled', 'staged'][i % 4] }));
    for (let i = 0; i < 1234; i++) fake.putVisitor(makeVisitor(odd(i, 'v:'), AT - i * 60_000, [DEFAULT_APP, SECOND_APP], { accountId: `acct ${i % 150}` }));
    for (let i = 0; i < 150; i++) fake.putAccount(makeAccount(i < ODD_IDS.length ? ODD_IDS[i] : `acct ${i}`, AT - i * 60_000));
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporal = await startTestTemporal(temporalDir);
    dataDir = makeDataDir('pendo');
    platform = await startPlatform({ dataDir, env: env() });
  }, 240_000);

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await fake?.stop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a key from another region: db-schema is a 400 naming integration_key and the region; nothing is stored', async () => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Pendo', integration_key: KEY, region: 'US' });
    expect(res.status).toBe(400);
    expect(res.body.details.map((d: { field?: string }) => d.field)).toContain('integration_key');
    expect(res.body.message).toMatch(/region/i);
    expect(res.body.message).toMatch(/\bUS\b/);
    expect(JSON.stringify(res.body)).not.toContain(KEY);
    // It went to the US host, which does not know the EU key.
    expect(fake.requests.some((r) => r.host === 'app.pendo.io' && r.status === 401)).toBe(true);
    const create = await platform.api('POST', '/api/sources', { source_type: 'Pendo', prefix: 'wrong', payload: { integration_key: KEY, region: 'US', schemas: [] } });
    expect(create.status).toBe(400);
    expect((await platform.api('GET', '/api/sources')).body.results).toEqual([]);
  });

  test('db-schema lists the five tables, typed, keyed as PostHog keys them; visitors and accounts offer incremental', async () => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Pendo', integration_key: KEY, region: 'EU' });
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.map((t: { table: string }) => [t.table, t]));
    expect(Object.keys(byName).sort()).toEqual(['accounts', 'features', 'guides', 'pages', 'visitors']);
    expect(byName.visitors.detected_primary_keys).toEqual(['visitorId']);
    expect(byName.accounts.detected_primary_keys).toEqual(['accountId']);
    for (const t of ['features', 'pages', 'guides']) {
      expect(byName[t].detected_primary_keys).toEqual(['id']);
      expect(byName[t].incremental_available).toBe(false);
    }
    expect(byName.visitors.incremental_available).toBe(true);
    expect(byName.accounts.incremental_available).toBe(true);
    incremental = { field: byName.visitors.incremental_fields[0].field, type: byName.visitors.incremental_fields[0].type };
    expect(incremental.field).toMatch(/lastupdated/);
    expect(byName.visitors.description).not.toMatch(/Allow Write Access/);
  });

  test('a read-only key: visitors and accounts described as needing "Allow Write Access", the other tables sync', async () => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Pendo', integration_key: READ_ONLY_KEY, region: 'EU' });
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.map((t: { table: string; description: string }) => [t.table, t.description]));
    expect(byName.visitors).toMatch(/Allow Write Access/);
    expect(byName.accounts).toMatch(/Allow Write Access/);
    for (const t of ['features', 'pages', 'guides']) expect(byName[t]).not.toMatch(/Allow Write Access/);
    expect(fake.requests.some((r) => r.key === READ_ONLY_KEY && r.path === '/api/v1/aggregation' && r.status === 403)).toBe(true);

    await createSource('pendo_ro', { features: 'full_refresh', pages: 'full_refresh', guides: 'full_refresh' }, READ_ONLY_KEY);
    expect(await col('pendo_ro_features', 'id')).toEqual(fake.features.map((f) => f.id).sort());
    expect(await col('pendo_ro_guides', 'id')).toEqual(fake.guides.map((f) => f.id).sort());
  });

  test('a key revoked in the middle of a sync: the run fails at once saying so, the 401 is not retried', async () => {
    const revoked = 'b7e2c9d0-1f3a-4b5c-8d6e-7f8091a2b3c4.eu';
    fake.addKey(revoked, 'app.eu.pendo.io');
    const t0 = Date.now();
    // Pages slow enough that the key can be revoked while visitors are being read.
    fake.slow({ beforeMs: 250, path: 'aggregation' });
    try {
      const res = await platform.api('POST', '/api/sources', { source_type: 'Pendo', prefix: 'pendo_revoked', payload: { integration_key: revoked, region: 'EU', schemas: schemas({ visitors: 'full_refresh' }) } });
      expect(res.status).toBe(201);
      const schemaId = res.body.schemas.find((s: { name: string }) => s.name === 'visitors').id;
      const pagesRead = () => fake.requests.filter((r) => r.key === revoked && r.path === '/api/v1/aggregation' && r.at >= t0 && r.status === 200 && r.pipeline?.some((st) => 'sort' in st)).length;
      for (const until = Date.now() + 60_000; pagesRead() < 2; ) {
        if (Date.now() > until) throw new Error('the sync read no visitor pages');
        await new Promise((r) => setTimeout(r, 20));
      }
      fake.removeKey(revoked);
      const job = await waitForJobs(platform, schemaId, 1);
      expect(job.status).toBe('Failed');
      expect(job.latest_error).toMatch(/rejected integration_key in region EU/);
      // One refused request: the activity did not try again (it would get the same 401 each time).
      expect(fake.requests.filter((r) => r.key === revoked && r.at >= t0 && r.status === 401)).toHaveLength(1);
      // The later tests count the file's sources: this one goes.
      expect((await platform.api('DELETE', `/api/sources/${res.body.id}?delete_data=true`)).status).toBe(200);
    } finally {
      fake.slow({});
    }
  });

  test('full refresh of every table: every object of every app, typed columns, metadata groups kept whole and lifted', async () => {
    const since = Date.now();
    await createSource('pendo', { features: 'full_refresh', pages: 'full_refresh', guides: 'full_refresh', visitors: 'full_refresh', accounts: 'full_refresh' });

    // Every app of the subscription (read with expand=*), not only the default one.
    for (const [table, list] of [['features', fake.features], ['pages', fake.pages], ['guides', fake.guides]] as const) {
      expect(list.some((o) => o.appId === DEFAULT_APP) && list.some((o) => o.appId === SECOND_APP)).toBe(true);
      expect(await col(`pendo_${table}`, 'id')).toEqual(list.map((o) => o.id).sort());
      expect(fake.requests.some((r) => r.at >= since && r.path === `/api/v1/${table.slice(0, -1)}` && r.query.get('expand') === '*')).toBe(true);
    }
    expect(await col('pendo_visitors', 'visitor_id')).toEqual(fake.visitors().map((v) => v.visitorId));
    expect(await col('pendo_accounts', 'account_id')).toEqual(fake.accounts().map((a) => a.accountId));
    for (const id of ODD_IDS) expect(await col('pendo_accounts', 'account_id')).toContain(id);

    // Types as declared: epoch ms as DateTime64(3, 'UTC'), appId Int64, flags Bool, nested values JSON text.
    const types = Object.fromEntries(
      (await query(platform, `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'pendo_features'`)).map((r) => [r.name, r.type]),
    );
    expect(types.created_at).toMatch(/DateTime64\(3, 'UTC'\)/);
    expect(types.last_updated_at).toMatch(/DateTime64\(3, 'UTC'\)/);
    expect(types.app_id).toMatch(/Int64/);
    expect(types.is_core_event).toMatch(/Bool/);
    expect(types.dirty).toMatch(/Bool/);

    const f = fake.features.find((x) => x.id === `f:${ODD_IDS[0]}`)!;
    const feature = await one(
      `SELECT toUnixTimestamp64Milli(created_at) AS created, toString(last_updated_at) AS updated, toString(app_id) AS app, is_core_event AS core, name AS title,
              JSONExtractString(created_by_user, 'username') AS author, JSONExtractString(element_path_rules, 1) AS rule, JSONLength(element_path_rules) AS rule_count
       FROM pendo_features FINAL WHERE id = 'f:he said "hi"'`,
    );
    expect(feature).toEqual({
      created: String(f.createdAt),
      updated: '2026-10-01 12:00:01.123',
      app: String(SECOND_APP),
      core: f.isCoreEvent,
      title: f.name,
      author: 'pm@example.com',
      rule: f.elementPathRules[0],
      rule_count: '2',
    });
    const page = await one(`SELECT JSONExtractString(rules, 1, 'designerHint') AS hint FROM pendo_pages FINAL WHERE id = 'p:C:\\\\Users\\\\pat'`);
    expect(page.hint).toBe(fake.pages[1].rules[0].designerHint);
    const guide = await one(
      `SELECT state AS guide_state, toUnixTimestamp64Milli(published_at) AS published, JSONLength(steps) AS step_count, JSONExtractString(steps, 2, 'type') AS second, is_multi_step AS multi,
              toBool(JSONExtractBool(attributes, 'device', 'desktop')) AS desktop
       FROM pendo_guides FINAL WHERE id = 'g:0007'`,
    );
    const g = fake.guides[7];
    expect(guide).toEqual({ guide_state: g.state, published: String(g.publishedAt), step_count: '2', second: 'tooltip', multi: true, desktop: true });

    const v = fake.visitors().find((x) => x.visitorId === 'v:both\\"\\')!;
    const visitor = await one(
      `SELECT accountid AS account, toUnixTimestamp64Milli(lastvisit) AS visited_ms, toUnixTimestamp64Milli(lastupdated) AS updated_ms, lastbrowsername,
              JSONExtractString(metadata, 'agent', 'email') AS email, JSONExtractInt(metadata, 'auto__${SECOND_APP}', 'lastvisit') AS app_lastvisit,
              JSONExtractString(metadata, 'custom', 'plan') AS plan, JSONExtractString(metadata, 'salesforce', 'contact_id') AS sf,
              JSONExtractString(metadata, 'auto', 'lastuseragent') AS agent
       FROM pendo_visitors FINAL WHERE visitor_id = 'v:both\\\\"\\\\'`,
    );
    expect(visitor).toEqual({
      account: v.metadata.auto.accountid,
      visited_ms: String(v.metadata.auto.lastvisit),
      updated_ms: String(v.metadata.auto.lastupdated),
      lastbrowsername: 'Chrome',
      email: v.metadata.agent.email,
      app_lastvisit: String(v.metadata[`auto__${SECOND_APP}`].lastvisit),
      plan: 'pro',
      sf: v.metadata.salesforce.contact_id,
      agent: v.metadata.auto.lastuseragent,
    });

    // Paged by key: every page after the first filters past the previous page's last id, escaped.
    // (The create's key check also probes aggregation with a page of its own size.)
    const pages = aggregations('visitors', since).filter((r) => r.pipeline!.some((s) => s.limit === PAGE_SIZE));
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(1234 / PAGE_SIZE));
    // Every request the connector sent passed the fake's strict pipeline grammar (it answers 400 to anything else).
    expect(fake.requests.filter((r) => r.status === 400)).toEqual([]);
    const ids = fake.visitors().map((x) => x.visitorId);
    const resumed = pages.map((r) => r.pipeline!.find((s) => typeof s.filter === 'string' && s.filter.startsWith('visitorId >'))?.filter).filter(Boolean);
    expect(resumed).toContain(`visitorId > ${JSON.stringify(ids[PAGE_SIZE - 1])}`);
  });

  test('429s (no Retry-After), a 5xx, a connection reset mid-body and a slow page are waited out: the sync completes with every visitor', async () => {
    const since = Date.now();
    fake.rateLimit(3, 'aggregation');
    fake.inject({ kind: 'status', status: 503, body: 'Service Unavailable' }, 1, 'aggregation');
    fake.inject({ kind: 'destroy', afterBytes: 20_000 }, 1, 'aggregation');
    fake.inject({ kind: 'stall', afterBytes: 5_000, ms: 2_500 }, 1, 'aggregation');
    fake.slow({ beforeMs: 300, path: 'aggregation' });
    try {
      const job = await syncNow('pendo', 'visitors', 2);
      expect(job.warnings ?? []).toEqual([]);
    } finally {
      fake.slow({});
    }
    const calls = fake.requests.filter((r) => r.at >= since && r.path === '/api/v1/aggregation');
    expect(calls.filter((r) => r.status === 429).length).toBe(3);
    expect(calls.filter((r) => r.status === 503).length).toBe(1);
    expect(await col('pendo_visitors', 'visitor_id')).toEqual(fake.visitors().map((v) => v.visitorId));
    const n = await one(`SELECT count() AS n, uniqExact(visitor_id) AS u FROM pendo_visitors FINAL`);
    expect(n).toEqual({ n: '1234', u: '1234' });
  });

  test('incremental visitors and accounts: an updated one and a new one land, a deleted one stays until a full refresh drops it', async () => {
    await createSource('pendo_inc', { visitors: 'incremental', accounts: 'incremental' });
    expect(await col('pendo_inc_visitors', 'visitor_id')).toEqual(fake.visitors().map((v) => v.visitorId));
    expect(await col('pendo_inc_accounts', 'account_id')).toEqual(fake.accounts().map((a) => a.accountId));

    const now = Date.now();
    const changed = fake.visitors().find((v) => v.visitorId === `v:${ODD_IDS[1]}`)!;
    changed.metadata.custom.plan = 'enterprise';
    changed.metadata.auto.lastupdated = now;
    changed.metadata.auto.lastvisit = now;
    fake.putVisitor(changed);
    fake.putVisitor(makeVisitor('v:new "one"', now, [DEFAULT_APP]));
    const gone = 'v:0100';
    fake.removeVisitor(gone);
    const account = fake.accounts().find((a) => a.accountId === ODD_IDS[2])!;
    account.metadata.custom.tier = 'startup';
    account.metadata.auto.lastupdated = now;
    fake.putAccount(account);
    fake.putAccount(makeAccount('acct new', now));

    const since = Date.now();
    await syncNow('pendo_inc', 'visitors', 2);
    await syncNow('pendo_inc', 'accounts', 2);
    // Only what changed since the cursor was asked for.
    const incPages = aggregations('visitors', since).filter((r) => r.pipeline!.some((s) => s.limit === PAGE_SIZE));
    expect(incPages.length).toBeGreaterThan(0);
    expect(incPages.every((r) => r.pipeline!.some((s) => typeof s.filter === 'string' && /^metadata\.auto\.lastupdated >= \d+$/.test(s.filter)))).toBe(true);
    expect(incPages.length).toBeLessThan(3);

    const plan = await one(`SELECT JSONExtractString(metadata, 'custom', 'plan') AS plan, toUnixTimestamp64Milli(lastupdated) AS u FROM pendo_inc_visitors FINAL WHERE visitor_id = 'v:C:\\\\Users\\\\pat'`);
    expect(plan).toEqual({ plan: 'enterprise', u: String(now) });
    expect(await col('pendo_inc_visitors', 'visitor_id')).toContain('v:new "one"');
    const tier = await one(`SELECT JSONExtractString(metadata, 'custom', 'tier') AS tier FROM pendo_inc_accounts FINAL WHERE account_id = 'both\\\\"\\\\'`);
    expect(tier.tier).toBe('startup');
    expect(await col('pendo_inc_accounts', 'account_id')).toContain('acct new');
    // Incremental cannot see a deletion (Pendo keeps no record of it): the visitor stays …
    expect(await col('pendo_inc_visitors', 'visitor_id')).toContain(gone);
    // … until a full refresh, which reads everything again.
    await syncNow('pendo', 'visitors', 3);
    const full = await col('pendo_visitors', 'visitor_id');
    expect(full).not.toContain(gone);
    expect(full).toEqual(fake.visitors().map((v) => v.visitorId));
  });

  test('the integration key: masked in answers, in no log line and no workflow history', async () => {
    const list = (await platform.api('GET', '/api/sources')).body.results as { id: string; prefix: string }[];
    expect(list.map((x) => x.prefix).sort()).toEqual(['pendo', 'pendo_inc', 'pendo_ro']);
    for (const { id } of list) {
      const res = await platform.api('GET', `/api/sources/${id}`);
      expect(res.body.payload.integration_key).toBe('********');
      expect(res.body.payload.region).toBe('EU');
    }
    expect(platform.output()).not.toContain(KEY);
    let histories = 0;
    await withTemporal(temporal.address, async (client) => {
      for await (const w of client.workflow.list()) {
        const text = await historyText(client, w.workflowId, w.runId);
        histories++;
        expect(text).not.toContain(KEY);
        expect(text).not.toContain(READ_ONLY_KEY);
      }
    });
    expect(histories).toBeGreaterThan(10);
  });

  test('SIGKILL of the platform mid-load of visitors: after the restart the warehouse equals the source, no duplicates under FINAL', async () => {
    for (let i = 0; i < 3000; i++) fake.putVisitor(makeVisitor(`w:${String(i).padStart(5, '0')}${i % 97 === 0 ? '"\\' : ''}`, AT - i, [DEFAULT_APP], { accountId: `acct ${i % 150}` }));
    const expected = fake.visitors().map((v) => v.visitorId);
    fake.slow({ beforeMs: 150, path: 'aggregation' });
    const schemaId = sources.pendo.visitors;
    const done = (await platform.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results.filter((j: { status: string }) => j.status !== 'Running').length;
    const before = platform.output().length;
    const syncAt = Date.now();
    expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
    // Kill once this run has loaded several batches over at least 300 ms (several heartbeats have reached Temporal).
    const pattern = /"time":(\d+),[^\n]*"table":"pendo_visitors","batch":(\d+)/g;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const seen = [...platform.output().slice(before).matchAll(pattern)];
      if (seen.length >= 5 && Date.now() - Number(seen[0][1]) >= 300) break;
      if (Date.now() > deadline) throw new Error(`no visitor batches within 120 s:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const killedAt = Date.now();
    await platform.kill();
    // Mid-load: the last page had not been asked for yet.
    const served = aggregations('visitors', syncAt).filter((r) => r.pipeline!.some((s) => s.limit === PAGE_SIZE));
    expect(served.length).toBeLessThan(Math.ceil(expected.length / PAGE_SIZE));
    platform = await startPlatform({ dataDir, token: platform.token, env: env() });
    const job = await waitForJobs(platform, schemaId, done + 1, 240_000);
    fake.slow({});
    expect({ status: job.status, error: job.latest_error }).toEqual({ status: 'Completed', error: null });
    expect(await col('pendo_visitors', 'visitor_id')).toEqual(expected);
    expect(await one(`SELECT count() AS n, uniqExact(visitor_id) AS u FROM pendo_visitors FINAL`)).toEqual({ n: String(expected.length), u: String(expected.length) });
    // The retried attempt went on after the last id it had loaded, not from the first page.
    const first = aggregations('visitors', killedAt).filter((r) => r.pipeline!.some((s) => s.limit === PAGE_SIZE))[0];
    expect(first.pipeline!.some((s) => typeof s.filter === 'string' && s.filter.startsWith('visitorId > '))).toBe(true);
  });
});
