import fs from 'node:fs';
import * as R from '../api/response-schemas';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { startStripeFake, type StripeFake } from './support/stripe-fake';

/**
 * Stripe sync modes against a local fake of Stripe's documented API (stripe-mock's fixed fixtures can't
 * paginate, filter by `created`, keep events, rate-limit or refuse a permission), called through the real
 * `stripe` package: pagination, append missing the updates that incremental's Events API catches, the
 * fallback past the events window, 429s waited out, pacing, permission errors, and webhook registration.
 */
const RPS = 40;
const HOUR_AGO = Math.floor(Date.now() / 1000) - 3600;

type Entry = { name: string; should_sync: boolean; sync_type?: string; incremental_field?: string; incremental_field_type?: string; sync_frequency?: string };

/** Seed 001's schemas[]: every table listed; the ones given are enabled with their sync type. */
function schemas(enabled: Record<string, string>): Entry[] {
  return STRIPE_TABLES.map((t) => {
    const type = enabled[t.name];
    if (!type) return { name: t.name, should_sync: false };
    const cursor = type === 'incremental' || type === 'append' ? { incremental_field: t.cursorField, incremental_field_type: 'datetime' } : {};
    return { name: t.name, should_sync: true, sync_type: type, sync_frequency: '24hour', ...cursor };
  });
}

