/**
 * `npm run bench:lag` — CDC freshness while the warehouse is busy, through the real platform (embedded
 * Temporal, chDB, PGlite). One Postgres CDC source mirrors a `probe` table receiving BENCH_LAG_RATE changes/s
 * (transactions of 100 changes: 60 updates, 30 inserts, 10 deletes); a poller reads the probe's highest id
 * through `POST /api/query` every 50 ms, as a user would. Each transaction's commit-to-visible lag (COMMIT
 * returned → first poll that sees its rows) is counted in the phase it was committed in:
 *
 * 1. quiet: BENCH_QUIET_SECONDS (30) of nothing else;
 * 2. full refresh: a second source is created with a BENCH_FULL_ROWS-row (2,000,000) `orders` table as
 *    full_refresh; the phase lasts from the create to the job's end;
 * 3. heavy query: a user query through `/api/query` that runs until its time limit,
 *    `SELECT count() FROM numbers(1e12) WHERE sipHash64(number) = 0`, under the platform's limit
 *    (TRIBUTARY_QUERY_TIMEOUT_SECONDS = N: a query cannot set its own)
 *    (N = BENCH_QUERY_LIMIT_SECONDS, 30: the limit is in the query itself, so the bench does not depend on
 *    the platform's own default limit being there); the phase lasts until the API answers.
 *
 * Targets (issue 12): p99 ≤ 2 s quiet, ≤ 3 s during the full refresh, ≤ the query limit + 2 s during the heavy
 * query. A benchmark, not a test: it prints figures, then one JSON line.
 */
import fs from 'node:fs';
import type { RunningPlatform } from '../test/support/platform';
import { BenchParts } from './bench-setup';
import { sampleRss } from './bench-memory';
import { createOrders } from './bench-orders';
import { commitToVisible, PER_TXN, pct, pollVisible, waitForMaxId, Workload, type Seen } from './bench-visibility';

const RATE = Number(process.env.BENCH_LAG_RATE ?? 1_000);
const QUIET_SECONDS = Number(process.env.BENCH_QUIET_SECONDS ?? 30);
const FULL_ROWS = Number(process.env.BENCH_FULL_ROWS ?? 2_000_000);
const QUERY_LIMIT_SECONDS = Number(process.env.BENCH_QUERY_LIMIT_SECONDS ?? 30);
const PROBE_ROWS = 10_000;
const POLL_MS = 50;
const PROBE = 'lag_probe'; // the probe table in the warehouse (prefix lag)
const log = (m: string) => process.stderr.write(`[bench:lag ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

type Phase = 'quiet' | 'full refresh' | 'heavy query' | 'after';
const PHASES: Exclude<Phase, 'after'>[] = ['quiet', 'full refresh', 'heavy query'];
const TARGET_MS: Record<Exclude<Phase, 'after'>, number> = { quiet: 2_000, 'full refresh': 3_000, 'heavy query': QUERY_LIMIT_SECONDS * 1_000 + 2_000 };

/** A Postgres source syncing one of the two tables (a source lists every table it can see). */
async function createSource(platform: RunningPlatform, pgUrl: string, prefix: string, schema: Record<string, unknown>) {
  const url = new URL(pgUrl);
  const other = { name: schema.name === 'probe' ? 'orders' : 'probe', should_sync: false };
  const created = await platform.api('POST', '/api/sources', {
    source_type: 'Postgres',
    prefix,
    payload: { host: url.hostname, port: url.port, dbname: 'postgres', user: 'postgres', password: '', schema: 'public', schemas: [schema, other] },
  });
  if (created.status !== 201) throw new Error(`create source ${prefix}: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body as { id: string; schemas: { id: string; name: string }[] };
}

