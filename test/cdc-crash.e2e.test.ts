import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { createLogger } from '../platform/logger';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { asSourceUser, eventually, expectTablesEqual, grantCdc, secondClient } from './support/cdc';
import { testEnv } from './support/env';
import { freePort } from './support/ports';
import { makeDataDir, startPlatform, type RunningPlatform } from './support/platform';
import { connectionPayload, createSourceDb, type SourceDb } from './support/source-db';

/**
 * CDC through crashes: SIGKILL the worker mid-stream while a writer keeps changing the source, start a
 * new one — the stream resumes from the checkpoint, nothing lost, nothing duplicated after FINAL.
 * Then a Temporal restart mid-stream. Temporal runs apart from the killed process, as in production.
 * Kill points are deterministic: after the N-th batch the worker logs as durable.
 */
const COLS = [
  { pg: 'id', ch: 'id' },
  { pg: 'qty', ch: 'qty' },
  { pg: 'note', ch: 'note' },
];

describe('CDC crash recovery', () => {
  let db: SourceDb;
  let temporal: DevServer;
  let temporalDir: string;
  let temporalPorts: { port: number; uiPort: number };
  let dataDir: string;
  let platform: RunningPlatform;
  let token: string;
  let sourceId: string;

  const startTemporal = () =>
    startDevServer({ cliPath: testEnv().temporalCliPath, dataDir: temporalDir, ...temporalPorts, namespace: 'default', log: createLogger('warn') });
  const env = () => ({
    TEMPORAL_ADDRESS: temporal.address,
    LOG_LEVEL: 'debug',
    TRIBUTARY_CDC_BATCH_CHANGES: '500',
    TRIBUTARY_CDC_FLUSH_MS: '100',
    // The killed stream is resumed 5 s after its last heartbeat rather than 20 s.
    TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS: '5000',
  });

  /** Keeps committing mixed transactions (inserts, updates, deletes) until stopped. */
  function startWriter(client: pg.Client, firstId: number) {
    let stop = false;
    let next = firstId;
    let txns = 0;
    const done = (async () => {
      while (!stop) {
        await client.query(`BEGIN;
          INSERT INTO orders SELECT g, g % 17, 'w ' || g FROM generate_series(${next}, ${next + 59}) g;
          UPDATE orders SET qty = qty + 1, note = note || '+' WHERE id % 97 = ${txns % 97} AND id < ${next};
          DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE id < ${next} ORDER BY id DESC LIMIT 5 OFFSET 30);
          COMMIT`);
        next += 60;
        txns++;
      }
    })();
    return {
      async stop() {
        stop = true;
        await done;
        await client.end();
        return txns;
      },
    };
  }

  async function killAfterDurableBatches(n: number, restartEnv: Record<string, string> = env()) {
    const pattern = /"msg":"CDC batch durable"/g;
    const deadline = Date.now() + 120_000;
    while ((platform.output().match(pattern) ?? []).length < n) {
      if (Date.now() > deadline) throw new Error(`no ${n} durable CDC batches within 120 s:\n${platform.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await platform.kill();
    platform = await startPlatform({ dataDir, token, env: restartEnv });
  }

  beforeAll(async () => {
    db = await createSourceDb('cdccrash');
    await grantCdc(db);
    await asSourceUser(
      db,
      `CREATE TABLE orders (id bigint PRIMARY KEY, qty int NOT NULL, note text);
       INSERT INTO orders SELECT g, g % 17, 'o ' || g FROM generate_series(1, 20000) g;`,
    );
    temporalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-'));
    temporalPorts = { port: await freePort(), uiPort: await freePort() };
    temporal = await startTemporal();
    dataDir = makeDataDir('cdccrash');
    platform = await startPlatform({ dataDir, env: env() });
    token = platform.token;
    const res = await platform.api('POST', '/api/sources', {
      source_type: 'Postgres',
      prefix: 'crash',
      payload: { ...connectionPayload(db), schemas: [{ name: 'orders', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }] },
    });
    expect(res.status).toBe(201);
    sourceId = res.body.id;
    await expectTablesEqual(db, platform, 'orders', 'crash_orders', COLS);
    await eventually(async () => expect((await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc.status).toBe('Streaming'));
  }, 180_000);

  afterAll(async () => {
    await platform?.stop();
    await temporal?.stop();
    await db?.drop();
    for (const d of [dataDir, temporalDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('SIGKILL of the worker mid-stream, three times under load: FINAL equals the source', async () => {
    const writer = startWriter(await secondClient(db), 100_000);
    try {
      // Each life of the worker logs its own batches: kill at different points of each.
      // Small batches (500 changes, cut every 100 ms) put many kill points in each life; the last life runs with the
      // default batching, so the backlog the kills left (~1M changes) is caught up in far fewer engine statements:
      // at 100 ms it took ~400 batches and ~140 s.
      await killAfterDurableBatches(3);
      await killAfterDurableBatches(8);
      await killAfterDurableBatches(5, { ...env(), TRIBUTARY_CDC_BATCH_CHANGES: '20000', TRIBUTARY_CDC_FLUSH_MS: '500' });
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      const txns = await writer.stop();
      expect(txns).toBeGreaterThan(10);
    }
    // A killed worker is noticed after the stream's heartbeat timeout (5 s here); the retry resumes from the checkpoint.
    await expectTablesEqual(db, platform, 'orders', 'crash_orders', COLS, 420_000);
    const slot = await db.admin.query(`SELECT active FROM pg_replication_slots WHERE slot_name LIKE 'tributary_%'`);
    expect(slot.rows).toEqual([{ active: true }]);
  }, 720_000);

  test('a Temporal server restart mid-stream: streaming carries on', async () => {
    const writer = startWriter(await secondClient(db), 10_000_000);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await temporal.stop();
      // The worker keeps streaming while Temporal is away (heartbeats fail and are retried).
      await new Promise((r) => setTimeout(r, 3000));
      temporal = await startTemporal();
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await writer.stop();
    }
    await expectTablesEqual(db, platform, 'orders', 'crash_orders', COLS, 180_000);
    // And it is still streaming: a change made now arrives.
    await db.admin.query(`UPDATE orders SET note = 'after restart' WHERE id = 1`);
    await expectTablesEqual(db, platform, 'orders', 'crash_orders', COLS, 120_000);
  }, 600_000);
});