describe('Stripe sync modes (local Stripe API fake)', () => {
  let fake: StripeFake;
  let platform: RunningPlatform;
  let dataDir: string;
  const sources: Record<string, { id: string; schemas: Record<string, string> }> = {};
  const env = (extra: Record<string, string> = {}) => ({
    TRIBUTARY_STRIPE_API_URL: fake.url,
    TRIBUTARY_STRIPE_TEST_RPS: String(RPS),
    // New objects show in lists at once here: reads may go up to a second ago.
    TRIBUTARY_STRIPE_SETTLE_SECONDS: '1',
    TRIBUTARY_PUBLIC_URL: 'https://hooks.example.com',
    ...extra,
  });

  async function createSource(prefix: string, enabled: Record<string, string>) {
    const res = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix, payload: { stripe_secret_key: fake.key, schemas: schemas(enabled) } });
    expect(res.status).toBe(201);
    sources[prefix] = { id: res.body.id, schemas: Object.fromEntries(res.body.schemas.map((s: { name: string; id: string }) => [s.name, s.id])) };
    for (const name of Object.keys(enabled)) expect((await waitForJobs(platform, sources[prefix].schemas[name], 1)).status).toBe('Completed');
  }

  async function syncNow(prefix: string, table: string, jobs: number) {
    const res = await platform.api('POST', `/api/schemas/${sources[prefix].schemas[table]}/sync`);
    expect(res.status).toBe(202);
    const job = await waitForJobs(platform, sources[prefix].schemas[table], jobs);
    expect({ status: job.status, error: job.latest_error }).toEqual({ status: 'Completed', error: null });
    return job;
  }

  // Append tables are plain MergeTree (no FINAL): each object is read once, so none repeats.
  const final = (table: string) => (table.includes('_append_') ? table : `${table} FINAL`);
  const ids = async (table: string) => (await query(platform, `SELECT id FROM ${final(table)} ORDER BY id`)).map((r) => r.id);
  const fakeIds = (type: string) => fake.objects(type).map((o) => o.id).sort();

  beforeAll(async () => {
    fake = await startStripeFake();
    for (let i = 0; i < 250; i++) {
      const c = fake.create('customer', { email: `customer${i}@example.com`, name: `Customer ${i}` }, { created: HOUR_AGO - i });
      if (i % 3 === 0) fake.create('payment_method', { type: 'card', card: { brand: 'visa', last4: String(1000 + i) } }, { customer: c.id, created: HOUR_AGO });
    }
    const customer = fake.objects('customer')[0].id;
    for (let i = 0; i < 3; i++) fake.create('subscription', { customer, status: 'active', items: { data: [] } }, { created: HOUR_AGO + i });
    for (let i = 0; i < 120; i++) fake.create('product', { name: `Product ${i}`, active: true, images: [`https://img.example.com/${i}.png`] }, { created: HOUR_AGO });
    dataDir = makeDataDir('stripe-sync');
    platform = await startPlatform({ dataDir, env: env() });
  });

  afterAll(async () => {
    await platform?.stop();
    await fake?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('a wrong key is a 400 with Stripe\'s own message; nothing is stored', async () => {
    const res = await platform.api('POST', '/api/sources', { source_type: 'Stripe', payload: { stripe_secret_key: 'sk_test_wrongkey1234', schemas: schemas({}) } });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^Invalid API Key provided/);
    expect(res.body.details[0].field).toBe('payload.stripe_secret_key');
    expect((await platform.api('GET', '/api/sources')).body.results).toEqual([]);
  });

  test('db-schema names the permission a restricted key lacks, per table', async () => {
    fake.forbid('/v1/disputes', 'GET');
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', stripe_secret_key: fake.key });
    fake.allowAll();
    expect(res.status).toBe(200);
    const dispute = res.body.find((t: { table: string }) => t.table === 'Dispute');
    expect(dispute.description).toMatch(/does not have the required permissions/);
    expect(dispute.description).toMatch(/Give the restricted key Read on Disputes \(Core\)/);
    expect(res.body.find((t: { table: string }) => t.table === 'Charge').description).not.toMatch(/refused/);
    expect(fake.requests.filter((r) => r.account).length).toBe(0);
  });

  test('stripe_account_id is sent as the Stripe-Account header on every call', async () => {
    const since = Date.now();
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', stripe_secret_key: fake.key, stripe_account_id: 'acct_connected42' });
    expect(res.status).toBe(200);
    const calls = fake.requests.filter((r) => r.at >= since);
    expect(calls.length).toBeGreaterThanOrEqual(15);
    expect(new Set(calls.map((r) => r.account))).toEqual(new Set(['acct_connected42']));
  });

  test('full refresh pages through every object, nested tables per customer, at the configured pace', async () => {
    const since = Date.now();
    await createSource('stripe', { Customer: 'incremental', Subscription: 'incremental', Product: 'full_refresh', CustomerPaymentMethod: 'full_refresh' });
    expect(await ids('stripe_customer')).toEqual(fakeIds('customer'));
    expect(await ids('stripe_product')).toEqual(fakeIds('product'));
    expect(await ids('stripe_customer_payment_method')).toEqual(fakeIds('payment_method'));
    const [pm] = await query(platform, `SELECT customer, JSONExtractString(card, 'brand') AS brand FROM stripe_customer_payment_method FINAL LIMIT 1`);
    expect(pm.brand).toBe('visa');
    expect(fake.objects('customer').map((c) => c.id)).toContain(pm.customer);
    // 250 customers: three pages, each after the last id of the one before.
    const customerPages = fake.requests.filter((r) => r.path === '/v1/customers' && r.at >= since && r.query.get('limit') === '100' && !r.query.has('created[gte]'));
    expect(customerPages.length).toBeGreaterThanOrEqual(3);
    // No more than RPS calls in any second (the nested table alone makes ~270).
    const times = fake.requests.filter((r) => r.at >= since).map((r) => r.at).sort((a, b) => a - b);
    expect(times.length).toBeGreaterThan(250);
    let busiest = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    expect(busiest).toBeLessThanOrEqual(RPS + 1);
  });

  test('append misses updates and deletions that incremental (the Events API) catches: a cancelled subscription ends up cancelled', async () => {
    await createSource('stripe_append', { Customer: 'append', Subscription: 'append' });
    const [s1, s2] = fake.objects('subscription');
    const deletedCustomer = fake.objects('customer')[5].id;
    fake.update('subscription', s1.id, { status: 'canceled', canceled_at: Math.floor(Date.now() / 1000) }, { event: 'customer.subscription.deleted' });
    fake.update('subscription', s2.id, { metadata: { plan: 'pro' } });
    fake.remove('customer', deletedCustomer);
    const newSub = fake.create('subscription', { customer: s1.customer, status: 'trialing', items: { data: [] } });
    await new Promise((r) => setTimeout(r, 2100)); // past the settle second

    for (const [prefix, table] of [['stripe', 'Subscription'], ['stripe', 'Customer'], ['stripe_append', 'Subscription'], ['stripe_append', 'Customer']]) {
      const job = await syncNow(prefix, table, 2);
      expect(job.warnings).toEqual([]);
    }
    const status = async (table: string) =>
      Object.fromEntries((await query(platform, `SELECT id, status, metadata FROM ${final(table)}`)).map((r) => [r.id, { status: r.status, metadata: JSON.parse(r.metadata) }]));

    const incremental = await status('stripe_subscription');
    expect(incremental[s1.id].status).toBe('canceled');
    expect(incremental[s2.id].metadata).toEqual({ plan: 'pro' });
    expect(incremental[newSub.id].status).toBe('trialing');
    expect(await ids('stripe_customer')).toEqual(fakeIds('customer'));

    const append = await status('stripe_append_subscription');
    expect(Object.keys(append)).toHaveLength((await query(platform, 'SELECT count() AS n FROM stripe_append_subscription'))[0].n * 1);
    expect(append[s1.id].status).toBe('active'); // the complaint PostHog's users have
    expect(append[s2.id].metadata).toEqual({});
    expect(append[newSub.id].status).toBe('trialing'); // new rows do arrive
    expect(await ids('stripe_append_customer')).toContain(deletedCustomer);
    // A subscription Stripe only lists with status=all was read too.
    expect(Object.keys(incremental).sort()).toEqual(fake.objects('subscription').map((s) => s.id).sort());
  });

  test('429s are waited out as Retry-After asks; the sync does not fail', async () => {
    const since = Date.now();
    fake.rateLimit(3, 1);
    await syncNow('stripe', 'Product', 2);
    const seen = fake.requests.filter((r) => r.at >= since);
    const limited = seen.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 429);
    expect(limited).toHaveLength(3);
    for (const { r, i } of limited) expect(seen[i + 1].at - r.at).toBeGreaterThanOrEqual(950);
    expect(await ids('stripe_product')).toEqual(fakeIds('product'));
  });

  test('incremental past the events window falls back to a full refresh, says so, and drops what is gone', async () => {
    // Deleted with no event left to tell (as once Stripe's 30 days have passed).
    const gone = fake.objects('customer')[7].id;
    fake.remove('customer', gone, { silent: true });
    const renamed = fake.objects('customer')[8].id;
    fake.update('customer', renamed, { name: 'Renamed quietly' }, { event: 'customer.updated' });
    await platform.stop();
    platform = await startPlatform({ dataDir, env: env({ TRIBUTARY_STRIPE_EVENTS_WINDOW_SECONDS: '2' }) });
    await new Promise((r) => setTimeout(r, 3100));
    const job = await syncNow('stripe', 'Customer', 3);
    expect(job.warnings).toEqual([expect.stringMatching(/^the last sync was \d+ s ago, beyond the 2 s Stripe keeps events: did a full refresh instead$/)]);
    expect(await ids('stripe_customer')).toEqual(fakeIds('customer'));
    expect(await ids('stripe_customer')).not.toContain(gone);
    expect((await query(platform, `SELECT name FROM stripe_customer FINAL WHERE id = '${renamed}'`))[0].name).toBe('Renamed quietly');
  });

  test('webhook registration: a key without Write on Webhook endpoints gets the exact permission to add; then one endpoint, deleted with the source', async () => {
    const prefix = 'stripe_hooks';
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Stripe',
      prefix,
      payload: { stripe_secret_key: fake.key, schemas: schemas({ Customer: 'webhook', Subscription: 'webhook', Invoice: 'full_refresh' }) },
    });
    expect(res.status).toBe(201);
    const id = res.body.id;
    fake.forbid('/v1/webhook_endpoints', 'POST');
    const refused = await platform.api('POST', `/api/sources/${id}/webhook`);
    fake.allowAll();
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ success: false, webhook_url: `https://hooks.example.com/webhooks/stripe/${id}` });
    expect(refused.body.error).toMatch(/Write on Webhook endpoints/);
    expect(refused.body.error).toMatch(/webhook-inputs/);
    expect(fake.webhookEndpoints.size).toBe(0);
    const disabled = await platform.api('GET', `/api/sources/${id}/webhook-info`);
    expect(disabled.body).toMatchObject({ exists: false, intake: { enabled: false } });
    const intake = await fetch(`${platform.url}/webhooks/stripe/${id}`, { method: 'POST', body: '{}', headers: { 'stripe-signature': 't=1,v1=00' } });
    expect(intake.status).toBe(503);

    const ok = await platform.api('POST', `/api/sources/${id}/webhook`);
    expect(R.webhookRegisterResult.parse(ok.body)).toMatchObject({ success: true, error: null, already_registered: false });
    expect(fake.webhookEndpoints.size).toBe(1);
    const [endpoint] = [...fake.webhookEndpoints.values()];
    expect(endpoint.url).toBe(`https://hooks.example.com/webhooks/stripe/${id}`);
    expect(endpoint.api_version).toBe('2026-08-26.dahlia');
    expect(endpoint.enabled_events).toEqual(expect.arrayContaining(['customer.created', 'customer.deleted', 'customer.subscription.deleted', 'customer.subscription.updated']));
    expect(endpoint.enabled_events).not.toContain('invoice.paid'); // Invoice is not a webhook table

    const again = await platform.api('POST', `/api/sources/${id}/webhook`);
    expect(again.body).toMatchObject({ success: true, already_registered: true });
    expect(fake.webhookEndpoints.size).toBe(1);

    const info = await platform.api('GET', `/api/sources/${id}/webhook-info`);
    expect(R.webhookInfoResult.parse(info.body)).toMatchObject({ exists: true, intake: { enabled: true }, external_status: { status: 'enabled', url: endpoint.url, error: null } });
    expect(JSON.stringify(info.body)).not.toContain(fake.webhookSecrets.get(endpoint.id as string));

    // Bulk disable of a webhook table needs confirm: re-enabling it needs a full resync.
    const customerId = res.body.schemas.find((s: { name: string }) => s.name === 'Customer').id;
    const unconfirmed = await platform.api('POST', '/api/schemas/bulk', { action: 'disable', schema_ids: [customerId] });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.details).toEqual([{ field: 'confirm', message: 'must be true when cdc or webhook schemas are selected' }]);
    expect((await platform.api('GET', `/api/sources/${id}/schemas`)).body.results.find((s: { name: string }) => s.name === 'Customer').should_sync).toBe(true);
    const confirmed = await platform.api('POST', '/api/schemas/bulk', { action: 'disable', schema_ids: [customerId], confirm: true });
    expect(confirmed.body.applied).toEqual([{ id: customerId, name: 'Customer' }]);
    expect(fake.webhookEndpoints.get(endpoint.id as string)!.enabled_events).not.toContain('customer.created');

    // Disabling a webhook table warns, and the endpoint stops sending its events.
    const patch = await platform.api('PATCH', `/api/schemas/${res.body.schemas.find((s: { name: string }) => s.name === 'Subscription').id}`, { should_sync: false });
    expect(patch.status).toBe(200);
    expect(patch.body.warnings).toEqual([expect.stringMatching(/events the source sends while it is disabled are dropped/)]);
    // That was the last webhook table: the endpoint is disabled at Stripe, not deleted.
    expect(fake.webhookEndpoints.get(endpoint.id as string)!.status).toBe('disabled');
    expect((await platform.api('GET', `/api/sources/${id}/webhook-info`)).body.external_status.status).toBe('disabled');
    // Re-enabling it runs a full refresh (events sent meanwhile were dropped) and subscribes its events again.
    const subscriptionId = res.body.schemas.find((s: { name: string }) => s.name === 'Subscription').id;
    const jobsBefore = (await platform.api('GET', `/api/jobs?schema_id=${subscriptionId}`)).body.results.length;
    const reenabled = await platform.api('PATCH', `/api/schemas/${subscriptionId}`, { should_sync: true });
    expect(reenabled.status).toBe(200);
    expect((await waitForJobs(platform, subscriptionId, jobsBefore + 1)).status).toBe('Completed');
    expect(fake.webhookEndpoints.get(endpoint.id as string)).toMatchObject({ status: 'enabled', enabled_events: expect.arrayContaining(['customer.subscription.updated']) });
    expect(await ids('stripe_hooks_subscription')).toEqual(fake.objects('subscription').map((s) => s.id).sort());

    const del = await platform.api('DELETE', `/api/sources/${id}`);
    expect(del.body.warnings).toEqual([]);
    expect(fake.deletedEndpoints).toEqual([endpoint.id]);
  });
});
