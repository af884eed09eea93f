import { pendoConnector } from '../connectors/pendo';
import { stripeConnector } from '../connectors/stripe';
import { describeConnectorConformance } from './support/connector-conformance';
import { makeFeature, makeVisitor, startPendoFake, type PendoFake } from './support/pendo-fake';
import { startStripeFake } from './support/stripe-fake';

/**
 * Every API connector through the same conformance tests (test/support/connector-conformance.ts), each
 * against its local fake of the API. A new connector (or another table of one) is one more entry.
 */

describeConnectorConformance({
  connector: stripeConnector,
  credentialField: 'stripe_secret_key',
  table: 'Customer',
  // Every page (100 customers) fills a batch.
  batchBytes: 1,
  exactPosition: true,
  async start() {
    const fake = await startStripeFake();
    const created = Math.floor(Date.now() / 1000) - 3600;
    for (let i = 0; i < 450; i++) {
      fake.create('customer', { name: `Customer ${i}\t"quoted" \\ ${i % 7 ? 'plain' : 'ünï'}`, email: `c${i}@example.com`, balance: i * 100 - 5000, metadata: { i: String(i) } }, { created: created + (i % 40) });
    }
    const customer = fake.objects('customer')[0].id;
    fake.create('payment_method', { type: 'card' }, { customer });
    return {
      goodConfig: { stripe_secret_key: fake.key },
      badConfig: { stripe_secret_key: 'sk_test_notAKeyTheFakeKnows' },
      rows: () => fake.objects('customer').length,
      env: { TRIBUTARY_STRIPE_API_URL: fake.url, TRIBUTARY_STRIPE_TEST_RPS: '200' },
      stop: () => fake.stop(),
    };
  },
});

/** The local Pendo with 450 visitors and 300 features of two apps (ids with quotes and backslashes among them). */
async function startPendo() {
  const fake = await startPendoFake();
  fake.appIds = [-323232, 5629499534213120];
  fake.addKey('conformance-key-eu', 'app.eu.pendo.io');
  const at = Date.UTC(2026, 10, 1);
  const id = (prefix: string, i: number) => (i % 9 ? `${prefix} ${String(i).padStart(3, '0')}` : `odd "${i}" \\ ${prefix}`);
  for (let i = 0; i < 450; i++) fake.putVisitor(makeVisitor(id('visitor', i), at - i * 1000, fake.appIds, { accountId: `acct ${i % 20}` }));
  for (let i = 0; i < 300; i++) fake.features.push(makeFeature(id('feature', i), fake.appIds[i % 2], at - i * 1000));
  return fake;
}

const pendoSource = (rows: (fake: PendoFake) => number) => async () => {
  const fake = await startPendo();
  return {
    goodConfig: { integration_key: 'conformance-key-eu', region: 'EU' },
    // The right key in another region: Pendo refuses it there.
    badConfig: { integration_key: 'conformance-key-eu', region: 'US' },
    rows: () => rows(fake),
    env: { TRIBUTARY_PENDO_API_URL: fake.apiUrl, TRIBUTARY_PENDO_PAGE_SIZE: '100', TRIBUTARY_PENDO_RPS: '1000' },
    stop: () => fake.stop(),
  };
};

describeConnectorConformance({
  connector: pendoConnector,
  credentialField: 'integration_key',
  table: 'visitors',
  keyColumn: 'visitor_id',
  batchBytes: 16 * 1024,
  // Visitors resume after the last id of the last batch.
  exactPosition: true,
  start: pendoSource((fake) => fake.visitors().length),
});

describeConnectorConformance({
  connector: pendoConnector,
  credentialField: 'integration_key',
  table: 'features',
  batchBytes: 16 * 1024,
  // One listing, not paged by Pendo: a resumed read skips as many items as the last batch had reached.
  exactPosition: true,
  start: pendoSource((fake) => fake.features.length),
});
