/**
 * `npm run bench:cdc` — Postgres CDC through the real platform (embedded Temporal, chDB):
 *
 * 1. Sustained throughput: with the mirror paused, a mixed workload (per transaction of 100 changes:
 *    60 updates, 30 inserts, 10 deletes) is written to the design.md `orders` table; on resume, the time
 *    until the last transaction's rows are in the warehouse gives changes/s for a backlog.
 * 2. Raw decode: the same WAL read by pg-logical-replication (pgoutput, no sink) from a second slot made
 *    before the workload; the ratio throughput / raw decode is printed (target ≥ 0.5).
 * 3. Commit-to-visible lag at a steady 5,000 changes/s: each transaction's commit time (taken when COMMIT
 *    returns) against the first poll that sees its inserted rows in the warehouse; p50 and p99.
 *
 * A benchmark, not a test: it prints figures. Sizes: BENCH_ROWS (initial rows, 200,000),
 * BENCH_CHANGES (backlog, 300,000), BENCH_LAG_SECONDS (30), BENCH_LAG_RATE (5,000 changes/s).
 */
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { createOrders } from './bench-orders';
import type { RunningPlatform } from '../test/support/platform';
import { BenchParts, createPostgresSource } from './bench-setup';
import { commitToVisible, PER_TXN, pct, pollVisible, waitForMaxId as waitForId, warehouseMaxId as maxIdOf, Workload } from './bench-visibility';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 300_000);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 30);
const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 5_000);
const log = (m: string) => process.stderr.write(`[bench:cdc ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const TABLE = 'bench_orders';
const warehouseMaxId = (p: RunningPlatform) => maxIdOf(p, TABLE);
const waitForMaxId = (p: RunningPlatform, id: number) => waitForId(p, TABLE, id);

/** Reads `slot` with no sink, counting row changes until `expected`; changes per second. */
async function rawDecode(url: string, slot: string, publication: string, expected: number): Promise<{ perSecond: number; seconds: number }> {
  const u = new URL(url);
  const service = new LogicalReplicationService(
    { host: u.hostname, port: Number(u.port), database: 'postgres', user: 'postgres' },
    { acknowledge: { auto: true, timeoutSeconds: 10 } },
  );
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  let n = 0;
  let first = 0;
  return new Promise((resolve, reject) => {
    service.on('data', (_lsn: string, msg: { tag: string }) => {
      if (msg.tag !== 'insert' && msg.tag !== 'update' && msg.tag !== 'delete') return;
      if (n === 0) first = performance.now();
      if (++n === expected) {
        const seconds = (performance.now() - first) / 1000;
        void service.stop().then(() => resolve({ perSecond: expected / seconds, seconds }));
      }
    });
    service.subscribe(plugin, slot).catch((err) => (n < expected ? reject(err) : undefined));
  });
}

async function main(parts: BenchParts) {
  const { url: pgUrl, db } = await parts.postgres();
  await createOrders(db, ROWS);
  await db.query('VACUUM ANALYZE orders');
  log(`orders: ${ROWS.toLocaleString('en-US')} rows`);

  const platform = await parts.platform('bench-cdc');
  const created = await createPostgresSource(platform, pgUrl, 'bench', [{ name: 'orders', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] }]);
  const sourceId = created.id;
  const status = async () => (await platform.api('GET', `/api/sources/${sourceId}`)).body.cdc?.status;
  while ((await status()) !== 'Streaming') await new Promise((r) => setTimeout(r, 200));
  await waitForMaxId(platform, ROWS);
  log('snapshot done, streaming');

  // 1 + 2: a backlog written while paused, then drained; a second slot sees the same WAL for the raw decode.
  await db.query(`CREATE PUBLICATION bench_raw_pub FOR TABLE orders`);
  await db.query(`SELECT pg_create_logical_replication_slot('bench_raw', 'pgoutput')`);
  await platform.api('POST', `/api/sources/${sourceId}/cdc/pause`);
  while ((await status()) !== 'Paused') await new Promise((r) => setTimeout(r, 100));
  const work = new Workload(ROWS);
  const txns = Math.ceil(CHANGES / PER_TXN);
  let lastId = 0;
  const writeStart = performance.now();
  for (let i = 0; i < txns; i++) {
    const t = work.txn();
    await db.query(t.sql);
    lastId = t.maxId;
  }
  const changes = txns * PER_TXN;
  log(`backlog: ${changes.toLocaleString('en-US')} changes in ${txns} transactions, written in ${((performance.now() - writeStart) / 1000).toFixed(1)} s`);
  const resumeAt = performance.now();
  await platform.api('POST', `/api/sources/${sourceId}/cdc/resume`);
  await waitForMaxId(platform, lastId);
  const drainSeconds = (performance.now() - resumeAt) / 1000;
  const throughput = changes / drainSeconds;
  log(`drained in ${drainSeconds.toFixed(2)} s`);
  const raw = await rawDecode(pgUrl, 'bench_raw', 'bench_raw_pub', changes);
  await db.query(`SELECT pg_drop_replication_slot('bench_raw')`);
  log(`raw decode: ${Math.round(raw.perSecond)} changes/s`);

  // 3: a paced writer at LAG_RATE changes/s; a poller notes when each transaction's rows are visible.
  const perSecond = LAG_RATE / PER_TXN;
  const commits: { maxId: number; at: number }[] = [];
  const poller = pollVisible(platform, TABLE, 20);
  const start = performance.now();
  for (let i = 0; i < LAG_SECONDS * perSecond; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = work.txn();
    await db.query(t.sql);
    commits.push({ maxId: t.maxId, at: performance.now() });
  }
  const achieved = (commits.length * PER_TXN) / ((performance.now() - start) / 1000);
  await waitForMaxId(platform, commits[commits.length - 1].maxId);
  await new Promise((r) => setTimeout(r, 100));
  const lags = commitToVisible(commits, await poller.stop()).filter((l): l is number => l !== undefined);
  const check = (await platform.api('POST', '/api/query', { sql: 'SELECT count() AS n FROM bench_orders FINAL' })).body.rows[0];
  const source = (await db.query('SELECT count(*)::int AS n FROM orders')).rows[0];
  if (Number(check.n) !== source.n) throw new Error(`warehouse ${check.n} rows, source ${source.n}`);

  const result = {
    initial_rows: ROWS,
    backlog_changes: changes,
    throughput_changes_per_s: Math.round(throughput),
    raw_decode_changes_per_s: Math.round(raw.perSecond),
    ratio: Number((throughput / raw.perSecond).toFixed(2)),
    lag_rate_changes_per_s: Math.round(achieved),
    lag_p50_ms: Math.round(pct(lags, 50)),
    lag_p99_ms: Math.round(pct(lags, 99)),
    lag_samples: lags.length,
    settings: { batch_changes: process.env.TRIBUTARY_CDC_BATCH_CHANGES ?? 'default', flush_ms: process.env.TRIBUTARY_CDC_FLUSH_MS ?? 'default' },
    targets: { ratio_at_least_0_5: throughput / raw.perSecond >= 0.5, p99_at_most_2s: pct(lags, 99) <= 2000 },
  };
  process.stdout.write(
    [
      `CDC benchmark — orders: ${ROWS.toLocaleString('en-US')} initial rows; mixed workload 60% updates / 30% inserts / 10% deletes, ${PER_TXN} changes per transaction`,
      `  sustained throughput (backlog of ${changes.toLocaleString('en-US')} changes, resume → all visible): ${result.throughput_changes_per_s.toLocaleString('en-US')} changes/s`,
      `  raw decode (pg-logical-replication, pgoutput, no sink, same WAL):       ${result.raw_decode_changes_per_s.toLocaleString('en-US')} changes/s`,
      `  ratio: ${result.ratio}   (target ≥ 0.5)`,
      `  commit → visible at ${result.lag_rate_changes_per_s.toLocaleString('en-US')} changes/s for ${LAG_SECONDS} s: p50 ${result.lag_p50_ms} ms, p99 ${result.lag_p99_ms} ms   (target p99 ≤ 2 s; ${lags.length} transactions)`,
      JSON.stringify(result),
    ].join('\n') + '\n',
  );
}

BenchParts.run(log, main);