async function finishedJob(platform: RunningPlatform, schemaId: string, timeoutMs = 1_800_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await platform.api('GET', `/api/jobs?schema_id=${schemaId}`);
    const job = (res.body.results ?? []).find((j: any) => j.status !== 'Running');
    if (job) return job;
    if (Date.now() > deadline) throw new Error(`the full refresh did not finish: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(parts: BenchParts) {
  const { url: pgUrl, db } = await parts.postgres();
  await createOrders(db, PROBE_ROWS, 'probe');
  await createOrders(db, FULL_ROWS, 'orders');
  await db.query('VACUUM (FREEZE, ANALYZE)');
  log(`probe: ${PROBE_ROWS.toLocaleString('en-US')} rows; orders: ${FULL_ROWS.toLocaleString('en-US')} rows`);

  const platform = await parts.platform('bench-lag', { TRIBUTARY_QUERY_TIMEOUT_SECONDS: String(QUERY_LIMIT_SECONDS) });
  const cdc = await createSource(platform, pgUrl, 'lag', { name: 'probe', should_sync: true, sync_type: 'cdc', sync_frequency: '1min', primary_key_columns: ['id'] });
  const status = async () => (await platform.api('GET', `/api/sources/${cdc.id}`)).body.cdc?.status;
  while ((await status()) !== 'Streaming') await new Promise((r) => setTimeout(r, 200));
  await waitForMaxId(platform, PROBE, PROBE_ROWS);
  log('probe mirrored, streaming');

  // A paced writer for the whole run; each commit is counted in the phase it was made in.
  let phase = 'quiet' as Phase;
  const commits: (Seen & { phase: Phase })[] = [];
  const work = new Workload(PROBE_ROWS, 'probe');
  const perSecond = RATE / PER_TXN;
  const poller = pollVisible(platform, PROBE, POLL_MS);
  const phaseStart: Partial<Record<Phase, number>> = { quiet: performance.now() };
  const writer = (async () => {
    const start = performance.now();
    for (let i = 0; phase !== 'after'; i++) {
      const wait = start + (i * 1000) / perSecond - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = work.txn();
      const during = phase;
      await db.query(t.sql);
      commits.push({ maxId: t.maxId, at: performance.now(), phase: during });
    }
  })();
  const enter = (next: Phase) => {
    phase = next;
    phaseStart[next] = performance.now();
    log(`phase: ${next}`);
  };

  log('phase: quiet');
  await new Promise((r) => setTimeout(r, QUIET_SECONDS * 1000));

  enter('full refresh');
  const engineRss = sampleRss(platform.enginePid()!, 200);
  const big = await createSource(platform, pgUrl, 'big', { name: 'orders', should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' });
  const job = await finishedJob(platform, big.schemas.find((x) => x.name === 'orders')!.id);
  const engineDuringRefresh = engineRss.stop();
  if (job.status !== 'Completed' || Number(job.rows_synced) !== FULL_ROWS) throw new Error(`full refresh ${job.status}, ${job.rows_synced} rows: ${job.latest_error}`);
  const refreshSeconds = (performance.now() - phaseStart['full refresh']!) / 1000;

  enter('heavy query');
  const heavy = await platform.api('POST', '/api/query', {
    sql: 'SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 0',
  });
  const heavySeconds = (performance.now() - phaseStart['heavy query']!) / 1000;
  const heavyAnswer = heavy.status === 200 ? 'rows' : `${heavy.status} ${String(heavy.body?.message ?? JSON.stringify(heavy.body)).slice(0, 120)}`;

  enter('after');
  await writer;
  await waitForMaxId(platform, PROBE, commits[commits.length - 1].maxId);
  await new Promise((r) => setTimeout(r, 2 * POLL_MS));
  const lags = commitToVisible(commits, await poller.stop());

  const byPhase = Object.fromEntries(
    PHASES.map((p) => {
      const xs = lags.filter((l, i): l is number => l !== undefined && commits[i].phase === p);
      const seconds = ((phaseStart[PHASES[PHASES.indexOf(p) + 1] ?? 'after'] ?? 0) - phaseStart[p]!) / 1000;
      const p99 = Math.round(pct(xs, 99));
      return [p, { seconds: Number(seconds.toFixed(1)), transactions: xs.length, changes_per_s: Math.round((xs.length * PER_TXN) / seconds), p50_ms: Math.round(pct(xs, 50)), p99_ms: p99, max_ms: Math.round(Math.max(...xs)), target_p99_ms: TARGET_MS[p], met: p99 <= TARGET_MS[p] }];
    }),
  );
  const result = {
    rate_changes_per_s: RATE,
    full_refresh: { rows: FULL_ROWS, seconds: Number(refreshSeconds.toFixed(1)), job_seconds: job.duration_seconds, engine_peak_rss_mb: Math.round(engineDuringRefresh.peakKb / 1024) },
    heavy_query: { limit_seconds: QUERY_LIMIT_SECONDS, seconds: Number(heavySeconds.toFixed(1)), answer: heavyAnswer },
    phases: byPhase,
    load_average: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  const line = (p: Exclude<Phase, 'after'>) => {
    const r = byPhase[p] as { seconds: number; transactions: number; changes_per_s: number; p50_ms: number; p99_ms: number; max_ms: number; met: boolean };
    return `  ${p.padEnd(13)} ${String(r.seconds).padStart(6)} s  ${String(r.changes_per_s).padStart(5)} changes/s  p50 ${String(r.p50_ms).padStart(6)} ms  p99 ${String(r.p99_ms).padStart(6)} ms  max ${String(r.max_ms).padStart(6)} ms  (target p99 ≤ ${TARGET_MS[p] / 1000} s: ${r.met ? 'met' : 'MISSED'})`;
  };
  process.stdout.write(
    [
      `CDC commit → visible at ${RATE.toLocaleString('en-US')} changes/s (polled through /api/query every ${POLL_MS} ms)`,
      ...PHASES.map(line),
      `  full refresh: ${FULL_ROWS.toLocaleString('en-US')} rows, create → job done ${result.full_refresh.seconds} s (job ${job.duration_seconds} s), engine peak RSS ${result.full_refresh.engine_peak_rss_mb} MB`,
      `  heavy query: limit ${QUERY_LIMIT_SECONDS} s (TRIBUTARY_QUERY_TIMEOUT_SECONDS), answered after ${result.heavy_query.seconds} s: ${heavyAnswer}`,
      `  load average at the end: ${result.load_average}`,
      JSON.stringify(result),
    ].join('\n') + '\n',
  );
}

BenchParts.run(log, main);
