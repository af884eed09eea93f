/**
 * Full-refresh benchmark (a benchmark, not a test): `npm run bench`.
 *
 *   1. a throwaway Postgres (or BENCH_DATABASE_URL) gets a fresh database with the `orders` table of
 *      design.md, BENCH_ROWS rows (default 2,000,000) generated server-side, frozen and analysed;
 *   2. the real platform (`node --import tsx platform/main.ts all`, fresh data dir) gets a Postgres source through
 *      `POST /api/sources` with `orders` as full_refresh; the first sync starts on create; the job's
 *      own duration (to its changes recorded) gives Tributary's rows/s, job start → the table published (live,
 *      queryable: from the run's Temporal history) the published rate, and create → job completed the
 *      end-to-end time;
 *   3. the platform's node process (API + worker + catalog: "the worker") and the embedded warehouse engine's
 *      process (chDB, the platform's child: what a ClickHouse server is in the scaled deployment) are each
 *      sampled every 100 ms (/proc/<pid>/status VmRSS) during the sync;
 *   4. after the platform stops, chDB on a fresh directory pulls the same table itself:
 *      `INSERT INTO t SELECT * FROM postgresql(...)` into a table with the exact columns and engine
 *      Tributary created (read from the platform's system.columns / system.tables);
 *   5. a table of the figures, then one JSON line;
 *   6. everything is cleaned up, also on failure or Ctrl-C.
 *
 * Knobs (environment):
 *   BENCH_ROWS=2000000        rows in `orders`
 *   BENCH_DATABASE_URL=...     use this Postgres instead of a throwaway cluster (a scratch database
 *                              is created in it and dropped afterwards)
 *   BENCH_BATCH_BYTES=...      passed to the platform as TRIBUTARY_BATCH_BYTES (default: connector's)
 *   BENCH_REPEATS=1            runs of each path; >1 adds "sync now" runs and more postgresql() pulls
 *                              (the headline figures stay the first sync and the first pull; medians are printed too)
 *   BENCH_DIAGNOSE=1           0 skips the breakdown (COPY alone, chDB insert alone, hot path without Temporal,
 *                              and the same through a temp file + INSERT ... FROM INFILE, a candidate fix)
 *   BENCH_RESTART=0            1 starts the platform once to create its data dir, stops it and measures a second
 *                              start on that dir (steady state: no first-run catalog initdb left in memory)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Client as TemporalClient, Connection as TemporalConnection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { pipelined } from '../activities/pipeline';
import { postgresConnector } from '../connectors/postgres';
import { connect } from '../connectors/postgres/connection';
import { createTableSql } from '../warehouse/tables';
import { memoryKb, sampleRss } from './bench-memory';
import { makeDataDir, readProc, startPlatform, type RunningPlatform } from '../test/support/platform';
import { startTestPostgres, type TestPostgres } from '../test/support/postgres';

const ROWS = positiveInt('BENCH_ROWS', 2_000_000);
const REPEATS = positiveInt('BENCH_REPEATS', 1);
const BATCH_BYTES = process.env.BENCH_BATCH_BYTES ? positiveInt('BENCH_BATCH_BYTES', 0) : undefined;
const DIAGNOSE = process.env.BENCH_DIAGNOSE !== '0';
const RESTART = process.env.BENCH_RESTART === '1';
const RSS_SAMPLE_MS = 100;
const JOB_TIMEOUT_MS = 60 * 60_000;
const TARGET_RATIO = 0.8;
const TARGET_RSS_MB = 512;
const SOURCE_TABLE = 'orders';
const PREFIX = 'bench';
const WAREHOUSE_TABLE = `${PREFIX}_${SOURCE_TABLE}`;

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const seconds = (ms: number) => ms / 1000;
const rate = (rows: number, s: number) => (s > 0 ? rows / s : 0);
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtS = (s: number) => s.toFixed(2);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sqlString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const chIdent = (s: string) => '`' + s.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

// ---------------------------------------------------------------------------------------------
// Cleanup: every resource registers its own undo; they run in reverse, on success, failure or signal.

const cleanups: { name: string; fn: () => Promise<unknown> | unknown }[] = [];
let cleaning: Promise<void> | undefined;
/** Runs once; every caller (normal end, failure, signal) waits for the same run to finish. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const { name, fn } of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`cleanup "${name}" failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// 1. Source Postgres and the orders table

interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  dbname: string;
}

const ORDERS_DDL = `CREATE TABLE orders (id bigserial primary key, customer_id bigint not null,
  created_at timestamptz not null, updated_at timestamptz not null, email text,
  amount numeric(12,2), status text, metadata jsonb, is_paid boolean)`;

/**
 * Varied, reproducible rows (fixed seed): creation times spread over three years with microseconds,
 * updates up to 30 days later, ~8% NULL emails, skewed amounts (1% NULL), five statuses, jsonb objects
 * of 3–5 keys (some with a nested array), ~2% NULL is_paid.
 */
