import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import type { DevServer } from '../temporal/dev-server';
import { startTestTemporal } from './support/temporal-dev';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { startStripeFake, type StripeFake } from './support/stripe-fake';
import { historyText, searchAttributes, withTemporal } from './support/temporal-history';

/**
 * Stripe webhooks through the public intake, signed with stripe.webhooks.generateTestHeaderString:
 * valid deliveries land, forged / expired / unsigned / tampered ones change nothing, duplicates and
 * out-of-order deliveries converge, the safety-net refresh drops what is gone, and a SIGKILL of the
 * platform while events arrive loses none that was answered 200. Temporal runs apart from the killed
 * process, as in production. The Stripe side is the local fake (see stripe-sync.e2e.test.ts).
 */
const HOUR_AGO = Math.floor(Date.now() / 1000) - 3600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Stripe webhooks', () => {
  let fake: StripeFake;
  let temporal: DevServer;
  let temporalDir: string;
  let dataDir: string;
  let platform: RunningPlatform;
  let token: string;
  let sourceId: string;
  let secret: string;
  let schemaIds: Record<string, string>;

  const env = () => ({
    TEMPORAL_ADDRESS: temporal.address,
    TRIBUTARY_STRIPE_API_URL: fake.url,
    TRIBUTARY_STRIPE_TEST_RPS: '100',
    TRIBUTARY_STRIPE_SETTLE_SECONDS: '1',
    TRIBUTARY_BATCH_BYTES: String(32 * 1024),
    // A load killed mid-listing is retried 5 s after its last heartbeat, not 30 s.
    TRIBUTARY_HEARTBEAT_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'debug',
  });
  const restart = async () => {
    platform = await startPlatform({ dataDir, token, env: env() });
  };

  /** Posts an event to the intake the way Stripe does; `sign` overrides the signature inputs. */
  async function deliver(event: Record<string, unknown>, sign: { secret?: string; timestamp?: number; header?: string | null; body?: string } = {}) {
    const payload = JSON.stringify(event);
    const header =
      sign.header !== undefined
        ? sign.header
        : Stripe.webhooks.generateTestHeaderString({ payload, secret: sign.secret ?? secret, timestamp: sign.timestamp ?? Math.floor(Date.now() / 1000) });
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (header !== null) headers['stripe-signature'] = header;
    const res = await fetch(`${platform.url}/webhooks/stripe/${sourceId}`, { method: 'POST', headers, body: sign.body ?? payload });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
  }

  const lastEvent = () => fake.events().at(-1)!;
  const rawEventIds = async () => (await query(platform, 'SELECT id FROM hooks_webhook_events FINAL ORDER BY id')).map((r) => r.id);
  const customers = async (): Promise<Record<string, { name: string | null; email: string | null }>> =>
    Object.fromEntries((await query(platform, 'SELECT id, name, email FROM hooks_customer FINAL')).map((r) => [r.id, { name: r.name, email: r.email }]));
  const fakeCustomers = () => Object.fromEntries(fake.objects('customer').map((c) => [c.id, { name: c.name ?? null, email: c.email ?? null }]));

  async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await read();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v).slice(0, 2000)}\n${platform.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-20).join('\n')}`);
      await sleep(200);
    }
  }

  beforeAll(async () => {
    fake = await startStripeFake();
    for (let i = 0; i < 5; i++) fake.create('customer', { name: `Existing ${i}`, email: `existing${i}@example.com` }, { created: HOUR_AGO + i });
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporal = await startTestTemporal(temporalDir);
    dataDir = makeDataDir('stripe-webhooks');
    platform = await startPlatform({ dataDir, env: env() });
    token = platform.token;
    const schemas = STRIPE_TABLES.map((t) =>
      t.name === 'Customer' || t.name === 'Subscription'
        ? { name: t.name, should_sync: true, sync_type: 'webhook', sync_frequency: '24hour' }
        : t.name === 'Product'
          ? { name: t.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }
          : { name: t.name, should_sync: false },
    );
    const res = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'hooks', payload: { stripe_secret_key: fake.key, schemas } });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    schemaIds = Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id]));
    for (const name of ['Customer', 'Subscription', 'Product']) expect((await waitForJobs(platform, schemaIds[name], 1)).status).toBe('Completed');
    const reg = await platform.api('POST', `/api/sources/${sourceId}/webhook`);
    expect(reg.body).toMatchObject({ success: true, error: null });
    secret = fake.webhookSecrets.get([...fake.webhookEndpoints.keys()][0])!;
  }, 300_000);

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await fake?.stop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('the first load of a webhook table is a polling sync', async () => {
    expect(await customers()).toEqual(fakeCustomers());
  });

  test('a signed event lands; forged, expired, unsigned and tampered deliveries get 400 and change nothing', async () => {
    fake.create('customer', { name: 'Ada', email: 'ada@example.com' });
    const created = lastEvent();
    const ada = (created.data as { object: { id: string } }).object.id;

    const forged = await deliver(created, { secret: 'whsec_not_the_secret' });
    expect(forged.status).toBe(400);
    expect(forged.body).toMatchObject({ error: 'invalid_signature' });
    const expired = await deliver(created, { timestamp: Math.floor(Date.now() / 1000) - 400 });
    expect(expired.status).toBe(400);
    expect(String(expired.body!.message)).toMatch(/tolerance/i);
    expect((await deliver(created, { header: null })).status).toBe(400);
    const tampered = await deliver(created, { body: JSON.stringify({ ...created, data: { object: { id: ada, object: 'customer', name: 'Mallory' } } }) });
    expect(tampered.status).toBe(400);
    expect(await rawEventIds()).toEqual([]);
    expect(Object.keys(await customers())).not.toContain(ada);

    const payload = JSON.stringify(created);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    const ok = await deliver(created, { header, body: payload });
    expect(ok).toEqual({ status: 200, body: { received: true, duplicate: false } });
    // The very same delivery replayed (an attacker, or Stripe retrying): accepted once, never applied twice.
    const replayed = await deliver(created, { header, body: payload });
    expect(replayed).toEqual({ status: 200, body: { received: true, duplicate: true } });
    const landed = await eventually(customers, (c) => ada in c, 'Ada never landed');
    expect(landed[ada]).toEqual({ name: 'Ada', email: 'ada@example.com' });
    expect(await rawEventIds()).toEqual([created.id]);
  });

  test('duplicate and out-of-order deliveries converge on the newest state; a later delete wins over an older update', async () => {
    const t = Math.floor(Date.now() / 1000);
    const grace = fake.create('customer', { name: 'Grace v1', email: 'grace@example.com' }, { created: t });
    const e1 = lastEvent();
    fake.update('customer', grace.id, { name: 'Grace v2' }, { at: t + 5 });
    const e2 = lastEvent();
    fake.update('customer', grace.id, { name: 'Grace v3' }, { at: t + 10 });
    const e3 = lastEvent();
    const replies = [];
    for (const e of [e3, e1, e2, e3, e1]) replies.push(await deliver(e));
    expect(replies.map((r) => [r.status, r.body!.duplicate])).toEqual([[200, false], [200, false], [200, false], [200, true], [200, true]]);
    await eventually(async () => (await customers())[grace.id]?.name, (n) => n === 'Grace v3', 'Grace never reached v3');
    // The repeats and the older states never overwrote v3, however long we wait for them.
    await sleep(1500);
    expect((await customers())[grace.id].name).toBe('Grace v3');

    fake.remove('customer', grace.id, { at: t + 20 });
    const deleted = lastEvent();
    expect(deleted.type).toBe('customer.deleted');
    expect((await deliver(deleted)).status).toBe(200);
    expect((await deliver(e2)).status).toBe(200); // Stripe retrying an old delivery late
    await eventually(customers, (c) => !(grace.id in c), 'Grace was never deleted');
    await sleep(1500);
    expect(Object.keys(await customers())).not.toContain(grace.id);
    expect(await rawEventIds()).toEqual(expect.arrayContaining([e1.id, e2.id, e3.id, deleted.id]));
    expect(new Set(await rawEventIds()).size).toBe((await rawEventIds()).length);
  });

  test('a cancelled subscription arrives cancelled, not deleted', async () => {
    const customer = fake.objects('customer')[0].id;
    const sub = fake.create('subscription', { customer, status: 'active' });
    expect((await deliver(lastEvent())).status).toBe(200);
    fake.update('subscription', sub.id, { status: 'canceled' }, { event: 'customer.subscription.deleted', at: Math.floor(Date.now() / 1000) + 1 });
    expect((await deliver(lastEvent())).status).toBe(200);
    const rows = await eventually(
      () => query(platform, `SELECT status FROM hooks_subscription FINAL WHERE id = '${sub.id}'`),
      (r) => r[0]?.status === 'canceled',
      'the subscription never showed cancelled',
    );
    expect(rows).toEqual([{ status: 'canceled' }]);
  });

  test('the webhook workflow is found by id and search attributes; its history holds ids, never the key, the secret or the events', async () => {
    await withTemporal(temporal.address, async (client) => {
      expect(await searchAttributes(client, `webhooks-${sourceId}`)).toMatchObject({
        TributarySourceId: sourceId,
        TributarySourceType: 'Stripe',
        TributarySyncType: 'webhook',
      });
      const text = await historyText(client, `webhooks-${sourceId}`);
      expect(text).toContain(sourceId);
      for (const secretText of [fake.key, secret, 'grace@example.com', 'Grace v3']) expect(text).not.toContain(secretText);
    });
  });

  test('events for a table not synced by webhook are answered 200 and ignored', async () => {
    fake.create('product', { name: 'Widget', active: true, images: [] });
    const res = await deliver(lastEvent());
    expect(res).toEqual({ status: 200, body: { received: true, ignored: 'table Product is not synced by webhook' } });
    expect(await rawEventIds()).not.toContain(lastEvent().id);
  });

  test('the scheduled safety-net refresh drops rows deleted without an event, keeping newer webhook state', async () => {
    const quiet = fake.objects('customer').find((c) => String(c.name).startsWith('Existing'))!;
    fake.remove('customer', quiet.id, { silent: true });
    fake.update('customer', fake.objects('customer')[1].id, { name: 'Changed via webhook' });
    expect((await deliver(lastEvent())).status).toBe(200);
    await eventually(customers, (c) => Object.values(c).some((x) => x.name === 'Changed via webhook'), 'the update never landed');
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${schemaIds.Customer}`)).body.results.length;
    expect((await platform.api('POST', `/api/schemas/${schemaIds.Customer}/sync`)).status).toBe(202);
    expect((await waitForJobs(platform, schemaIds.Customer, jobs + 1)).status).toBe('Completed');
    expect(await customers()).toEqual(fakeCustomers());
  });

  test('SIGKILL of the platform while events arrive loses none that was answered 200', async () => {
    const fresh: string[] = [];
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      fresh.push(fake.create('customer', { name: `Burst ${i}`, email: `burst${i}@example.com` }).id);
      events.push(lastEvent());
    }
    const accepted = new Set<string>();
    let killed = false;
    // Stripe's side: every event is retried until it gets a 2xx.
    const sender = async (mine: typeof events) => {
      for (const e of mine) {
        for (;;) {
          const res = await deliver(e).catch(() => ({ status: 0, body: null }));
          if (res.status === 200) {
            accepted.add(e.id as string);
            break;
          }
          await sleep(200);
        }
        if (!killed && accepted.size >= 20) {
          killed = true;
          await platform.kill();
          await restart();
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map((k) => sender(events.filter((_, i) => i % 4 === k))));
    expect(killed).toBe(true);
    expect(accepted.size).toBe(60);
    const landed = await eventually(customers, (c) => fresh.every((id) => id in c), 'not every accepted event landed', 120_000);
    for (const id of fresh) expect(landed[id]).toEqual(fakeCustomers()[id]);
    expect(await rawEventIds()).toEqual(expect.arrayContaining([...accepted]));
  });

  test('a full refresh killed mid-listing resumes after the last id it had loaded', async () => {
    for (let i = 0; i < 1500; i++) fake.create('customer', { name: `Bulk ${i}`, email: `bulk${i}@example.com` }, { created: HOUR_AGO - 10 - i, event: null });
    const schemas = STRIPE_TABLES.map((t) => (t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' } : { name: t.name, should_sync: false }));
    fake.pageDelayMs = 150;
    const res = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'resume', payload: { stripe_secret_key: fake.key, schemas } });
    expect(res.status).toBe(201);
    const schemaId = res.body.schemas.find((s: { name: string }) => s.name === 'Customer').id;
    // Kill once the worker has loaded a few batches (each ~100 customers: a page).
    const deadline = Date.now() + 120_000;
    while ([...platform.output().matchAll(/"table":"resume_customer","batch":(\d+)/g)].length < 4) {
      if (Date.now() > deadline) throw new Error(`no batches logged:\n${platform.output().slice(-2000)}`);
      await sleep(20);
    }
    const killedAt = Date.now();
    await platform.kill();
    await restart();
    fake.pageDelayMs = 0;
    const job = await waitForJobs(platform, schemaId, 1, 240_000);
    expect({ status: job.status, error: job.latest_error }).toEqual({ status: 'Completed', error: null });
    const ids = (await query(platform, 'SELECT id FROM resume_customer FINAL')).map((r) => r.id).sort();
    expect(ids).toEqual(fake.objects('customer').map((c) => c.id).sort());
    expect((await query(platform, 'SELECT count() AS n FROM resume_customer'))[0].n).toBe(String(ids.length)); // no repeat even before FINAL
    // The retried attempt went on from where the killed one stopped, not from the first page.
    const firstAfter = fake.requests.find((r) => r.at > killedAt && r.path === '/v1/customers' && r.query.get('limit') === '100');
    expect(firstAfter?.query.get('starting_after')).toMatch(/^cus_/);
  });
});
