import fs from 'node:fs';
import path from 'node:path';
import { destinationWorkflowId } from '../temporal/destination-workflows';
import { asSourceUser, eventually, grantCdc } from './support/cdc';
import { createCdcSource, createDestination, destinationLogs, destinationMetrics, expectSigned, items, waitForMetric } from './support/destinations';
import { makeDataDir, query, startPlatform, type RunningPlatform } from './support/platform';
import { createSourceDb, type SourceDb } from './support/source-db';
import { historyToFileText } from './support/history-files';
import { historyText, withTemporal } from './support/temporal-history';
import { WebhookReceiver } from './support/webhook-receiver';

/**
 * Delivery of CDC changes to webhook destinations, end to end: a Postgres source streaming into the warehouse's
 * change log, destinations created through the API, and a local endpoint that records every request and checks
 * its Standard Webhooks signature. Each test has its own source table and destination (filtered to that table).
 */
const TABLES = ['ord', 'bat', 'retry', 'down', 'health', 'edit'];
const COOLDOWN_MS = 2_500;
const RECORD = process.env.TRIBUTARY_RECORD_HISTORIES === '1';

describe('destination delivery', () => {
  let db: SourceDb;
  let dataDir: string;
  let platform: RunningPlatform;
  let receiver: WebhookReceiver;
  /** The destination of the health test: its workflow waited, timed, was signalled (the replay test's recording). */
  let healthDestination: { id: string; secret: string } | undefined;

  beforeAll(async () => {
    db = await createSourceDb('destdeliv');
    await grantCdc(db);
    await asSourceUser(db, TABLES.map((t) => `CREATE TABLE ${t} (id bigint PRIMARY KEY, rev int NOT NULL, note text);`).join('\n'));
    receiver = await new WebhookReceiver().start();
    dataDir = makeDataDir('destdeliv');
    platform = await startPlatform({
      dataDir,
      env: {
        TRIBUTARY_CDC_FLUSH_MS: '100',
        TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE: '1',
        TRIBUTARY_DESTINATION_COOLDOWN_MS: String(COOLDOWN_MS),
        TRIBUTARY_DESTINATION_RETRY_PAUSE_MS: '300',
        // Short runs: the health test's waits and restarts continue the workflow as new a few times.
        TRIBUTARY_DESTINATION_LOOPS_PER_RUN: '3',
      },
    });
    await createCdcSource(platform, db, 'dd', TABLES);
  }, 180_000);

  afterAll(async () => {
    await platform?.stop();
    await receiver?.stop();
    await db?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Per key, the `rev`s its delivered changes carried, in the order they arrived. */
  const revsByKey = (bodies: any[]) => {
    const m = new Map<number, number[]>();
    for (const b of bodies) m.set(Number(b.row.id), [...(m.get(Number(b.row.id)) ?? []), Number(b.row.rev)]);
    return m;
  };

  test('every change in log order, signed, filtered by an expression; metrics, logs and /api/query show it', async () => {
    const d = await createDestination(platform, { name: 'order', url: receiver.url('/ord'), filters: { tables: ['dd_ord'], expression: "note IS NULL OR note != 'skip'" } });
    await db.admin.query(`INSERT INTO ord SELECT g, 1, 'n' FROM generate_series(1, 20) g`);
    for (let rev = 2; rev <= 6; rev++) {
      await db.admin.query(`UPDATE ord SET rev = ${rev}, note = CASE WHEN id = 3 AND ${rev} = 2 THEN 'skip' ELSE 'n' END`);
    }
    await db.admin.query(`DELETE FROM ord WHERE id = 20`);
    const expected = 20 + 20 * 5 - 1 + 1;
    await eventually(async () => expect(receiver.delivered('/ord').length).toBe(expected), 60_000);

    const reqs = receiver.at('/ord');
    expectSigned(reqs, d.secret);
    const bodies = reqs.map((r) => JSON.parse(r.body));
    // One change per request, its webhook-id the change's id (no body template: the change itself is the body).
    expect(reqs.map((r) => r.headers['webhook-id'])).toEqual(bodies.map((b) => b.id));
    expect(new Set(bodies.map((b) => b.id)).size).toBe(expected);
    expect(bodies.every((b) => b.table === 'dd_ord')).toBe(true);
    // Log order: versions (LSNs) never go back.
    const versions = bodies.map((b) => BigInt(b.version));
    expect(versions.every((v, i) => i === 0 || v >= versions[i - 1])).toBe(true);
    const upserts = bodies.filter((b) => b.op !== 'delete');
    const byKey = revsByKey(upserts);
    for (let id = 1; id <= 20; id++) expect(byKey.get(id)).toEqual(id === 3 ? [1, 3, 4, 5, 6] : [1, 2, 3, 4, 5, 6]);
    expect(upserts.filter((b) => b.row.rev === 1).every((b) => b.op === 'insert')).toBe(true);
    const deletes = bodies.filter((b) => b.op === 'delete');
    expect(deletes.map((b) => Number(b.key.id))).toEqual([20]);
    expect(bodies[bodies.length - 1].op).toBe('delete');

    const m = await waitForMetric(platform, d.id, 'succeeded', expected);
    expect(m.totals).toMatchObject({ succeeded: expected, filtered: 1, failed: 0, rejected: 0, retried: 0 });
    expect(m.health_state).toBe('healthy');
    await eventually(async () => expect((await destinationMetrics(platform, d.id)).lag).toEqual({ changes: 0, oldest_landed_at: null, seconds: null }));
    for (const interval of ['1m', '5m', '1d']) expect((await destinationMetrics(platform, d.id, interval)).totals.succeeded).toBe(expected);

    const logs = await destinationLogs(platform, d.id, '&level=info');
    expect(logs.length).toBe(expected);
    expect(logs.every((l) => l.status === 200 && l.attempt === 1 && l.change_ids.length === 1 && l.webhook_id === l.change_ids[0])).toBe(true);
    expect(await destinationLogs(platform, d.id, '&level=error')).toEqual([]);

    // Bad parameters are 400s naming the field; an unknown destination is a 404.
    const bad = await platform.api('GET', `/api/destinations/${d.id}/metrics?interval=2m`);
    expect(bad.status).toBe(400);
    expect(bad.body.details[0].field).toBe('interval');
    const badLevel = await platform.api('GET', `/api/destinations/${d.id}/logs?level=loud`);
    expect(badLevel.status).toBe(400);
    expect(badLevel.body.details[0].field).toMatch(/^level/);
    const typo = await platform.api('GET', `/api/destinations/${d.id}/logs?lmit=5`);
    expect(typo.status).toBe(400);
    expect(typo.body.details[0].message).toMatch(/did you mean "limit"/);
    expect((await platform.api('GET', '/api/destinations/00000000-0000-4000-8000-000000000000/metrics')).status).toBe(404);
    expect((await platform.api('GET', '/api/destinations/nope/logs')).status).toBe(404);

    // The same tables answer users' SQL.
    const viaQuery = await query(
      platform,
      `SELECT metric, toUInt64(sum(count)) AS n FROM _tributary_destination_metrics WHERE destination_id = '${d.id}' GROUP BY metric ORDER BY metric`,
    );
    expect(viaQuery.map((r) => [r.metric, Number(r.n)])).toEqual([
      ['filtered', 1],
      ['succeeded', expected],
    ]);
    const logRows = await query(platform, `SELECT count() AS n FROM _tributary_destination_logs WHERE destination_id = '${d.id}' AND status = 200`);
    expect(Number(logRows[0].n)).toBe(expected);
  });

  test('batch_size: consecutive changes in one request as an array of rendered bodies, in order', async () => {
    const d = await createDestination(platform, {
      name: 'batched',
      url: receiver.url('/bat'),
      batch_size: 25,
      body: { k: { $eval: 'row.id' }, rev: { $eval: 'row.rev' }, text: 'change ${op} of ${table}' },
      filters: { tables: ['dd_bat'] },
    });
    await db.admin.query(`INSERT INTO bat SELECT g, 1, 'n' FROM generate_series(1, 200) g`);
    await db.admin.query(`UPDATE bat SET rev = 2`);
    await db.admin.query(`UPDATE bat SET rev = 3 WHERE id <= 100`);
    const expected = 500;
    await eventually(async () => expect(items(receiver.delivered('/bat')).length).toBe(expected), 60_000);
    const reqs = receiver.at('/bat');
    expectSigned(reqs, d.secret);
    expect(reqs.every((r) => Array.isArray(JSON.parse(r.body)) && JSON.parse(r.body).length <= 25)).toBe(true);
    expect(reqs.length).toBeLessThan(expected / 2);
    expect(reqs.every((r) => String(r.headers['webhook-id']).startsWith('bat_'))).toBe(true);
    const all = items(reqs).map((i) => i.body);
    expect(all[0]).toEqual({ k: expect.anything(), rev: 1, text: 'change insert of dd_bat' });
    const byKey = new Map<number, number[]>();
    for (const b of all) byKey.set(Number(b.k), [...(byKey.get(Number(b.k)) ?? []), Number(b.rev)]);
    for (let id = 1; id <= 200; id++) expect(byKey.get(id)).toEqual(id <= 100 ? [1, 2, 3] : [1, 2]);
    const m = await waitForMetric(platform, d.id, 'succeeded', expected);
    expect(m.totals.succeeded).toBe(expected);
  });

  test('retries: 500 then 429 with Retry-After then 200 (same webhook-id); a 422 is logged and not retried', async () => {
    const keyOf = (r: { body: string }) => Number(JSON.parse(r.body).row.id);
    receiver.answer('/retry', (r) => {
      const id = keyOf(r);
      const before = receiver.at('/retry').filter((x) => keyOf(x) === id).length - 1; // this one is recorded already
      if (id === 1 && before === 0) return { status: 500, body: 'boom' };
      if (id === 1 && before === 1) return { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' };
      if (id === 2) return { status: 422, body: '{"error":"unprocessable"}' };
      return { status: 200 };
    });
    const d = await createDestination(platform, { name: 'retries', url: receiver.url('/retry'), filters: { tables: ['dd_retry'] } });
    await db.admin.query(`INSERT INTO retry VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'c')`);
    await eventually(async () => expect(receiver.delivered('/retry').map(keyOf)).toEqual([1, 3]), 60_000);
    const reqs = receiver.at('/retry');
    expectSigned(reqs, d.secret);
    expect(reqs.map((r) => [keyOf(r), r.answered])).toEqual([
      [1, 500],
      [1, 429],
      [1, 200],
      [2, 422],
      [3, 200],
    ]);
    const first = reqs.filter((r) => keyOf(r) === 1);
    expect(new Set(first.map((r) => r.headers['webhook-id'])).size).toBe(1);
    // Retry-After (2 s) was honoured: the third attempt came no sooner than asked.
    expect(first[2].receivedAt - first[1].receivedAt).toBeGreaterThanOrEqual(1_900);

    const m = await waitForMetric(platform, d.id, 'succeeded', 2);
    expect(m.totals).toMatchObject({ succeeded: 2, rejected: 1, retried: 2, failed: 0, disabled: 0 });
    const logs = await destinationLogs(platform, d.id);
    expect(logs.find((l) => l.status === 422)).toMatchObject({ level: 'warn', attempt: 1, message: expect.stringMatching(/rejected.*not retried/) });
    expect(logs.filter((l) => l.status === 500 || l.status === 429).map((l) => [l.level, l.attempt])).toEqual([
      ['warn', 2],
      ['warn', 1],
    ]);
  });

  test('the endpoint down, then back: nothing lost, in order', async () => {
    let down = true;
    receiver.answer('/down', () => (down ? 'drop' : { status: 204 }));
    const d = await createDestination(platform, { name: 'down', url: receiver.url('/down'), filters: { tables: ['dd_down'] } });
    await db.admin.query(`INSERT INTO down SELECT g, 1, 'n' FROM generate_series(1, 10) g`);
    await db.admin.query(`UPDATE down SET rev = 2`);
    await db.admin.query(`UPDATE down SET rev = 3`);
    // Down long enough for the attempts to run out and the health to disable it for the cool-down.
    await eventually(async () => expect((await destinationMetrics(platform, d.id)).totals.disabled).toBeGreaterThanOrEqual(1), 60_000);
    const lag = (await destinationMetrics(platform, d.id)).lag;
    expect(lag.changes).toBe(30);
    expect(lag.seconds).toBeGreaterThan(0);
    down = false;
    await eventually(async () => expect(receiver.delivered('/down').length).toBe(30), 60_000);
    const bodies = receiver.delivered('/down').map((r) => JSON.parse(r.body));
    expect(new Set(bodies.map((b) => b.id)).size).toBe(30);
    const byKey = revsByKey(bodies);
    for (let id = 1; id <= 10; id++) expect(byKey.get(id)).toEqual([1, 2, 3]);
    expect(receiver.at('/down').filter((r) => r.answered === 'dropped').length).toBeGreaterThanOrEqual(3);
    const m = await waitForMetric(platform, d.id, 'succeeded', 30);
    expect(m.totals.failed).toBeGreaterThanOrEqual(1);
    expect(m.lag.changes).toBe(0);
  });

  test('health: degraded → disabled for the cool-down → re-enabled → disabled after 3; changes wait; an edit re-enables', async () => {
    let failing = true;
    receiver.answer('/health', () => (failing ? { status: 503, headers: { 'retry-after': '0' }, body: 'unavailable' } : { status: 200 }));
    const d = await createDestination(platform, { name: 'health', url: receiver.url('/health'), filters: { tables: ['dd_health'] } });
    healthDestination = d;
    await db.admin.query(`INSERT INTO health VALUES (1, 1, 'a')`);
    await eventually(async () => expect((await destinationMetrics(platform, d.id)).health_state).toBe('disabled'), 90_000);
    const states = (await destinationLogs(platform, d.id))
      .reverse()
      .map((l) => /^health (\w+) → (\w+)/.exec(l.message))
      .filter((x): x is RegExpExecArray => !!x)
      .map((x) => `${x[1]}>${x[2]}`);
    expect(states).toEqual([
      'healthy>degraded',
      'degraded>disabled_temporarily',
      'disabled_temporarily>degraded',
      'degraded>disabled_temporarily',
      'disabled_temporarily>degraded',
      'degraded>disabled',
    ]);
    const m = await waitForMetric(platform, d.id, 'disabled', 3);
    expect(m.totals.disabled).toBe(3);
    expect(m.totals.succeeded).toBe(0);
    const shown = await platform.api('GET', `/api/destinations/${d.id}`);
    expect(shown.body.health_state).toBe('disabled');

    // Disabled for good: longer than a cool-down passes and nothing is sent; a new change waits in the log.
    const sent = receiver.at('/health').length;
    await db.admin.query(`INSERT INTO health VALUES (2, 1, 'b')`);
    await eventually(async () => expect((await destinationMetrics(platform, d.id)).lag.changes).toBe(2));
    await new Promise((r) => setTimeout(r, 2 * COOLDOWN_MS));
    expect(receiver.at('/health').length).toBe(sent);

    // The user fixes the endpoint and enables it again: both changes go, in order, and it is healthy.
    failing = false;
    const patched = await platform.api('PATCH', `/api/destinations/${d.id}`, { enabled: true });
    expect(patched.status).toBe(200);
    await eventually(async () => expect(receiver.delivered('/health').map((r) => Number(JSON.parse(r.body).row.id))).toEqual([1, 2]), 60_000);
    await eventually(async () => expect((await destinationMetrics(platform, d.id)).health_state).toBe('healthy'));
  });

  test('an edit mid-stream (a new URL) restarts the delivery on it: nothing lost, in order, the old URL gets nothing after', async () => {
    for (const path of ['/edit-a', '/edit-b']) receiver.answer(path, () => ({ status: 200, delayMs: 10 }));
    const d = await createDestination(platform, { name: 'edit', url: receiver.url('/edit-a'), filters: { tables: ['dd_edit'] } });
    await db.admin.query(`INSERT INTO edit SELECT g, 1, 'n' FROM generate_series(1, 50) g`);
    for (let rev = 2; rev <= 8; rev++) await db.admin.query(`UPDATE edit SET rev = ${rev}`);
    const expected = 50 * 8;
    await eventually(async () => expect(receiver.delivered('/edit-a').length).toBeGreaterThanOrEqual(60), 60_000);
    const patched = await platform.api('PATCH', `/api/destinations/${d.id}`, { url: receiver.url('/edit-b') });
    expect(patched.status).toBe(200);
    const ids = () => new Set([...receiver.delivered('/edit-a'), ...receiver.delivered('/edit-b')].map((r) => String(r.headers['webhook-id'])));
    await eventually(async () => expect(ids().size).toBe(expected), 90_000);
    const a = receiver.at('/edit-a');
    const b = receiver.at('/edit-b');
    expect(a.length).toBeLessThan(expected); // the edit came mid-stream
    expect(b.length).toBeGreaterThan(0);
    // The old delivery stopped before the new one began.
    expect(Math.max(...a.map((r) => r.receivedAt))).toBeLessThan(Math.min(...b.map((r) => r.receivedAt)));
    const seen = new Set<string>();
    const firsts = [...a, ...b].filter((r) => !seen.has(String(r.headers['webhook-id'])) && seen.add(String(r.headers['webhook-id'])));
    const byKey = revsByKey(firsts.map((r) => JSON.parse(r.body)));
    for (let id = 1; id <= 50; id++) expect(byKey.get(id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("the delivery workflow continues as new; its history holds ids, never a secret (recorded for the replay test with TRIBUTARY_RECORD_HISTORIES=1)", async () => {
    expect(healthDestination).toBeDefined();
    const { id, secret } = healthDestination!;
    await withTemporal(platform.temporalAddress, async (client) => {
      const runs: { runId: string; start: number }[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = "${destinationWorkflowId(id)}"` })) runs.push({ runId: wf.runId, start: wf.startTime.getTime() });
      runs.sort((x, y) => x.start - y.start);
      expect(runs.length).toBeGreaterThanOrEqual(2);
      const texts = await Promise.all(runs.map((r) => historyText(client, destinationWorkflowId(id), r.runId)));
      const all = texts.join('\n');
      expect(texts[0]).toContain('workflowExecutionContinuedAsNewEventAttributes');
      expect(all).toContain('"signalName":"destinationChanged"');
      expect(all).toContain(id);
      expect(all).not.toContain(secret);
      expect(all).not.toContain(secret.slice('whsec_'.length));
      if (RECORD) {
        for (const f of fs.readdirSync(path.join(__dirname, 'histories'))) if (f.startsWith('deliver-destination-')) fs.rmSync(path.join(__dirname, 'histories', f));
        for (const [i, r] of runs.entries()) {
          const history = await client.workflow.getHandle(destinationWorkflowId(id), r.runId).fetchHistory();
          fs.writeFileSync(path.join(__dirname, 'histories', `deliver-destination-run${i + 1}.json`), historyToFileText(history));
        }
      }
    });
  });
});
