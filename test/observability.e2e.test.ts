import { alertsResult } from '../api/routes/alerts';
import { makeDataDir, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { freePort } from './support/ports';
import { RecordingEndpoint } from './support/recording-endpoint';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * Alerts, metrics and the API page on one real platform: a sync that fails raises one alert (GET /api/alerts),
 * delivered to a webhook destination subscribed to `_tributary_alerts`, cleared by the next good run; /metrics
 * counts the runs and requests; /docs serves Swagger UI from the installed package.
 */
describe('alerts, metrics and /docs on the platform', () => {
  let db: SourceDb;
  let platform: RunningPlatform;
  let endpoint: RecordingEndpoint;
  let schemaId: string;
  let sdkMetricsUrl: string;

  const metrics = async () => {
    const res = await fetch(`${platform.url}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const sample = (text: string, name: string, labels: string) =>
    Number(new RegExp(`^${name}\\{${labels.replace(/[{}]/g, '')}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

  beforeAll(async () => {
    endpoint = await RecordingEndpoint.start();
    db = await createSourceDb('obs');
    await db.admin.query(`CREATE TABLE orders (id bigint PRIMARY KEY, amount int NOT NULL); INSERT INTO orders VALUES (1, 10), (2, 20); GRANT SELECT ON orders TO ${db.user}`);
    const sdkAddress = `127.0.0.1:${await freePort()}`;
    sdkMetricsUrl = `http://${sdkAddress}/metrics`;
    platform = await startPlatform({ dataDir: makeDataDir('obs'), env: { TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1', TRIBUTARY_TEMPORAL_METRICS_ADDRESS: sdkAddress } });
    const created = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'obs',
      payload: { ...connectionPayload(db), schemas: [{ name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }] },
    });
    expect(created.status).toBe(201);
    schemaId = created.body.schemas[0].id;
    expect(await waitForJobs(platform, schemaId, 1)).toMatchObject({ status: 'Completed' });
  }, 180_000);

  afterAll(async () => {
    await endpoint?.stop();
    await platform?.stop();
    await db?.drop();
  });

  test('a failing sync raises one alert, sent to the destination subscribed to alerts, and the next good run clears it', async () => {
    const dest = await platform.api('POST', '/api/destinations', {
      type: 'webhook',
      name: 'alerts to chat',
      url: endpoint.url,
      method: 'POST',
      filters: { tables: ['_tributary_alerts'], expression: "kind = 'sync_failed'" },
    });
    expect(dest).toMatchObject({ status: 201 });
    const before = await metrics();

    await db.admin.query(`REVOKE SELECT ON orders FROM ${db.user}`);
    await platform.api('POST', `/api/schemas/${schemaId}/sync`);
    expect(await waitForJobs(platform, schemaId, 2)).toMatchObject({ status: 'Failed' });
    const open = await platform.api('GET', '/api/alerts?state=open&kind=sync_failed');
    expect(open.status).toBe(200);
    const parsed = alertsResult.parse(open.body);
    expect(parsed.results).toHaveLength(1);
    expect(parsed.results[0]).toMatchObject({ severity: 'critical', state: 'open', subject: { schema_id: schemaId, source_name: 'obs', schema_name: 'orders' } });
    expect(parsed.results[0].message).toMatch(/permission denied/);
    await endpoint.waitFor((reqs) => reqs.some((r) => String(r.body).includes(parsed.results[0].id)), 60_000, "the alert at the destination");

    const after = await metrics();
    expect(sample(after, 'tributary_sync_runs_total', 'source="obs",schema="orders",status="Failed"')).toBe(sample(before, 'tributary_sync_runs_total', 'source="obs",schema="orders",status="Failed"') + 1);
    expect(sample(after, 'tributary_alerts_open', 'kind="sync_failed",severity="critical"')).toBe(1);
    expect(after).toMatch(/^tributary_http_requests_total\{method="GET",route="\/api\/alerts",status="200"\} \d+$/m);
    expect(after).toMatch(/^tributary_sync_duration_seconds_count\{source="obs",schema="orders",status="Completed"\} 1$/m);

    await db.admin.query(`GRANT SELECT ON orders TO ${db.user}`);
    await platform.api('POST', `/api/schemas/${schemaId}/sync`);
    expect(await waitForJobs(platform, schemaId, 3)).toMatchObject({ status: 'Completed' });
    const all = alertsResult.parse((await platform.api('GET', '/api/alerts?kind=sync_failed')).body).results;
    expect(all.map((a) => a.state)).toEqual(['cleared']);
    expect(sample(await metrics(), 'tributary_sync_rows_total', 'source="obs",schema="orders"')).toBe(4);
  });

  test("the Temporal SDK's own worker metrics are served on TRIBUTARY_TEMPORAL_METRICS_ADDRESS and move as a sync runs", async () => {
    const sdk = async () => {
      const res = await fetch(sdkMetricsUrl);
      expect(res.status).toBe(200);
      return res.text();
    };
    // Summed over every series of the family whose labels include `match` (the SDK adds namespace, task queue…).
    const total = (text: string, family: string, match: string) =>
      [...text.matchAll(new RegExp(`^${family}(?:_total)?\\{([^}]*)\\} (\\S+)$`, 'gm'))].filter((m) => m[1].includes(match)).reduce((n, m) => n + Number(m[2]), 0);
    const before = await sdk();
    expect(before).toMatch(/^temporal_/m);
    const jobs = (await platform.api('GET', `/api/jobs?schema_id=${schemaId}`)).body.results.length;
    await platform.api('POST', `/api/schemas/${schemaId}/sync`);
    expect(await waitForJobs(platform, schemaId, jobs + 1)).toMatchObject({ status: 'Completed' });
    // The run's workflow completes just after its job is closed: poll for the counter, not a fixed wait.
    const deadline = Date.now() + 30_000;
    let after = await sdk();
    while (total(after, 'temporal_workflow_completed', 'workflow_type="syncSchema"') <= total(before, 'temporal_workflow_completed', 'workflow_type="syncSchema"') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      after = await sdk();
    }
    expect(total(after, 'temporal_workflow_completed', 'workflow_type="syncSchema"')).toBeGreaterThan(total(before, 'temporal_workflow_completed', 'workflow_type="syncSchema"'));
    expect(total(after, 'temporal_activity_execution_latency_count', '')).toBeGreaterThan(total(before, 'temporal_activity_execution_latency_count', ''));
    // Off the API's /metrics: the SDK's core serves them itself, apart from prom-client's registry.
    expect(await metrics()).not.toMatch(/^temporal_/m);
  });

  test('GET /api/alerts refuses unknown filters, naming them', async () => {
    const res = await platform.api('GET', '/api/alerts?kind=volcano&colour=red');
    expect(res.status).toBe(400);
    expect(res.body.details.map((d: any) => d.field).sort()).toEqual(expect.arrayContaining(['kind']));
  });

  test('/docs serves the API page and its assets from the installed swagger-ui-dist, without a token', async () => {
    const page = await fetch(`${platform.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    for (const src of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])) {
      const asset = await fetch(`${platform.url}${src}`);
      expect([src, asset.status]).toEqual([src, 200]);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    expect(await (await fetch(`${platform.url}/docs/init.js`)).text()).toContain('/api/openapi.json');
    expect((await fetch(`${platform.url}/docs/assets/nope.js`)).status).toBe(404);
  });
});
