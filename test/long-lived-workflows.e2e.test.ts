import fs from 'node:fs';
import path from 'node:path';
import Stripe from 'stripe';
import type { Client } from '@temporalio/client';
import { STRIPE_TABLES } from '../connectors/stripe/tables';
import { asSourceUser, eventually, grantCdc } from './support/cdc';
import { historyToFileText } from './support/history-files';
import { makeDataDir, query, startPlatform, waitForJobs, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';
import { startStripeFake, type StripeFake } from './support/stripe-fake';
import { historyText, withTemporal } from './support/temporal-history';

/**
 * The workflows that live for months, on one platform: five CDC mirrors streaming at once beside a batch
 * sync and a Stripe webhook table (streams have their own task queue and slots), a restart that leaves
 * the running mirrors alone, two webhook states of one object in the same second, and the histories the
 * replay test (test/replay.test.ts) replays: `npm run record-histories` runs this file with
 * TRIBUTARY_RECORD_HISTORIES=1 and writes them to test/histories/.
 */
const MIRRORS = 5;
const RECORD = process.env.TRIBUTARY_RECORD_HISTORIES === '1';
const HISTORIES = path.join(__dirname, 'histories');

describe('long-lived workflows', () => {
  let fake: StripeFake;
  const dbs: SourceDb[] = [];
  let dataDir: string;
  let platform: RunningPlatform;
  let token: string;
  const cdcSources: string[] = [];
  let stripeSource: string;
  let stripeSecret: string;
  let batchSchema: string;

  const env = () => ({
    TRIBUTARY_STRIPE_API_URL: fake.url,
    TRIBUTARY_STRIPE_TEST_RPS: '100',
    TRIBUTARY_STRIPE_SETTLE_SECONDS: '1',
    TRIBUTARY_CDC_FLUSH_MS: '200',
    // Short runs: a pause, a resume and two table changes are enough to continue as new.
    TRIBUTARY_CDC_LOOPS_PER_RUN: '4',
    LOG_LEVEL: process.env.TRIBUTARY_TEST_LOG_LEVEL ?? 'warn',
  });
  const cdcOf = async (id: string) => (await platform.api('GET', `/api/sources/${id}`)).body.cdc;
  const mirrorId = (id: string) => `cdc-${id}`;

  /** Every run of a workflow id, oldest first. */
  async function runs(client: Client, workflowId: string): Promise<{ runId: string; status: string }[]> {
    const out: { runId: string; status: string; start: number }[] = [];
    for await (const wf of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) out.push({ runId: wf.runId, status: wf.status.name, start: wf.startTime.getTime() });
    return out.sort((a, b) => a.start - b.start);
  }

  /** The events of every run of the mirror, counted by what they are. */
  async function mirrorEvents(client: Client, sourceId: string) {
    const counts = { streamsScheduled: 0, preparesScheduled: 0, signals: 0 };
    for (const run of await runs(client, mirrorId(sourceId))) {
      const history = await client.workflow.getHandle(mirrorId(sourceId), run.runId).fetchHistory();
      for (const e of history.events ?? []) {
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
        if (type === 'streamCdc') counts.streamsScheduled++;
        if (type === 'prepareCdc') counts.preparesScheduled++;
        if (e.workflowExecutionSignaledEventAttributes) counts.signals++;
      }
    }
    return counts;
  }

  /** The mirror's stream activity is running on a worker (not merely scheduled and waiting for a slot). */
  async function streamRunning(client: Client, sourceId: string): Promise<boolean> {
    const d = await client.workflow.getHandle(mirrorId(sourceId)).describe();
    return (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'streamCdc' && Number(a.state) === 2 /* STARTED */);
  }

  async function allStreaming(timeoutMs = 180_000) {
    await withTemporal(platform.temporalAddress, (client) =>
      eventually(async () => {
        const states = await Promise.all(cdcSources.map((id) => streamRunning(client, id)));
        expect(states).toEqual(cdcSources.map(() => true));
      }, timeoutMs),
    );
  }

  /** A change committed at each source shows in its warehouse table. */
  async function everyMirrorDelivers(label: string) {
    await Promise.all(dbs.map((db) => db.admin.query(`INSERT INTO t VALUES (1000 + (SELECT count(*) FROM t), $1)`, [label])));
    await Promise.all(
      cdcSources.map((_, i) =>
        eventually(async () => expect(await query(platform, `SELECT count() AS n FROM mirror${i}_t FINAL WHERE v = '${label}'`)).toEqual([{ n: '1' }]), 90_000),
      ),
    );
  }

  async function deliver(event: Record<string, unknown>) {
    const payload = JSON.stringify(event);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: stripeSecret });
    const res = await fetch(`${platform.url}/webhooks/stripe/${stripeSource}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
      body: payload,
    });
    expect(res.status).toBe(200);
  }
  const eventsApplied = async () => Number((await platform.api('GET', `/api/sources/${stripeSource}/webhook-info`)).body.intake.events_applied);
  const customerName = async (id: string) => (await query(platform, `SELECT name FROM shop_customer FINAL WHERE id = '${id}'`))[0]?.name;

  beforeAll(async () => {
    fake = await startStripeFake();
    for (let i = 0; i < 3; i++) fake.create('customer', { name: `Existing ${i}`, email: `existing${i}@example.com` });
    for (let i = 0; i < MIRRORS; i++) {
      const db = await createSourceDb(`mirror${i}`);
      await grantCdc(db);
      await asSourceUser(db, `CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5) g`);
      dbs.push(db);
    }
    await dbs[0].admin.query(`CREATE TABLE plain (id int PRIMARY KEY, v text); INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 50) g`);
    dataDir = makeDataDir('long-lived');
    platform = await startPlatform({ dataDir, env: env() });
    token = platform.token;
  }, 180_000);

  afterAll(async () => {
    await platform?.stop();
    for (const db of dbs) await db.drop().catch(() => undefined);
    await fake?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('five CDC mirrors stream at once, and a batch sync and a webhook batch still run beside them', async () => {
    for (let i = 0; i < MIRRORS; i++) {
      const res = await platform.api('POST', '/api/sources', {
        source_type: 'Postgres',
        prefix: `mirror${i}`,
        payload: { ...connectionPayload(dbs[i]), schemas: [{ name: 't', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }, ...(i === 0 ? [{ name: 'plain', should_sync: false }] : [])] },
      });
      expect([res.status, res.body.message]).toEqual([201, undefined]);
      cdcSources.push(res.body.id);
    }
    // Each stream holds its activity for TRIBUTARY_CDC_STREAM_MS (15 minutes): all five at once.
    await allStreaming();

    const batch = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'batch',
      payload: { ...connectionPayload(dbs[0]), schemas: [{ name: 'plain', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }, { name: 't', should_sync: false }] },
    });
    expect(batch.status).toBe(201);
    batchSchema = batch.body.schemas.find((s: { name: string }) => s.name === 'plain').id;
    expect((await waitForJobs(platform, batchSchema, 1, 120_000)).status).toBe('Completed');
    expect(await query(platform, 'SELECT count() AS n FROM batch_plain')).toEqual([{ n: '50' }]);

    const schemas = STRIPE_TABLES.map((t) =>
      t.name === 'Customer' ? { name: t.name, should_sync: true, sync_type: 'webhook', sync_frequency: '24hour' } : { name: t.name, should_sync: false },
    );
    const shop = await platform.api('POST', '/api/sources', { source_type: 'Stripe', prefix: 'shop', payload: { stripe_secret_key: fake.key, schemas } });
    expect(shop.status).toBe(201);
    stripeSource = shop.body.id;
    expect((await waitForJobs(platform, shop.body.schemas.find((s: { name: string }) => s.name === 'Customer').id, 1, 120_000)).status).toBe('Completed');
    expect((await platform.api('POST', `/api/sources/${stripeSource}/webhook`)).body).toMatchObject({ success: true });
    stripeSecret = fake.webhookSecrets.get([...fake.webhookEndpoints.keys()][0])!;
    const ada = fake.create('customer', { name: 'Ada', email: 'ada@example.com' });
    await deliver(fake.events().at(-1)!);
    await eventually(async () => expect(await customerName(ada.id)).toBe('Ada'), 60_000);

    // The streams never stopped for them, and each still delivers.
    await allStreaming(10_000);
    await everyMirrorDelivers('beside the batch work');
  }, 600_000);

  test('two webhook states of one object in the same second, delivered newest first: the newest stays', async () => {
    const grace = fake.create('customer', { name: 'Grace v1', email: 'grace@example.com' });
    const t = Math.floor(Date.now() / 1000) + 2;
    fake.update('customer', grace.id, { name: 'Grace older' }, { at: t });
    const older = fake.events().at(-1)!;
    fake.update('customer', grace.id, { name: 'Grace newer' }, { at: t });
    const newer = fake.events().at(-1)!;
    expect(older.created).toBe(newer.created);

    await deliver(newer);
    await eventually(async () => expect(await customerName(grace.id)).toBe('Grace newer'), 60_000);
    const applied = await eventsApplied();
    await deliver(older); // Stripe retrying the older delivery after the newer one succeeded
    await eventually(async () => expect(await eventsApplied()).toBe(applied + 1), 60_000);
    expect(await customerName(grace.id)).toBe('Grace newer');
  }, 180_000);

  test('a restart leaves the running mirrors alone: no signal, no new stream, and each still delivers', async () => {
    const before = await withTemporal(platform.temporalAddress, (c) => Promise.all(cdcSources.map((id) => mirrorEvents(c, id))));
    expect(await platform.stop()).toBe(0);
    platform = await startPlatform({ dataDir, token, env: env() });
    await allStreaming();
    await everyMirrorDelivers('after the restart');
    const after = await withTemporal(platform.temporalAddress, (c) => Promise.all(cdcSources.map((id) => mirrorEvents(c, id))));
    // The stream activity interrupted by the stop is retried (the same scheduled activity, attempt 2): the
    // mirror did not go round its loop again.
    expect(after).toEqual(before);
  }, 600_000);

  test('a mirror paused, resumed and told its tables changed keeps streaming, across a continue-as-new', async () => {
    const id = cdcSources[0];
    expect((await platform.api('POST', `/api/sources/${id}/cdc/pause`)).status).toBe(200);
    await eventually(async () => expect(await cdcOf(id)).toMatchObject({ status: 'Paused', paused: true }));
    expect((await platform.api('POST', `/api/sources/${id}/cdc/resume`)).status).toBe(200);
    const schemaId = (await platform.api('GET', `/api/sources/${id}`)).body.schemas.find((s: { name: string }) => s.name === 't').id;
    await withTemporal(platform.temporalAddress, async (client) => {
      // Each "sync now" of a CDC table is a tablesChanged signal: one loop of the mirror each.
      for (let i = 0; i < 4 && !(await runs(client, mirrorId(id))).some((r) => r.status === 'CONTINUED_AS_NEW'); i++) {
        await eventually(async () => expect(await streamRunning(client, id)).toBe(true), 90_000);
        const streams = (await mirrorEvents(client, id)).streamsScheduled;
        expect((await platform.api('POST', `/api/schemas/${schemaId}/sync`)).status).toBe(202);
        await eventually(async () => expect((await mirrorEvents(client, id)).streamsScheduled).toBeGreaterThan(streams), 90_000);
      }
      expect((await runs(client, mirrorId(id))).map((r) => r.status)).toContain('CONTINUED_AS_NEW');
      await eventually(async () => expect(await streamRunning(client, id)).toBe(true), 90_000);
    });
    await everyMirrorDelivers('after the signals');
  }, 600_000);

  (RECORD ? test : test.skip)('record the histories the replay test replays', async () => {
    const secrets = [...dbs.map((d) => d.password), fake.key, stripeSecret];
    await withTemporal(platform.temporalAddress, async (client) => {
      const syncRuns: string[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowType = "syncSchema" AND ExecutionStatus = "Completed"` })) syncRuns.push(`${wf.workflowId}\n${wf.runId}`);
      // The alert check the platform's schedule starts every minute (TRIBUTARY_ALERT_CHECK_SECONDS): one completed run.
      const alertRuns = await eventually(async () => {
        const found: string[] = [];
        for await (const wf of client.workflow.list({ query: `WorkflowType = "watchAlerts" AND ExecutionStatus = "Completed"` })) found.push(`${wf.workflowId}\n${wf.runId}`);
        expect(found.length).toBeGreaterThan(0);
        return found;
      }, 90_000);
      const wanted: [string, string, string][] = [
        ...(await runs(client, mirrorId(cdcSources[0]))).map((r, i) => [`cdc-source-run${i + 1}`, mirrorId(cdcSources[0]), r.runId] as [string, string, string]),
        ...(await runs(client, `webhooks-${stripeSource}`)).map((r, i) => [`webhook-events-run${i + 1}`, `webhooks-${stripeSource}`, r.runId] as [string, string, string]),
        ...syncRuns.slice(0, 2).map((w, i) => [`sync-schema-${i + 1}`, ...w.split('\n')] as [string, string, string]),
        [`watch-alerts-1`, ...alertRuns[0].split('\n')] as [string, string, string],
      ];
      expect(wanted.map((w) => w[0])).toEqual(expect.arrayContaining(['cdc-source-run1', 'cdc-source-run2', 'webhook-events-run1', 'sync-schema-1', 'watch-alerts-1']));
      // Only this file's recordings: test/destination-delivery.e2e.test.ts records the delivery workflow's.
      fs.mkdirSync(HISTORIES, { recursive: true });
      for (const f of fs.readdirSync(HISTORIES)) if (/^(cdc-source|webhook-events|sync-schema|watch-alerts)-/.test(f)) fs.rmSync(path.join(HISTORIES, f));
      for (const [name, workflowId, runId] of wanted) {
        const text = await historyText(client, workflowId, runId);
        for (const s of secrets) expect(text).not.toContain(s);
        const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
        fs.writeFileSync(path.join(HISTORIES, `${name}.json`), historyToFileText(history));
      }
    });
  }, 120_000);
});
