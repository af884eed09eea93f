import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import { asSourceUser, eventually, grantCdc } from './support/cdc';
import { makeDataDir, startPlatform, type RunningPlatform } from './support/platform';
import { RecordingEndpoint } from './support/recording-endpoint';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startStripeFake, type StripeFake } from './support/stripe-fake';

const ARTIFACTS = path.resolve(__dirname, '..', 'test-artifacts', 'console');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core) against the real
 * platform: sign in, create a Postgres source through the form, filter, sort and bulk-edit its schemas,
 * follow a job to the Temporal UI, run a query. Screenshots land in test-artifacts/console/.
 */
describe('web console', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let dataDir: string;
  let browser: Browser;
  let page: Page;
  let endpoint: RecordingEndpoint;
  let sourceId: string;
  let cdcDb: SourceDb;
  let stripe: StripeFake;
  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const rowNames = () => page.locator('table.schemas tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-schema')));
  /** Every table the page shows comes from the shared DataTable: named by its caption, in a scroll box of its own, headers scoped. */
  const expectSharedTables = async (names: string[]) => {
    const tables = await page.locator('main table').evaluateAll((ts) =>
      ts.map((t: any) => ({ caption: t.querySelector(':scope > caption')?.textContent?.trim() ?? '', wrapped: t.parentElement.classList.contains('table-wrap'), unscoped: t.querySelectorAll('thead th:not([scope="col"])').length })),
    );
    expect(tables.map((t) => t.caption)).toEqual(names);
    for (const t of tables) expect(t).toMatchObject({ wrapped: true, unscoped: 0 });
    for (const name of names) expect(await page.getByRole('table', { name, exact: true }).count()).toBe(1);
  };
  const schemas = async () => (await platform.api('GET', `/api/sources/${sourceId}/schemas`)).body.results as any[];

  beforeAll(async () => {
    // `npm test` builds it in pretest; a jest run of this file alone builds it here (a no-op when up to date).
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/build-console.ts'], { cwd: path.resolve(__dirname, '..'), stdio: 'inherit' });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    db = await createSourceDb('console');
    await db.admin.query(`
      CREATE TABLE orders (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL, amount numeric(12,2));
      INSERT INTO orders SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 minute', g FROM generate_series(1, 100) g;
      CREATE TABLE customers (id int PRIMARY KEY, name text);
      INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
      CREATE TABLE events_log (seq int, created_at timestamptz, payload text);
      INSERT INTO events_log SELECT g, TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 hour', 'p' FROM generate_series(1, 30) g;
      CREATE TABLE plain (label text);
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${db.user};
    `);
    // A source of its own for CDC: the wizard's source must not offer CDC (its role cannot replicate).
    cdcDb = await createSourceDb('console_cdc');
    await grantCdc(cdcDb);
    await asSourceUser(cdcDb, `CREATE TABLE ticks (id bigint PRIMARY KEY, note text); INSERT INTO ticks SELECT g, 't' || g FROM generate_series(1, 10) g;`);
    stripe = await startStripeFake();
    stripe.create('customer', { name: 'Existing', email: 'existing@example.com' });
    dataDir = makeDataDir('console');
    endpoint = await RecordingEndpoint.start();
    [platform, browser] = await Promise.all([
      // The destination's endpoint is on loopback; the CDC lag is measured every second, not every minute.
      startPlatform({ dataDir, env: { TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1', TRIBUTARY_CDC_LAG_CHECK_MS: '1000', TRIBUTARY_STRIPE_API_URL: stripe.url, TRIBUTARY_STRIPE_TEST_RPS: '100' } }),
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
      }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await endpoint?.stop();
    await platform?.stop();
    await stripe?.stop();
    await db?.drop();
    await cdcDb?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('is served at / with its assets, and signs in with the API token only', async () => {
    const res = await fetch(platform.url + '/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(await res.text())![1];
    expect((await fetch(platform.url + asset)).status).toBe(200);

    await page.goto(platform.url + '/');
    await page.getByLabel('API token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Missing or invalid API token' }).waitFor();
    await page.getByLabel('API token').fill(platform.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sources' }).waitFor();
    await page.getByText('No sources yet').waitFor();
    // The token lives in this tab's sessionStorage, nowhere more lasting.
    expect(await page.evaluate(() => { const w = globalThis as any; return [w.sessionStorage.getItem('tributary-token'), w.localStorage.length, w.document.cookie]; })).toEqual([platform.token, 0, '']);
    await shot('01-sources-empty');
  });

  test('creates a Postgres source through the form: db-schema message verbatim, per-table choices, prefix', async () => {
    await page.getByRole('link', { name: 'New source' }).click();
    await page.getByLabel('Source type').selectOption('Postgres');
    await page.getByLabel('Host').fill(db.host);
    await page.getByLabel('Port').fill(String(db.port));
    await page.getByLabel('Database').fill(db.dbname);
    await page.getByLabel('User').fill(db.user);
    await page.getByLabel('Schema').fill('public');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Check connection and list tables' }).click();
    // Postgres's own words, as db-schema answers them.
    await page.getByRole('alert').filter({ hasText: `password authentication failed for user "${db.user}"` }).waitFor();
    await shot('02-wizard-bad-password');

    await page.getByLabel('Password').fill(db.password);
    await page.getByRole('button', { name: 'Check connection and list tables' }).click();
    await page.getByRole('heading', { name: '2. Tables' }).waitFor();
    await expectSharedTables(['Tables of the source: what to sync and how']);
    expect(await page.locator('table.choices tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-table')).sort())).toEqual(['customers', 'events_log', 'orders', 'plain']);

    await page.getByLabel('Sync orders').check();
    // Only the methods the table offers (no CDC: the role cannot replicate).
    const methods = await page.getByLabel('Sync method of orders').locator('option').evaluateAll((os) => os.map((o) => (o as any).value));
    expect(methods).toEqual(['full_refresh', 'incremental', 'append']);
    await page.getByLabel('Sync method of orders').selectOption('incremental');
    await page.getByLabel('Cursor of orders').selectOption('updated_at');
    const frequencies = await page.getByLabel('Frequency of orders').locator('option').evaluateAll((os) => os.map((o) => (o as any).value));
    expect(frequencies).not.toContain('1min');
    expect(frequencies).toContain('5min');
    await page.getByLabel('Frequency of orders').selectOption('1hour');

    await page.getByLabel('Sync customers').check();
    await page.getByLabel('Sync events_log').check();
    await page.getByLabel('Sync method of events_log').selectOption('append');
    await page.getByLabel('Cursor of events_log').selectOption('created_at');
    await page.getByText('created_at is nullable: rows where it is null are skipped').waitFor();

    // The default prefix is the source type; the form says so, and we pick our own.
    expect(await page.getByLabel('Prefix of the warehouse tables').inputValue()).toBe('postgres');
    await page.getByLabel('Prefix of the warehouse tables').fill('shop');
    await shot('03-wizard-tables');
    await page.getByRole('button', { name: 'Create source' }).click();
    await page.getByRole('heading', { name: 'Source “shop” created' }).waitFor();
    await page.getByText('incremental_field "created_at" is nullable').waitFor();
    await shot('04-source-created');

    const { body } = await platform.api('GET', '/api/sources');
    expect(body.results).toHaveLength(1);
    sourceId = body.results[0].id;
    const byName = Object.fromEntries((await schemas()).map((s) => [s.name, s]));
    expect(byName.orders).toMatchObject({ should_sync: true, sync_type: 'incremental', incremental_field: 'updated_at', sync_frequency: '1hour' });
    expect(byName.customers).toMatchObject({ should_sync: true, sync_type: 'full_refresh' });
    expect(byName.events_log).toMatchObject({ should_sync: true, sync_type: 'append', incremental_field: 'created_at' });
    expect(byName.plain).toMatchObject({ should_sync: false });

    // A second source may not take the prefix: the form says it before sending.
    await page.getByRole('link', { name: 'Sources', exact: true }).click();
    await page.getByRole('link', { name: 'New source' }).click();
    await page.getByLabel('Source type').selectOption('Postgres');
    await page.getByLabel('Host').fill(db.host);
    await page.getByLabel('Port').fill(String(db.port));
    await page.getByLabel('Database').fill(db.dbname);
    await page.getByLabel('User').fill(db.user);
    await page.getByLabel('Password').fill(db.password);
    await page.getByLabel('Schema').fill('public');
    await page.getByRole('button', { name: 'Check connection and list tables' }).click();
    await page.getByLabel('Prefix of the warehouse tables').fill('shop');
    await page.getByText('The prefix "shop" is taken by another source.').waitFor();
    expect(await page.getByRole('button', { name: 'Create source' }).isDisabled()).toBe(true);
  });

  test('schemas table: filter, sort by every column, bulk set_frequency and disable', async () => {
    // The first syncs finish; the table shows it on its own (it polls).
    await eventually(async () => {
      const s = await schemas();
      expect(s.filter((x) => x.should_sync).map((x) => x.status)).toEqual(['Completed', 'Completed', 'Completed']);
    }, 90_000);
    await page.goto(`${platform.url}/#/sources/${sourceId}`);
    await page.locator('tr[data-schema="orders"]').getByText('Completed').waitFor();
    expect(await rowNames()).toEqual(['customers', 'events_log', 'orders', 'plain']);

    await page.getByLabel('Method').selectOption('incremental');
    await eventually(async () => expect(await rowNames()).toEqual(['orders']), 10_000);
    await page.getByLabel('Method').selectOption('');
    await page.getByLabel('Enabled only').check();
    await eventually(async () => expect(await rowNames()).toEqual(['customers', 'events_log', 'orders']), 10_000);
    await page.getByLabel('Name').fill('cust');
    await eventually(async () => expect(await rowNames()).toEqual(['customers']), 10_000);
    await page.getByLabel('Name').fill('');
    await page.getByLabel('Enabled only').uncheck();
    await page.getByLabel('Status').selectOption('not set up');
    await eventually(async () => expect(await rowNames()).toEqual(['plain']), 10_000);
    await page.getByLabel('Status').selectOption('');
    await eventually(async () => expect(await rowNames()).toHaveLength(4), 10_000);

    const sortBy = (label: string) => page.locator('table.schemas thead').getByRole('button', { name: label, exact: true }).click();
    await sortBy('Rows');
    expect(await rowNames()).toEqual(['customers', 'events_log', 'orders', 'plain']); // 20, 30, 100, none last
    await sortBy('Rows');
    expect(await rowNames()).toEqual(['orders', 'events_log', 'customers', 'plain']);
    expect(await page.locator('th[aria-sort="descending"]').innerText()).toContain('Rows');
    await sortBy('Frequency');
    expect((await rowNames())[0]).toBe('orders'); // 1hour before the 6hour default
    await sortBy('Method');
    expect(await rowNames()).toEqual(['events_log', 'customers', 'orders', 'plain']); // append, full_refresh, incremental, none
    await sortBy('Table');
    expect(await rowNames()).toEqual(['customers', 'events_log', 'orders', 'plain']);
    await sortBy('Table');
    expect(await rowNames()).toEqual(['plain', 'orders', 'events_log', 'customers']);
    for (const label of ['Enabled', 'Status', 'Last synced']) {
      await sortBy(label);
      expect(await rowNames()).toHaveLength(4);
      expect(await page.locator('th[aria-sort="ascending"]').innerText()).toContain(label);
    }
    await shot('05-schemas-table');
    await expectSharedTables(['Schemas, sorted by last synced']);

    await page.getByLabel('Select customers').check();
    await page.getByLabel('Select events_log').check();
    await page.locator('.bulk').getByLabel('Frequency').selectOption('24hour');
    await page.getByRole('button', { name: 'Set frequency' }).click();
    await page.getByRole('status').filter({ hasText: 'set_frequency: applied to' }).waitFor();
    let byName = Object.fromEntries((await schemas()).map((s) => [s.name, s]));
    expect([byName.customers.sync_frequency, byName.events_log.sync_frequency, byName.orders.sync_frequency]).toEqual(['24hour', '24hour', '1hour']);

    await page.getByLabel('Select events_log').uncheck();
    await page.getByRole('button', { name: 'Disable', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'disable: applied to customers' }).waitFor();
    byName = Object.fromEntries((await schemas()).map((s) => [s.name, s]));
    expect(byName.customers.should_sync).toBe(false);
    expect(byName.events_log.should_sync).toBe(true);
    await shot('06-schemas-bulk');
  });

  test('jobs link to the run in the Temporal UI; a query shows its rows', async () => {
    await page.locator('tr[data-schema="orders"]').getByRole('link', { name: 'History' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const link = page.getByRole('link', { name: 'Temporal UI' }).first();
    await link.waitFor();
    const info = (await platform.api('GET', '/api/platform-info')).body;
    expect(info.temporal_ui_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${(await schemas()).find((s) => s.name === 'orders').id}`)).body.results;
    expect(await link.getAttribute('href')).toBe(`${info.temporal_ui_url}/namespaces/default/workflows/${encodeURIComponent(jobs[0].workflow_id)}/${jobs[0].workflow_run_id}/history`);
    expect(await page.locator('tbody tr').first().innerText()).toContain('Completed');
    await shot('07-jobs');
    await expectSharedTables(['Jobs']);

    // The CDC lag history the CDC panel charts: a plain REST route, validated like the others.
    expect((await platform.api('GET', `/api/sources/${sourceId}/cdc/lag-history`)).body).toEqual({ source_id: sourceId, hours: 24, results: [] });
    const bad = await platform.api('GET', `/api/sources/${sourceId}/cdc/lag-history?hours=48&hour=1`);
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['hour', 'hours']);

    await page.getByRole('link', { name: 'Query' }).click();
    await page.getByLabel('SQL (read-only, over the warehouse)').fill('SELECT count() AS n, max(amount) AS top FROM shop_orders FINAL');
    await page.getByRole('button', { name: /^Run/ }).click();
    await page.getByRole('status').filter({ hasText: '1 rows' }).waitFor();
    expect(await page.locator('table.results thead').innerText()).toMatch(/n\s+top/);
    expect(await page.locator('table.results tbody tr').innerText()).toMatch(/^100\s+100/);
    await expectSharedTables(['Query results']);
    // A refused statement shows the API's message.
    await page.getByLabel('SQL (read-only, over the warehouse)').fill('DROP TABLE shop_orders');
    await page.getByRole('button', { name: /^Run/ }).click();
    await page.getByRole('alert').waitFor();
    await shot('08-query');
  });

  test('destinations: the test-send panel sends one request and shows both sides', async () => {
    const created = await platform.api('POST', '/api/destinations', { type: 'webhook', name: 'Ops hook', url: `${endpoint.url}/hook` });
    expect(created.status).toBe(201);
    await page.getByRole('link', { name: 'Destinations' }).click();
    await page.getByRole('link', { name: 'Ops hook' }).click();
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    await page.getByLabel('Row as JSON (optional: instead of the latest change)').fill('{"id": 7, "amount": "12.50"}');
    await page.getByRole('button', { name: 'Send one test request' }).click();
    await page.getByRole('status').filter({ hasText: 'HTTP 200' }).waitFor();
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.requests[0].path).toBe('/hook');
    expect(endpoint.requests[0].body).toContain('12.50');
    expect(await page.locator('pre').first().innerText()).toContain(`POST ${endpoint.url}/hook`);
    await shot('09-destination-test-send');
  });

  test('alerts: the page lists GET /api/alerts (none yet: every sync succeeded) and links to the API docs', async () => {
    expect((await platform.api('GET', '/api/alerts')).body.results).toEqual([]);
    await page.getByRole('link', { name: 'Alerts' }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.getByText('No alerts.', { exact: true }).waitFor();
    expect(await page.locator('main').getByRole('link', { name: 'API docs' }).getAttribute('href')).toBe('/docs');
  });

  test('destinations: one created through the form shows its deliveries and log', async () => {
    await page.getByRole('link', { name: 'Destinations' }).click();
    await page.getByRole('link', { name: 'Ops hook' }).waitFor();
    await expectSharedTables(['Destinations']);
    await page.getByText('New destination').click();
    await page.getByLabel('Name', { exact: true }).fill('Orders feed');
    await page.getByLabel('Endpoint URL').fill(`${endpoint.url}/feed`);
    await page.getByLabel(/^Tables/).fill('shop_nope');
    await page.getByRole('button', { name: 'Create destination' }).click();
    // The API's own message, naming the table it does not know.
    await page.getByRole('alert').filter({ hasText: 'shop_nope' }).waitFor();
    await page.getByLabel(/^Tables/).fill('shop_orders');
    await page.getByRole('button', { name: 'Create destination' }).click();
    await page.getByRole('heading', { name: 'Orders feed' }).waitFor();
    const dest = (await platform.api('GET', '/api/destinations')).body.results.find((d: any) => d.name === 'Orders feed');
    expect(dest).toMatchObject({ url: `${endpoint.url}/feed`, filters: { tables: ['shop_orders'] } });
    expect(await page.evaluate(() => (globalThis as any).location.hash)).toBe(`#/destinations/${dest.id}`);

    // A new order at the source, synced: its change reaches the endpoint, and the page counts it.
    await db.admin.query(`INSERT INTO orders VALUES (101, TIMESTAMPTZ '2030-01-01 00:00:00+00', 101)`);
    const orders = (await schemas()).find((x) => x.name === 'orders');
    const runs = (await platform.api('GET', `/api/jobs?schema_id=${orders.id}`)).body.results.length;
    expect((await platform.api('POST', `/api/schemas/${orders.id}/sync`)).status).toBeLessThan(300);
    await endpoint.waitFor((reqs) => reqs.some((r) => r.path === '/feed' && String(r.body).includes('"id":101')), 90_000, 'the new order at /feed');
    await eventually(async () => expect((await platform.api('GET', `/api/jobs?schema_id=${orders.id}`)).body.results.length).toBeGreaterThan(runs), 30_000);
    await page.getByText(/Totals: .*succeeded [1-9]/).waitFor({ timeout: 60_000 });
    await page.locator('section[aria-labelledby="logs-h"] tbody tr').first().waitFor({ timeout: 60_000 });
    await shot('11-destination-deliveries');
    await expectSharedTables(['Delivery log, newest first']);
  });

  test('alerts: a failing sync raises an alert, and the console shows it', async () => {
    const orders = (await schemas()).find((x) => x.name === 'orders');
    await db.admin.query(`REVOKE SELECT ON orders FROM ${db.user}`);
    try {
      expect((await platform.api('POST', `/api/schemas/${orders.id}/sync`)).status).toBeLessThan(300);
      await page.getByRole('link', { name: 'Alerts' }).click();
      const row = page.locator('table.alerts tbody tr').filter({ hasText: 'sync_failed' });
      // The page polls GET /api/alerts; the alert is raised as the failed run ends.
      await row.waitFor({ timeout: 90_000 });
      expect(await row.innerText()).toMatch(/open\s+critical\s+sync_failed\s+shop \/ orders\s+.*permission denied/);
      expect(await row.getByRole('link', { name: 'orders' }).getAttribute('href')).toBe(`#/jobs?schema_id=${orders.id}`);
      await expectSharedTables(['Alerts']);
      await page.getByLabel('State').selectOption('cleared');
      await page.getByText('No alerts.', { exact: true }).waitFor();
      await page.getByLabel('State').selectOption('');
      await shot('12-alert-sync-failed');
    } finally {
      await db.admin.query(`GRANT SELECT ON orders TO ${db.user}`);
    }
  });

  test('CDC panel: a CDC source shows its state, slot and measured lag, and pauses and resumes', async () => {
    const created = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'live',
      payload: { ...connectionPayload(cdcDb), schemas: [{ name: 'ticks', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }] },
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const cdc = async () => (await platform.api('GET', `/api/sources/${id}`)).body.cdc;
    await eventually(async () => expect(await cdc()).toMatchObject({ status: 'Streaming', lag_checked_at: expect.any(String) }), 120_000);
    await page.goto(`${platform.url}/#/sources/${id}`);
    const panel = page.locator('section[aria-labelledby="cdc-h"]');
    await panel.getByText('Streaming', { exact: true }).waitFor();
    expect(await panel.locator('code').innerText()).toBe((await cdc()).slot_name);
    expect(await panel.locator('dd.lag').innerText()).toMatch(/^\d+(\.\d)? (B|KiB|MiB|GiB) \((ok|warning|critical)\), measured \S/);
    // The chart draws the lag samples once the history has some.
    await panel.getByRole('img', { name: /^Slot lag .*latest \d+ B/ }).waitFor({ timeout: 30_000 });

    // The replication delay is measured from the source's own commit time of the change (not guessed from the
    // mirror's last write): it lies between the source's clock before the insert and after the change landed.
    const sourceClock = async () => Number((await cdcDb.admin.query(`SELECT extract(epoch FROM clock_timestamp())::float8 AS t`)).rows[0].t);
    const beforeInsert = await sourceClock();
    await asSourceUser(cdcDb, `INSERT INTO ticks VALUES (11, 'new')`);
    await eventually(async () => expect(Number(await panel.locator('dt:text-is("Changes synced") + dd').innerText())).toBeGreaterThanOrEqual(1), 60_000);
    const landed = await sourceClock();
    const mirror = await cdc();
    const committed = new Date(mirror.last_commit_at).getTime() / 1000;
    expect(committed).toBeGreaterThanOrEqual(Math.floor(beforeInsert * 1000) / 1000);
    expect(committed).toBeLessThanOrEqual(landed);
    expect(mirror.lag_seconds).toBeGreaterThanOrEqual(0);
    expect(mirror.lag_seconds).toBeLessThanOrEqual(landed - beforeInsert + 1);
    const scraped = await (await fetch(`${platform.url}/metrics`)).text();
    expect(Number(/^tributary_cdc_lag_seconds\{source="live"\} (\S+)$/m.exec(scraped)?.[1])).toBeCloseTo(mirror.lag_seconds, 3);
    expect(Number(/^tributary_cdc_last_commit_timestamp_seconds\{source="live"\} (\S+)$/m.exec(scraped)?.[1])).toBeCloseTo(committed, 3);
    await panel.locator('dd.delay').filter({ hasText: /^\d+\.\d s, for the last change/ }).waitFor();
    await panel.getByRole('button', { name: 'Pause' }).click();
    await panel.getByRole('status').filter({ hasText: 'pause: done' }).waitFor();
    await panel.getByText('(paused)').waitFor();
    expect((await cdc()).paused).toBe(true);
    await shot('13-cdc-paused');
    await panel.getByRole('button', { name: 'Resume' }).click();
    await panel.getByRole('status').filter({ hasText: 'resume: done' }).waitFor();
    await panel.getByRole('button', { name: 'Pause' }).waitFor();
    expect((await cdc()).paused).toBe(false);
  });

  test('webhooks: a Stripe source registers its webhook from its page, and shows both sides', async () => {
    const schemasBody = STRIPE_TABLES.map((t) => (t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'webhook', sync_frequency: '24hour' } : { name: t.name, should_sync: false }));
    const created = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'pay', payload: { stripe_secret_key: stripe.key, schemas: schemasBody } });
    expect(created.status).toBe(201);
    await page.goto(`${platform.url}/#/sources/${created.body.id}`);
    const panel = page.locator('section[aria-labelledby="webhook-h"]');
    await panel.getByText('not registered').waitFor();
    expect(stripe.webhookEndpoints.size).toBe(0);
    await panel.getByRole('button', { name: 'Register the webhook at the source' }).click();
    await panel.getByRole('status').filter({ hasText: 'Registered.' }).waitFor();
    expect(stripe.webhookEndpoints.size).toBe(1);
    const [registered] = [...stripe.webhookEndpoints.values()];
    expect(registered.url).toBe(`${platform.url}/webhooks/stripe/${created.body.id}`);
    // Both sides: the intake's URL, and Stripe's status of the endpoint it made.
    await panel.getByText(`${platform.url}/webhooks/stripe/${created.body.id}`, { exact: false }).waitFor();
    await panel.locator('dt:text-is("At the source") + dd').filter({ hasText: /enabled/ }).waitFor();
    // A second press does not make a second endpoint.
    await panel.getByRole('button', { name: 'Register the webhook at the source' }).click();
    await panel.getByRole('status').filter({ hasText: 'Already registered' }).waitFor();
    expect(stripe.webhookEndpoints.size).toBe(1);
    await shot('14-stripe-webhook');
  });

  test('fits a phone: the sources list at 390 px', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${platform.url}/#/sources`);
    await page.getByRole('link', { name: 'shop' }).waitFor();
    await expectSharedTables(['Sources']);
    // The page itself does not scroll sideways (wide tables scroll in their own box).
    expect(await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot('10-phone-sources');
  });
});
