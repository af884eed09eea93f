import fs from 'node:fs';
import Stripe from 'stripe';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import { testEnv } from './support/env';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { startStripeMock, type StripeMock } from './support/stripe-mock';

/**
 * The Stripe connector's client paths against stripe-mock, Stripe's own API mock: every one of the 15
 * tables is listed through the real `stripe` package and lands typed in the warehouse, the key is checked,
 * the webhook endpoint is registered, read back and deleted. (stripe-mock answers every list with one
 * fixed object and keeps no state; behaviours it cannot show are in stripe-fake.e2e.test.ts.)
 */
describe('Stripe against stripe-mock', () => {
  let mock: StripeMock;
  let platform: RunningPlatform;
  let dataDir: string;
  let stripe: Stripe;
  const KEY = 'sk_test_tributary123';

  beforeAll(async () => {
    mock = await startStripeMock(testEnv().stripeMockPath);
    const u = new URL(mock.url);
    stripe = new Stripe(KEY, { host: u.hostname, port: Number(u.port), protocol: 'http' });
    dataDir = makeDataDir('stripe-mock');
    platform = await startPlatform({ dataDir, env: { TRIBUTARY_STRIPE_API_URL: mock.url, TRIBUTARY_PUBLIC_URL: 'https://tributary.example.com' } });
  });

  afterAll(async () => {
    await platform?.stop();
    await mock?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the wizard offers Stripe: restricted key, optional account id, OAuth listed as unavailable', async () => {
    const res = await platform.api('GET', '/api/source-types');
    expect(res.status).toBe(200);
    const entry = res.body.Stripe;
    expect(entry).toMatchObject({ name: 'Stripe', featured: true, unreleasedSource: false });
    const fields = Object.fromEntries(entry.fields.map((f: { name: string }) => [f.name, f]));
    expect(fields.stripe_secret_key).toMatchObject({ type: 'password', required: true });
    expect(fields.stripe_account_id).toMatchObject({ type: 'input', required: false });
    expect(fields.auth_method.options.map((o: { value: string }) => o.value)).toEqual(['api_key', 'oauth']);
    expect(fields.auth_method.options[1].label).toMatch(/unavailable/);
  });

  test('bad fields are 400s naming the field; OAuth says why it is not available', async () => {
    const badKey = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', stripe_secret_key: 'pk_test_publishable' });
    expect(badKey.status).toBe(400);
    expect(badKey.body.details[0].field).toBe('stripe_secret_key');
    const oauth = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', auth_method: 'oauth', stripe_secret_key: KEY });
    expect(oauth.status).toBe(400);
    expect(oauth.body.details).toEqual([expect.objectContaining({ field: 'auth_method', message: expect.stringMatching(/restricted API key/) })]);
    const account = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', stripe_secret_key: KEY, stripe_account_id: 'not-an-account' });
    expect(account.status).toBe(400);
    expect(account.body.details[0].field).toBe('stripe_account_id');
  });

  test('db-schema lists the 15 tables of seed 003, keyed by id, with created cursors and webhook support', async () => {
    const res = await platform.api('POST', '/api/sources/db-schema', { source_type: 'Stripe', auth_method: 'api_key', stripe_secret_key: KEY });
    expect(res.status).toBe(200);
    expect(res.body.map((t: { table: string }) => t.table).sort()).toEqual(
      [
        'Account', 'BalanceTransaction', 'Charge', 'CreditNote', 'Customer', 'CustomerBalanceTransaction', 'CustomerPaymentMethod', 'Dispute',
        'Invoice', 'InvoiceItem', 'Payout', 'Price', 'Product', 'Refund', 'Subscription',
      ].sort(),
    );
    const byName = Object.fromEntries(res.body.map((t: { table: string }) => [t.table, t]));
    for (const t of res.body) {
      expect(t).toMatchObject({ should_sync: false, rows: null, supports_webhooks: true, cdc_available: false, detected_primary_keys: ['id'] });
    }
    expect(byName.Charge.incremental_fields).toEqual([{ field: 'created', type: 'datetime', label: 'created', nullable: false }]);
    expect(byName.InvoiceItem.incremental_fields[0].field).toBe('date');
    expect(byName.Subscription.description).toMatch(/misses every update/);
    expect(byName.CustomerPaymentMethod).toMatchObject({ incremental_available: false, append_available: false, incremental_fields: [] });
    const amount = byName.Charge.available_columns.find((c: { field: string }) => c.field === 'amount');
    expect(amount).toEqual({ field: 'amount', type: 'integer', nullable: true });
  });

  test('a full refresh of all 15 tables lands each object with its values and types', async () => {
    const schemas = STRIPE_TABLES.map((t) => ({ name: t.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }));
    const res = await platform.api('POST', '/api/sources', { source_type: 'Stripe', payload: { auth_method: 'api_key', stripe_secret_key: KEY, schemas } });
    expect(res.status).toBe(201);
    expect(res.body.prefix).toBe('stripe');
    expect(res.body.payload.stripe_secret_key).toBe('********');
    expect(JSON.stringify(res.body)).not.toContain(KEY);
    for (const s of res.body.schemas) {
      const job = await waitForJobs(platform, s.id, 1);
      expect({ table: s.name, status: job.status, error: job.latest_error }).toEqual({ table: s.name, status: 'Completed', error: null });
      expect(job.rows_synced).toBe(1);
    }

    // The same objects as the client library reads them from the mock.
    const charge = (await stripe.charges.list({ limit: 1 })).data[0];
    const [row] = await query(
      platform,
      `SELECT id, amount, currency, toUnixTimestamp(created) AS created, paid, metadata, billing_details, balance_transaction, customer FROM stripe_charge FINAL`,
    );
    expect(row).toEqual({
      id: charge.id,
      amount: String(charge.amount), // Int64 comes back as a string in JSON
      currency: charge.currency,
      created: charge.created,
      paid: charge.paid,
      metadata: JSON.stringify(charge.metadata),
      billing_details: JSON.stringify(charge.billing_details),
      balance_transaction: typeof charge.balance_transaction === 'string' ? charge.balance_transaction : (charge.balance_transaction?.id ?? null),
      customer: typeof charge.customer === 'string' ? charge.customer : (charge.customer?.id ?? null),
    });
    const types = Object.fromEntries(
      (await query(platform, `SELECT name, type FROM system.columns WHERE table = 'stripe_charge'`)).map((c) => [c.name, c.type]),
    );
    expect(types).toMatchObject({
      id: 'String',
      amount: 'Nullable(Int64)',
      created: "Nullable(DateTime64(0, 'UTC'))",
      paid: 'Nullable(Bool)',
      metadata: 'Nullable(String)',
      _tributary_version: 'UInt64',
    });
    const product = (await stripe.products.list({ limit: 1 })).data[0];
    const [p] = await query(platform, `SELECT id, images, name FROM stripe_product FINAL`);
    expect(p).toEqual({ id: product.id, images: product.images, name: product.name });
    // Nested tables are read per customer.
    const customer = (await stripe.customers.list({ limit: 1 })).data[0];
    const pm = (await stripe.customers.listPaymentMethods(customer.id, { limit: 1 })).data[0];
    expect(await query(platform, `SELECT id FROM stripe_customer_payment_method FINAL`)).toEqual([{ id: pm.id }]);
  });

  test('webhook registration: the endpoint is created at the source with the webhook tables\' events, read back, and deleted with the source', async () => {
    const schemas = STRIPE_TABLES.map((t) => ({
      name: t.name,
      should_sync: t.name === 'Charge' || t.name === 'Customer',
      sync_type: t.name === 'Charge' || t.name === 'Customer' ? 'webhook' : null,
    }));
    const created = await platform.api('POST', '/api/sources', {
      source_type: 'Stripe',
      prefix: 'stripe_hooks',
      payload: { stripe_secret_key: KEY, schemas },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const before = await platform.api('GET', `/api/sources/${id}/webhook-info`);
    expect(before.body).toMatchObject({ supports_webhooks: true, exists: false, webhook_url: `https://tributary.example.com/webhooks/stripe/${id}` });
    expect(before.body.schema_mapping['charge.succeeded']).toBe(created.body.schemas.find((s: { name: string }) => s.name === 'Charge').id);

    const reg = await platform.api('POST', `/api/sources/${id}/webhook`);
    expect(reg.status).toBe(200);
    // stripe-mock's fixture has no signing secret, so the intake waits for one; the endpoint exists at Stripe.
    expect(reg.body).toMatchObject({ success: true, webhook_url: `https://tributary.example.com/webhooks/stripe/${id}` });
    expect(reg.body.error).toMatch(/no signing secret/);
    const info = await platform.api('GET', `/api/sources/${id}/webhook-info`);
    expect(info.body).toMatchObject({ exists: true, intake: { enabled: false }, external_status: { status: 'enabled', error: null } });

    const bad = await platform.api('POST', `/api/sources/${id}/webhook-inputs`, { signing_secret: 'not-a-secret' });
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].field).toBe('signing_secret');
    const ok = await platform.api('POST', `/api/sources/${id}/webhook-inputs`, { signing_secret: 'whsec_manual123' });
    expect(ok.status).toBe(200);
    expect(ok.body.intake.enabled).toBe(true);
    expect(JSON.stringify(ok.body)).not.toContain('whsec_manual123');

    const del = await platform.api('DELETE', `/api/sources/${id}`);
    expect(del.status).toBe(200);
    expect(del.body.warnings).toEqual([]);
  });
});