const ORDERS_FILL = (rows: number) => `
INSERT INTO orders (customer_id, created_at, updated_at, email, amount, status, metadata, is_paid)
SELECT s.customer_id,
       s.created_at,
       s.created_at + random() * interval '30 days',
       CASE WHEN random() < 0.08 THEN NULL
            ELSE 'customer' || s.customer_id || '@' || (ARRAY['example.com','mail.test','acme.io','shop.dev','post.example.org'])[1 + floor(random() * 5)::int] END,
       CASE WHEN random() < 0.01 THEN NULL ELSE round((power(random(), 3) * 25000)::numeric, 2) END,
       (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + floor(random() * 6)::int],
       jsonb_strip_nulls(jsonb_build_object(
         'channel', (ARRAY['web','ios','android','api','pos'])[1 + floor(random() * 5)::int],
         'items', 1 + floor(random() * 9)::int,
         'coupon', CASE WHEN random() < 0.2 THEN 'SAVE' || (5 * (1 + floor(random() * 10)::int)) END,
         'gift', random() < 0.05,
         'tags', CASE WHEN random() < 0.3 THEN jsonb_build_array('priority', 'n' || floor(random() * 100)::int) END)),
       CASE WHEN random() < 0.02 THEN NULL ELSE random() < 0.7 END
  FROM (SELECT g,
               1 + floor(random() * 250000)::bigint AS customer_id,
               timestamptz '2022-01-01 00:00:00+00' + (g::double precision / ${rows}) * interval '3 years' + random() * interval '1 hour' AS created_at
          FROM generate_series(1, ${rows}) AS g) AS s
 ORDER BY s.g`;

async function prepareSource(): Promise<PgTarget> {
  let baseUrl = process.env.BENCH_DATABASE_URL;
  if (!baseUrl) {
    log('starting a throwaway Postgres cluster');
    const cluster: TestPostgres = await startTestPostgres();
    cleanups.push({ name: 'stop Postgres', fn: () => cluster.stop() });
    baseUrl = cluster.url;
  }
  const base = new URL(baseUrl);
  const dbname = `tributary_bench_${Math.random().toString(36).slice(2, 8)}`;
  const root = new pg.Client({ connectionString: base.toString() });
  await root.connect();
  try {
    await root.query(`CREATE DATABASE ${dbname}`);
  } finally {
    await root.end();
  }
  cleanups.push({
    name: `drop database ${dbname}`,
    fn: async () => {
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  });
  const target: PgTarget = {
    host: base.hostname,
    port: Number(base.port || 5432),
    user: decodeURIComponent(base.username || 'postgres'),
    password: decodeURIComponent(base.password),
    dbname,
  };
  const url = new URL(base.toString());
  url.pathname = `/${dbname}`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    const t0 = performance.now();
    await c.query(ORDERS_DDL);
    await c.query('SELECT setseed(0.42)');
    await c.query(ORDERS_FILL(ROWS));
    log(`generated ${fmtInt(ROWS)} rows in ${fmtS(seconds(performance.now() - t0))} s`);
    // FREEZE sets every hint bit now, so whichever reader comes first pays no extra page writes.
    await c.query(`VACUUM (FREEZE, ANALYZE) ${SOURCE_TABLE}`);
    const size = await c.query<{ size: string; n: string }>(
      `SELECT pg_size_pretty(pg_total_relation_size('${SOURCE_TABLE}')) AS size, (SELECT count(*) FROM ${SOURCE_TABLE}) AS n`,
    );
    log(`orders: ${fmtInt(Number(size.rows[0].n))} rows, ${size.rows[0].size} on disk (analysed)`);
  } finally {
    await c.end();
  }
  return target;
}

// ---------------------------------------------------------------------------------------------
// 3. The platform's node process and its memory

/** SIGTERM, then SIGKILL after 15 s, to every process whose environment holds this data dir (ours alone). */
async function endProcessesOf(dataDir: string) {
  const needle = `TRIBUTARY_DATA_DIR=${dataDir}`;
  const ours = () =>
    fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid).map(Number)
      .filter((pid) => readProc(pid, 'environ')?.split('\0').includes(needle));
  const signal = (sig: NodeJS.Signals) => ours().forEach((pid) => { try { process.kill(pid, sig); } catch { /* gone */ } });
  if (!ours().length) return;
  signal('SIGTERM');
  for (let i = 0; i < 150 && ours().length; i++) await new Promise((r) => setTimeout(r, 100));
  signal('SIGKILL');
}

// ---------------------------------------------------------------------------------------------
// 2. Tributary's full refresh through the API

interface SyncRun {
  jobId: string;
  rows: number;
  jobSeconds: number;
  /**
   * Job start → the new table is live (queryable). With the change log the swap comes before the recording, so
   * this is the job's start to recordRefreshChanges being scheduled (its history); without that activity, the job.
   */
  publishedSeconds: number;
  wallSeconds: number;
  peakRssMb: number;
  /** The warehouse engine's process (chDB) over the same run. */
  enginePeakRssMb: number;
  /** Peak anonymous memory (heaps) and file-backed pages (mapped code) at the RSS peak. */
  peakAnonMb: number;
  fileMbAtPeak: number;
  rssSamples: number;
  startedAt: string;
  finishedAt: string;
  workflowId: string;
  runId: string;
}

async function waitForJob(p: RunningPlatform, schemaId: string, known: Set<string>): Promise<any> {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const res = await p.api('GET', `/api/jobs?schema_id=${schemaId}`);
    if (res.status !== 200) throw new Error(`GET /api/jobs: ${res.status} ${JSON.stringify(res.body)}`);
    const job = (res.body.results ?? []).find((j: any) => !known.has(j.id) && j.status !== 'Running');
    if (job) return job;
    if (Date.now() > deadline) throw new Error(`no job finished in ${JOB_TIMEOUT_MS / 60_000} min: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function checkJob(job: any): void {
  if (job.status !== 'Completed') throw new Error(`sync job ${job.id} ended ${job.status}: ${job.latest_error}`);
  if (Number(job.rows_synced) !== ROWS) throw new Error(`sync job ${job.id} synced ${job.rows_synced} rows, expected ${ROWS}`);
}

async function timedSync(p: RunningPlatform, pid: number, enginePid: number, start: () => Promise<string>, known: Set<string>): Promise<SyncRun> {
  const sampler = sampleRss(pid, RSS_SAMPLE_MS);
  const engineSampler = sampleRss(enginePid, RSS_SAMPLE_MS);
  const t0 = performance.now();
  let job: any;
  let memory: ReturnType<ReturnType<typeof sampleRss>['stop']>;
  let engineMemory: ReturnType<ReturnType<typeof sampleRss>['stop']>;
  try {
    const schemaId = await start();
    job = await waitForJob(p, schemaId, known);
  } finally {
    memory = sampler.stop();
    engineMemory = engineSampler.stop();
  }
  const wall = seconds(performance.now() - t0);
  const { peakKb, peakAnonKb, fileKbAtPeak, samples } = memory;
  checkJob(job);
  known.add(job.id);
  const jobSeconds = job.duration_seconds ?? (Date.parse(job.finished_at) - Date.parse(job.started_at)) / 1000;
  const recordingAt = await recordingScheduledAt(p.temporalAddress, job.workflow_id, job.workflow_run_id).catch((err) => {
    log(`(no history for the published time: ${(err as Error).message})`);
    return undefined;
  });
  const publishedSeconds = recordingAt === undefined ? jobSeconds : (recordingAt - Date.parse(job.started_at)) / 1000;
  return {
    jobId: job.id,
    rows: Number(job.rows_synced),
    jobSeconds,
    publishedSeconds,
    wallSeconds: wall,
    peakRssMb: peakKb / 1024,
    enginePeakRssMb: engineMemory.peakKb / 1024,
    peakAnonMb: peakAnonKb / 1024,
    fileMbAtPeak: fileKbAtPeak / 1024,
    rssSamples: samples,
    startedAt: job.started_at,
    finishedAt: job.finished_at,
    workflowId: job.workflow_id,
    runId: job.workflow_run_id,
  };
}

/** When the run scheduled recordRefreshChanges (epoch ms): its table was published just before. */
async function recordingScheduledAt(temporalAddress: string, workflowId: string, runId: string): Promise<number | undefined> {
  const E = temporal.api.enums.v1.EventType;
  const connection = await TemporalConnection.connect({ address: temporalAddress });
  try {
    const history = await new TemporalClient({ connection }).workflow.getHandle(workflowId, runId).fetchHistory();
    const e = (history.events ?? []).find(
      (x) => x.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && x.activityTaskScheduledEventAttributes?.activityType?.name === 'recordRefreshChanges',
    );
    return e ? Number(e.eventTime?.seconds ?? 0) * 1000 + Number(e.eventTime?.nanos ?? 0) / 1e6 : undefined;
  } finally {
    await connection.close();
  }
}

/** Where a run's time went, from its Temporal history: each activity from scheduled to completed. */
async function activityTimeline(temporalAddress: string, workflowId: string, runId: string) {
  const E = temporal.api.enums.v1.EventType;
  const connection = await TemporalConnection.connect({ address: temporalAddress });
  try {
    const history = await new TemporalClient({ connection }).workflow.getHandle(workflowId, runId).fetchHistory();
    const ms = (t: any) => Number(t?.seconds ?? 0) * 1000 + Number(t?.nanos ?? 0) / 1e6;
    const events = history.events ?? [];
    const scheduled = new Map<string, { name: string; at: number }>();
    const started = new Map<string, number>();
    const out: { activity: string; queuedSeconds: number; runSeconds: number }[] = [];
    const first = ms(events[0]?.eventTime);
    let last = first;
    for (const e of events) {
      last = ms(e.eventTime);
      const id = String(e.eventId);
      if (e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
        scheduled.set(id, { name: e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?', at: ms(e.eventTime) });
      } else if (e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        started.set(String(e.activityTaskStartedEventAttributes?.scheduledEventId), ms(e.eventTime));
      } else if (e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const sid = String(e.activityTaskCompletedEventAttributes?.scheduledEventId);
        const s = scheduled.get(sid);
        // An activity's started event is written when it completes, stamped with its start time.
        const st = started.get(sid) ?? s?.at ?? 0;
        if (s) out.push({ activity: s.name, queuedSeconds: (st - s.at) / 1000, runSeconds: (ms(e.eventTime) - st) / 1000 });
      }
    }
    return { workflowSeconds: (last - first) / 1000, activities: out };
  } finally {
    await connection.close();
  }
}

interface PlatformResult {
  runs: SyncRun[];
  columns: { name: string; type: string; default_kind: string; default_expression: string }[];
  engineFull: string;
  baselineRssMb: number;
  baselineAnonMb: number;
  engineBaselineRssMb: number;
  hwmMb: number;
  /** 1-minute load average before the first sync and after the last: other work on the machine shows here. */
  load: [number, number];
  timeline?: Awaited<ReturnType<typeof activityTimeline>>;
}

async function benchPlatform(source: PgTarget): Promise<PlatformResult> {
  const dataDir = makeDataDir('bench');
  cleanups.push({ name: 'remove platform data dir', fn: () => fs.rmSync(dataDir, { recursive: true, force: true }) });
  const env: Record<string, string> = BATCH_BYTES ? { TRIBUTARY_BATCH_BYTES: String(BATCH_BYTES) } : {};
  // Interrupted while startPlatform is still waiting for health, there is no handle to stop: end the
  // processes this run started, known by the data dir in their environment.
  cleanups.push({ name: 'end platform processes still running', fn: () => endProcessesOf(dataDir) });
  if (RESTART) {
    log(`BENCH_RESTART=1: a first start creates the data dir ${dataDir}, then a second start is measured`);
    const first = await startPlatform({ dataDir, env });
    await first.stop();
  }
  log(`starting the platform (data dir ${dataDir}${BATCH_BYTES ? `, TRIBUTARY_BATCH_BYTES=${BATCH_BYTES}` : ''})`);
  const platform = await startPlatform({ dataDir, env });
  let stopped = false;
  cleanups.push({ name: 'stop platform', fn: () => (stopped ? undefined : platform.stop()) });
  try {
    const pid = platform.pid;
    await new Promise((r) => setTimeout(r, 3000)); // let start-up settle (workflow bundling, catalog init) before the baseline
    const baseline = memoryKb(pid);
    const baselineRssMb = (baseline?.rss ?? NaN) / 1024;
    const baselineAnonMb = (baseline?.anon ?? NaN) / 1024;
    log(`platform node process: pid ${pid}, RSS ${baselineRssMb.toFixed(0)} MB before the sync (anon ${baselineAnonMb.toFixed(0)} MB, file ${((baseline?.file ?? NaN) / 1024).toFixed(0)} MB)`);
    const enginePid = platform.enginePid();
    if (!enginePid) throw new Error(`no warehouse engine process under the platform (pid ${pid})`);
    const engineBaselineRssMb = (memoryKb(enginePid)?.rss ?? NaN) / 1024;
    log(`warehouse engine process: pid ${enginePid}, RSS ${engineBaselineRssMb.toFixed(0)} MB before the sync`);

    const loadBefore = os.loadavg()[0];
    const known = new Set<string>();
    let schemaId = '';
    const runs: SyncRun[] = [];
    log(`POST /api/sources: ${SOURCE_TABLE} as full_refresh (its first sync starts on create)`);
    runs.push(
      await timedSync(platform, pid, enginePid, async () => {
        const res = await platform.api('POST', '/api/sources', {
          source_type: 'Postgres',
          prefix: PREFIX,
          payload: {
            host: source.host,
            port: String(source.port),
            dbname: source.dbname,
            user: source.user,
            password: source.password,
            schema: 'public',
            schemas: [{ name: SOURCE_TABLE, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }],
          },
        });
        if (res.status !== 201) throw new Error(`POST /api/sources: ${res.status} ${JSON.stringify(res.body)}`);
        const schema = res.body.schemas.find((s: any) => s.name === SOURCE_TABLE);
        if (!schema) throw new Error(`no ${SOURCE_TABLE} schema in ${JSON.stringify(res.body)}`);
        schemaId = schema.id;
        return schemaId;
      }, known),
    );
    log(`first sync: published ${fmtS(runs[0].publishedSeconds)} s, ${fmtS(runs[0].jobSeconds)} s (job completed), ${fmtS(runs[0].wallSeconds)} s (create → completed), peak RSS ${runs[0].peakRssMb.toFixed(0)} MB (engine ${runs[0].enginePeakRssMb.toFixed(0)} MB)`);
    for (let i = 1; i < REPEATS; i++) {
      runs.push(
        await timedSync(platform, pid, enginePid, async () => {
          const res = await platform.api('POST', `/api/schemas/${schemaId}/sync`);
          if (res.status !== 202) throw new Error(`POST /api/schemas/${schemaId}/sync: ${res.status} ${JSON.stringify(res.body)}`);
          return schemaId;
        }, known),
      );
      log(`sync ${i + 1}: published ${fmtS(runs[i].publishedSeconds)} s, ${fmtS(runs[i].jobSeconds)} s (job completed), peak RSS ${runs[i].peakRssMb.toFixed(0)} MB (engine ${runs[i].enginePeakRssMb.toFixed(0)} MB)`);
    }

    const count = await queryRows(platform, `SELECT count() AS n FROM ${WAREHOUSE_TABLE}`);
    if (Number(count[0].n) !== ROWS) throw new Error(`${WAREHOUSE_TABLE} has ${count[0].n} rows, expected ${ROWS}`);
    const columns = (await queryRows(
      platform,
      `SELECT name, type, default_kind, default_expression FROM system.columns
        WHERE database = currentDatabase() AND table = '${WAREHOUSE_TABLE}' ORDER BY position`,
    )) as PlatformResult['columns'];
    const engine = await queryRows(platform, `SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '${WAREHOUSE_TABLE}'`);
    const engineFull = String(engine[0]?.engine_full ?? '');
    if (!columns.length || !engineFull) throw new Error(`could not read the definition of ${WAREHOUSE_TABLE}`);

    let timeline: PlatformResult['timeline'];
    try {
      timeline = await activityTimeline(platform.temporalAddress, runs[0].workflowId, runs[0].runId);
    } catch (err) {
      log(`(no activity timeline: ${(err as Error).message})`);
    }
    const hwmMb = (memoryKb(pid)?.hwm ?? NaN) / 1024;
    const loadAfter = os.loadavg()[0];
    log('stopping the platform');
    stopped = true;
    const code = await platform.stop();
    if (code !== 0) log(`platform exited with ${code}; its output:\n${platform.output().slice(-4000)}`);
    return { runs, columns, engineFull, baselineRssMb, baselineAnonMb, engineBaselineRssMb, hwmMb, timeline, load: [loadBefore, loadAfter] };
  } catch (err) {
    log(`platform output (tail):\n${platform.output().slice(-4000)}`);
    throw err;
  }
}

async function queryRows(p: RunningPlatform, sql: string): Promise<Record<string, any>[]> {
  const res = await p.api('POST', '/api/query', { sql });
  if (res.status !== 200) throw new Error(`POST /api/query (${sql}): ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.rows;
}

// ---------------------------------------------------------------------------------------------
// 4. ClickHouse pulling the table itself, in chDB, plus the breakdown

interface EngineResult {
  chdbVersion: string;
  pullSeconds: number[];
  diagnostics?: Diagnostics;
}

interface Diagnostics {
  batchBytes: number;
  tsvBytes: number;
  batches: number;
  /** Postgres COPY of Tributary's query, drained by pg-copy-streams, bytes dropped. */
  copyDrainSeconds: number;
  /** connector read (COPY + cutting into batches) with no insert. */
  readOnlySeconds: number;
  /** chDB parsing and writing the batches already in memory, one insert after another. */
  insertOnlySeconds: number;
  /** connector read → pipelined → rawInsert into a table from createTableSql: Tributary's hot path without Temporal. */
  hotPathSeconds: number;
  /** Candidate fix: each batch written to a temp file, loaded by `INSERT ... FROM INFILE` (insert alone / hot path). */
  infileInsertOnlySeconds: number;
  infileHotPathSeconds: number;
}

async function benchEngine(source: PgTarget, platformResult: PlatformResult): Promise<EngineResult> {
  const chDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-chdb-'));
  cleanups.push({ name: 'remove chDB dir', fn: () => fs.rmSync(chDir, { recursive: true, force: true }) });
  const { createChdbConnection } = await import('chdb/connection');
  const { createClient } = await import('@clickhouse/client');
  const conn = createChdbConnection({ path: chDir });
  const client = createClient({ connection: conn } as Parameters<typeof createClient>[0]);
  cleanups.push({ name: 'close chDB', fn: () => client.close() });
  const command = (query: string) => client.command({ query });
  const single = async (query: string) => {
    const rs = await client.query({ query, format: 'JSONEachRow' });
    return (await rs.json<Record<string, unknown>>())[0];
  };

  const chdbVersion = String((await single('SELECT version() AS v')).v);
  await command('CREATE DATABASE IF NOT EXISTS bench');

  // The exact columns Tributary made (ALIAS/EPHEMERAL kept as such) and its engine clause.
  const defs = platformResult.columns.map((c) => {
    const kind = c.default_kind ? ` ${c.default_kind}${c.default_expression ? ` ${c.default_expression}` : ''}` : '';
    return `${chIdent(c.name)} ${c.type}${kind}`;
  });
  const createSql = (table: string) => `CREATE TABLE bench.${table} (${defs.join(', ')}) ENGINE = ${platformResult.engineFull}`;
  const sourceColumns = platformResult.columns.filter((c) => !c.name.startsWith('_tributary_')).map((c) => c.name);
  const pg = `postgresql(${sqlString(`${source.host}:${source.port}`)}, ${sqlString(source.dbname)}, ${sqlString(SOURCE_TABLE)}, ${sqlString(source.user)}, ${sqlString(source.password)})`;
  const countOf = async (table: string) => Number((await single(`SELECT count() AS n FROM bench.${table}`)).n);

  const pullSeconds: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    await command(createSql('orders_pull'));
    const t0 = performance.now();
    await command(`INSERT INTO bench.orders_pull (${sourceColumns.map(chIdent).join(', ')}) SELECT * FROM ${pg}`);
    const s = seconds(performance.now() - t0);
    const n = await countOf('orders_pull');
    if (n !== ROWS) throw new Error(`postgresql() pull loaded ${n} rows, expected ${ROWS}`);
    pullSeconds.push(s);
    log(`ClickHouse postgresql() pull ${i + 1}: ${fmtS(s)} s (${fmtInt(rate(ROWS, s))} rows/s)`);
    await command('DROP TABLE bench.orders_pull SYNC');
  }

  let diagnostics: Diagnostics | undefined;
  if (DIAGNOSE) diagnostics = await diagnose(source, conn, command, countOf);
  return { chdbVersion, pullSeconds, diagnostics };
}

/** Where the time of Tributary's path goes, each stage alone, in this process (no Temporal, no API). */
async function diagnose(
  source: PgTarget,
  conn: ReturnType<typeof import('chdb/connection').createChdbConnection>,
  command: (sql: string) => Promise<unknown>,
  countOf: (table: string) => Promise<number>,
): Promise<Diagnostics> {
  const config = { ...source, schema: 'public', sslmode: 'disable' as const };
  const columns = (await postgresConnector.describe(config, SOURCE_TABLE)) as (Awaited<ReturnType<typeof postgresConnector.describe>>[number] & { selectExpr: string })[];
  const batchBytes = BATCH_BYTES ?? 16 * 1024 * 1024; // read.ts's DEFAULT_BATCH_BYTES unless overridden
  const read = () => postgresConnector.read(config, { table: SOURCE_TABLE, mode: 'full_refresh', columns, version: 1n, batchBytes: BATCH_BYTES });

  // COPY alone: the same SELECT list the connector sends (server-side casts), bytes dropped.
  const selectList = [...columns.map((c) => c.selectExpr), '1::bigint'].join(', ');
  const client = await connect(config);
  let t0 = performance.now();
  let tsvBytes = 0;
  try {
    for await (const chunk of client.query(copyTo(`COPY (SELECT ${selectList} FROM public.${SOURCE_TABLE}) TO STDOUT`)) as AsyncIterable<Buffer>) tsvBytes += chunk.length;
  } finally {
    await client.end();
  }
  const copyDrainSeconds = seconds(performance.now() - t0);
  log(`diagnose: COPY drain ${fmtS(copyDrainSeconds)} s, ${(tsvBytes / 1048576).toFixed(0)} MB of TSV`);

  // The connector's read alone, keeping the batches for the insert-only stage.
  const kept: { columns: string[]; data: Buffer; format: string }[] = [];
  t0 = performance.now();
  for await (const b of read()) kept.push({ columns: b.columns, data: b.data, format: b.format });
  const readOnlySeconds = seconds(performance.now() - t0);
  log(`diagnose: connector read alone ${fmtS(readOnlySeconds)} s, ${kept.length} batches`);

  const insert = (table: string, b: { columns: string[]; data: Buffer; format: string }) =>
    conn.chdb.rawInsert({ table: `bench.${table}`, columns: b.columns, values: b.data, format: b.format as 'TabSeparated' });
  const engine = { kind: 'ReplacingMergeTree' as const, orderBy: ['id'] };

  // chDB alone: parse and write the batches already in memory.
  await command(createTableSql('bench', 'orders_insert', columns, engine, { cluster: undefined }));
  t0 = performance.now();
  for (const b of kept) await insert('orders_insert', b);
  const insertOnlySeconds = seconds(performance.now() - t0);
  if ((await countOf('orders_insert')) !== ROWS) throw new Error('insert-only stage lost rows');
  kept.length = 0;
  await command('DROP TABLE bench.orders_insert SYNC');
  log(`diagnose: chDB insert alone ${fmtS(insertOnlySeconds)} s`);

  // Both, pipelined as loadFullRefresh does, without Temporal, the catalog or the API.
  await command(createTableSql('bench', 'orders_hot', columns, engine, { cluster: undefined }));
  t0 = performance.now();
  await pipelined(read(), (b) => insert('orders_hot', b).then(() => undefined));
  const hotPathSeconds = seconds(performance.now() - t0);
  if ((await countOf('orders_hot')) !== ROWS) throw new Error('hot-path stage lost rows');
  await command('DROP TABLE bench.orders_hot SYNC');
  log(`diagnose: hot path (read → rawInsert, pipelined) ${fmtS(hotPathSeconds)} s`);

  // Candidate: the same bytes through a file. chDB parses data inlined in an INSERT statement (rawInsert)
  // several times slower than the same bytes read from a file by INSERT ... FROM INFILE.
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-batches-'));
  cleanups.push({ name: 'remove batch files', fn: () => fs.rmSync(tmpDir, { recursive: true, force: true }) });
  let fileNo = 0;
  const insertViaFile = async (table: string, b: { columns: string[]; data: Buffer; format: string }) => {
    const file = path.join(tmpDir, `batch-${fileNo++}.tsv`);
    await fs.promises.writeFile(file, b.data);
    try {
      await command(`INSERT INTO bench.${table} (${b.columns.map(chIdent).join(', ')}) FROM INFILE ${sqlString(file)} FORMAT ${b.format}`);
    } finally {
      await fs.promises.rm(file, { force: true });
    }
  };
  for await (const b of read()) kept.push({ columns: b.columns, data: b.data, format: b.format });
  await command(createTableSql('bench', 'orders_infile', columns, engine, { cluster: undefined }));
  t0 = performance.now();
  for (const b of kept) await insertViaFile('orders_infile', b);
  const infileInsertOnlySeconds = seconds(performance.now() - t0);
  if ((await countOf('orders_infile')) !== ROWS) throw new Error('INFILE insert-only stage lost rows');
  kept.length = 0;
  await command('DROP TABLE bench.orders_infile SYNC');
  log(`diagnose: chDB INSERT FROM INFILE alone ${fmtS(infileInsertOnlySeconds)} s`);

  await command(createTableSql('bench', 'orders_infile_hot', columns, engine, { cluster: undefined }));
  t0 = performance.now();
  await pipelined(read(), (b) => insertViaFile('orders_infile_hot', b));
  const infileHotPathSeconds = seconds(performance.now() - t0);
  if ((await countOf('orders_infile_hot')) !== ROWS) throw new Error('INFILE hot-path stage lost rows');
  await command('DROP TABLE bench.orders_infile_hot SYNC');
  log(`diagnose: hot path via INFILE ${fmtS(infileHotPathSeconds)} s`);

  return {
    batchBytes, tsvBytes, batches: Math.ceil(tsvBytes / batchBytes), copyDrainSeconds, readOnlySeconds, insertOnlySeconds,
    hotPathSeconds, infileInsertOnlySeconds, infileHotPathSeconds,
  };
}

// ---------------------------------------------------------------------------------------------
// 5. Report

function report(p: PlatformResult, e: EngineResult) {
  const first = p.runs[0];
  const tribRate = rate(ROWS, first.jobSeconds);
  const chSeconds = e.pullSeconds[0];
  const chRate = rate(ROWS, chSeconds);
  const ratio = chRate > 0 ? tribRate / chRate : 0;
  const publishedRate = rate(ROWS, first.publishedSeconds);
  const ratioPublished = chRate > 0 ? publishedRate / chRate : 0;
  const peakRss = Math.max(...p.runs.map((r) => r.peakRssMb));
  const enginePeakRss = Math.max(...p.runs.map((r) => r.enginePeakRssMb));
  const ok = (pass: boolean) => (pass ? 'meets target' : 'MISSES target');

  const rowsTable: [string, string, string][] = [
    ['rows', fmtInt(ROWS), ''],
    ['Tributary full refresh, published (job start → table live)', `${fmtS(first.publishedSeconds)} s`, `${fmtInt(publishedRate)} rows/s`],
    ['Tributary full refresh, job completed (job duration: changes recorded)', `${fmtS(first.jobSeconds)} s`, `${fmtInt(tribRate)} rows/s`],
    ['Tributary end to end (create → completed)', `${fmtS(first.wallSeconds)} s`, `${fmtInt(rate(ROWS, first.wallSeconds))} rows/s`],
    ['ClickHouse postgresql() pull (chDB)', `${fmtS(chSeconds)} s`, `${fmtInt(chRate)} rows/s`],
    ['ratio Tributary / ClickHouse, published', ratioPublished.toFixed(2), `target ≥ ${TARGET_RATIO}: ${ok(ratioPublished >= TARGET_RATIO)}`],
    ['ratio Tributary / ClickHouse, job completed (the figure before issue 13)', ratio.toFixed(2), `target ≥ ${TARGET_RATIO}: ${ok(ratio >= TARGET_RATIO)}`],
    ['peak worker RSS during the sync', `${peakRss.toFixed(0)} MB`, `target < ${TARGET_RSS_MB} MB: ${ok(peakRss < TARGET_RSS_MB)}`],
    ['  of which anonymous (heaps) / file-backed (code)', `${first.peakAnonMb.toFixed(0)} MB`, `${first.fileMbAtPeak.toFixed(0)} MB`],
    ['  worker RSS idle before the sync (anonymous)', `${p.baselineRssMb.toFixed(0)} MB`, `${p.baselineAnonMb.toFixed(0)} MB anonymous`],
    ['  worker RSS growth during the sync', `${(peakRss - p.baselineRssMb).toFixed(0)} MB`, `lifetime VmHWM ${p.hwmMb.toFixed(0)} MB`],
    ['peak warehouse engine RSS (chDB process)', `${enginePeakRss.toFixed(0)} MB`, `${p.engineBaselineRssMb.toFixed(0)} MB idle before the sync`],
    ['1-min load average before / after the syncs', `${p.load[0].toFixed(2)}`, `${p.load[1].toFixed(2)} (${os.cpus().length} cores)`],
  ];
  if (REPEATS > 1) {
    const tribMedian = median(p.runs.map((r) => r.jobSeconds));
    const chMedian = median(e.pullSeconds);
    rowsTable.push(
      [`Tributary median of ${REPEATS} syncs`, `${fmtS(tribMedian)} s`, `${fmtInt(rate(ROWS, tribMedian))} rows/s`],
      [`ClickHouse median of ${REPEATS} pulls`, `${fmtS(chMedian)} s`, `${fmtInt(rate(ROWS, chMedian))} rows/s`],
      ['ratio of medians, job completed', (chMedian / tribMedian).toFixed(2), ''],
      ['ratio of medians, published', (chMedian / median(p.runs.map((r) => r.publishedSeconds))).toFixed(2), ''],
    );
  }
  if (p.timeline) {
    for (const a of p.timeline.activities) {
      rowsTable.push([`  activity ${a.activity}`, `${fmtS(a.runSeconds)} s`, `queued ${fmtS(a.queuedSeconds)} s`]);
    }
  }
  const d = e.diagnostics;
  if (d) {
    rowsTable.push(
      [`breakdown (in this process, batches of ${(d.batchBytes / 1048576).toFixed(0)} MB)`, '', ''],
      ['  Postgres COPY of the connector query, drained', `${fmtS(d.copyDrainSeconds)} s`, `${fmtInt(rate(ROWS, d.copyDrainSeconds))} rows/s, ${(d.tsvBytes / 1048576).toFixed(0)} MB`],
      ['  connector read alone (COPY + batching)', `${fmtS(d.readOnlySeconds)} s`, `${fmtInt(rate(ROWS, d.readOnlySeconds))} rows/s`],
      ['  chDB rawInsert alone (batches in memory)', `${fmtS(d.insertOnlySeconds)} s`, `${fmtInt(rate(ROWS, d.insertOnlySeconds))} rows/s`],
      ['  hot path read → insert, pipelined, no Temporal', `${fmtS(d.hotPathSeconds)} s`, `${fmtInt(rate(ROWS, d.hotPathSeconds))} rows/s`],
      ['  candidate: chDB INSERT FROM INFILE alone', `${fmtS(d.infileInsertOnlySeconds)} s`, `${fmtInt(rate(ROWS, d.infileInsertOnlySeconds))} rows/s`],
      ['  candidate: hot path via temp file + INFILE', `${fmtS(d.infileHotPathSeconds)} s`, `${fmtInt(rate(ROWS, d.infileHotPathSeconds))} rows/s`],
    );
  }
  const header: [string, string, string] = ['measure', 'time / size', 'rate / note'];
  const w = [0, 1, 2].map((i) => Math.max(...[header, ...rowsTable].map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  const out = [
    '',
    `Full refresh benchmark — ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, chDB ${e.chdbVersion}`,
    line(header),
    `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`,
    ...rowsTable.map(line),
    '',
  ];
  process.stdout.write(out.join('\n') + '\n');
  const json = {
    rows: ROWS,
    tributary_seconds: round(first.jobSeconds),
    tributary_rows_per_s: Math.round(tribRate),
    tributary_e2e_seconds: round(first.wallSeconds),
    clickhouse_seconds: round(chSeconds),
    clickhouse_rows_per_s: Math.round(chRate),
    ratio: round(ratio),
    tributary_published_seconds: round(first.publishedSeconds),
    ratio_published: round(ratioPublished),
    tributary_runs_published_seconds: p.runs.map((r) => round(r.publishedSeconds)),
    peak_worker_rss_mb: Math.round(peakRss),
    peak_worker_anon_mb: Math.round(Math.max(...p.runs.map((r) => r.peakAnonMb))),
    worker_baseline_rss_mb: Math.round(p.baselineRssMb),
    worker_baseline_anon_mb: Math.round(p.baselineAnonMb),
    worker_vmhwm_mb: Math.round(p.hwmMb),
    peak_engine_rss_mb: Math.round(enginePeakRss),
    engine_baseline_rss_mb: Math.round(p.engineBaselineRssMb),
    rss_samples: first.rssSamples,
    batch_bytes: BATCH_BYTES ?? null,
    restart: RESTART,
    load_avg_1m: p.load.map((x) => round(x)),
    repeats: REPEATS,
    tributary_runs_seconds: p.runs.map((r) => round(r.jobSeconds)),
    clickhouse_runs_seconds: e.pullSeconds.map(round),
    activities: p.timeline?.activities.map((a) => ({ ...a, queuedSeconds: round(a.queuedSeconds), runSeconds: round(a.runSeconds) })),
    diagnostics: d && {
      tsv_mb: round(d.tsvBytes / 1048576),
      copy_drain_seconds: round(d.copyDrainSeconds),
      read_only_seconds: round(d.readOnlySeconds),
      insert_only_seconds: round(d.insertOnlySeconds),
      hot_path_seconds: round(d.hotPathSeconds),
      infile_insert_only_seconds: round(d.infileInsertOnlySeconds),
      infile_hot_path_seconds: round(d.infileHotPathSeconds),
    },
    nproc: os.cpus().length,
    node: process.version,
    chdb: e.chdbVersion,
    targets_met: ratio >= TARGET_RATIO && peakRss < TARGET_RSS_MB,
  };
  process.stdout.write(JSON.stringify(json) + '\n');
}

const round = (x: number) => Math.round(x * 1000) / 1000;

// ---------------------------------------------------------------------------------------------

async function main() {
  log(`rows: ${fmtInt(ROWS)}, repeats: ${REPEATS}, diagnose: ${DIAGNOSE}`);
  const source = await prepareSource();
  const platformResult = await benchPlatform(source);
  const engineResult = await benchEngine(source, platformResult);
  report(platformResult, engineResult);
}

main()
  .then(cleanup, async (err) => {
    log(`FAILED: ${(err as Error).stack ?? err}`);
    await cleanup();
    process.exitCode = 1;
  })
  .then(() => process.exit());
