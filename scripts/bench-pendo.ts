/**
 * `npm run bench:pendo` — 1,000,000 Pendo visitors (BENCH_VISITORS) from the local Pendo server in generated mode
 * (each visitor computed from its index and streamed: the server holds none of them), read by the connector's own
 * read() — its production client over fetch, keyset pages of TRIBUTARY_PENDO_PAGE_SIZE, rows typed and rendered as
 * TabSeparated batches. Prints rows/s and the reader's peak RSS, sampled during the run, after 100k rows and at the
 * end (flat memory: the two are close). BENCH_PLATFORM=1 also syncs them through the real platform into the
 * warehouse (a full refresh of a Pendo source) and prints that run's rows/s and the platform's peak RSS.
 * BENCH_TIMELINE=1 prints, for the platform run, each second's CPU of the worker's and the engine's processes and
 * the platform's log lines at their offsets (which step keeps which core busy).
 *
 * The server runs in a child process, so the reader's RSS is its own and the two share the machine's cores as
 * a remote API and a worker would not: the figures are a floor.
 */
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import fs from 'node:fs';
import { cpuSeconds, memoryKb, sampleRss } from './bench-memory';
import { BenchParts } from './bench-setup';
import { pendoConnector } from '../connectors/pendo';
import { PENDO_TABLES } from '../connectors/pendo/tables';
import { generatedVisitors, startPendoFake } from '../test/support/pendo-fake';
import { query, readProc, waitForJobs } from '../test/support/platform';

const VISITORS = Number(process.env.BENCH_VISITORS ?? 1_000_000);
const KEY = 'bench-key-0000-eu';
const log = (m: string) => process.stderr.write(`[bench:pendo ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

async function serve() {
  const fake = await startPendoFake();
  fake.addKey(KEY, 'app.eu.pendo.io');
  fake.generate(generatedVisitors(VISITORS));
  fake.chunkRows = 500;
  process.stdout.write(JSON.stringify({ apiUrl: fake.apiUrl }) + '\n');
  process.on('SIGTERM', () => void fake.stop().then(() => process.exit(0)));
}

/** The fake in a child process; its API URL template once it listens. */
async function startServer(parts: BenchParts): Promise<{ apiUrl: string; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, 'serve'], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  parts.onClose(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the Pendo server exited with ${code}`)));
  });
  return { apiUrl: JSON.parse(line).apiUrl, pid: child.pid! };
}

async function readerRun(apiUrl: string) {
  process.env.TRIBUTARY_PENDO_API_URL = apiUrl;
  const config = { integration_key: KEY, region: 'EU' as const };
  const columns = await pendoConnector.describe(config, 'visitors');
  // The peak so far, sampled every 50 ms: read at 100k rows and at the end.
  let peakKb = 0;
  const sample = () => (peakKb = Math.max(peakKb, memoryKb(process.pid)?.rss ?? 0));
  const timer = setInterval(sample, 50);
  let at100k: { peakKb: number; seconds: number } | undefined;
  let at500k: number | undefined;
  const cpu0 = process.cpuUsage();
  let rows = 0;
  let bytes = 0;
  let batches = 0;
  const t0 = performance.now();
  for await (const batch of pendoConnector.read(config, { table: 'visitors', mode: 'full_refresh', columns, version: 1n })) {
    rows += batch.rows;
    bytes += batch.data.length;
    batches++;
    if (!at100k && rows >= 100_000) at100k = { peakKb: sample(), seconds: (performance.now() - t0) / 1000 };
    if (at500k === undefined && rows >= 500_000) at500k = sample();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(timer);
  sample();
  if (rows !== VISITORS) throw new Error(`read ${rows} visitors, expected ${VISITORS}`);
  return { rows, bytes, batches, seconds, peakKb, at100k, at500k, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The processes a platform started (the Temporal dev server among them), by their parent's pid. */
function childrenOf(parent: number): { pid: number; cmd: string }[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => Number(/^PPid:\s+(\d+)/m.exec(readProc(pid, 'status') ?? '')?.[1]) === parent)
    .map((pid) => ({ pid, cmd: (readProc(pid, 'cmdline') ?? '').replace(/\0/g, ' ') }));
}

/** CPU seconds of each thread of `pid`, by thread id. */
function threadCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const t = cpuSeconds(pid, Number(tid));
    if (t !== undefined) out.set(Number(tid), t);
  }
  return out;
}

/** CPU seconds spent by each of `pids` since `from` (a process gone in between counts what it had at `from` only). */
function cpuSince(from: Map<number, number>): Map<number, number> {
  return new Map([...from].map(([pid, t0]) => [pid, (cpuSeconds(pid) ?? t0) - t0]));
}

async function platformRun(parts: BenchParts, apiUrl: string) {
  const timelineOn = process.env.BENCH_TIMELINE === '1';
  const platform = await parts.platform('bench-pendo', {
    TRIBUTARY_PENDO_API_URL: apiUrl, TRIBUTARY_PENDO_RPS: process.env.TRIBUTARY_PENDO_RPS ?? '1000', ...(timelineOn ? { LOG_LEVEL: 'debug' } : {}),
  });
  const schemas = PENDO_TABLES.map((t) => (t.name === 'visitors' ? { name: t.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' } : { name: t.name, should_sync: false }));
  const rss = sampleRss(platform.pid, 100);
  let engineRss: ReturnType<typeof sampleRss> | undefined;
  // CPU of the platform's process (API + worker), its warehouse engine and its Temporal dev server, from the create on.
  const enginePid = platform.enginePid();
  const temporalPid = childrenOf(platform.pid).find((c) => /temporal/.test(c.cmd) && !/engine-process/.test(c.cmd))?.pid;
  const watched = [platform.pid, enginePid, temporalPid].filter((p): p is number => p !== undefined);
  const cpu0 = new Map(watched.map((pid) => [pid, cpuSeconds(pid) ?? 0]));
  if (enginePid) engineRss = sampleRss(enginePid, 100);
  const t0 = performance.now();
  // BENCH_TIMELINE=1: each second's CPU of the worker's and the engine's process, to see which phases leave a core idle.
  let last = new Map(cpu0);
  let lastThreads = threadCpu(platform.pid);
  const wall0 = Date.now();
  const timeline = timelineOn
    ? setInterval(() => {
        const now = new Map(watched.map((pid) => [pid, cpuSeconds(pid) ?? 0]));
        const d = (pid: number | undefined) => (pid === undefined ? 0 : (now.get(pid) ?? 0) - (last.get(pid) ?? 0)).toFixed(2);
        // The worker process's busiest threads (its main thread, the render thread, V8's helpers).
        const threads = threadCpu(platform.pid);
        const busiest = [...threads].map(([tid, t]) => [tid, t - (lastThreads.get(tid) ?? 0)] as const).sort((a, b) => b[1] - a[1]).slice(0, 3);
        lastThreads = threads;
        log(`t=${((performance.now() - t0) / 1000).toFixed(0)} s: worker ${d(platform.pid)} (threads ${busiest.map(([, c]) => c.toFixed(2)).join(' / ')}), engine ${d(enginePid)} CPU-seconds`);
        last = now;
      }, 1000)
    : undefined;
  const res = await platform.api('POST', '/api/sources', { source_type: 'Pendo', prefix: 'bench', payload: { integration_key: KEY, region: 'EU', schemas } });
  if (res.status !== 201) throw new Error(`create source: ${res.status} ${JSON.stringify(res.body)}`);
  const job = await waitForJobs(platform, res.body.schemas.find((s: { name: string }) => s.name === 'visitors').id, 1, 3_600_000);
  const seconds = (performance.now() - t0) / 1000;
  if (timeline) {
    clearInterval(timeline);
    // The platform's own log lines of the run, at their offsets: which step each idle or busy second belongs to.
    for (const line of platform.output().split('\n')) {
      let entry: { time?: number; msg?: string };
      try {
        entry = JSON.parse(line);
      } catch {
        continue;
      }
      if (entry.time && entry.time >= wall0 && entry.msg) log(`  log t=${((entry.time - wall0) / 1000).toFixed(1)} s: ${entry.msg}`);
    }
  }
  const cpu = cpuSince(cpu0);
  const mem = rss.stop();
  const eng = engineRss?.stop();
  if (job.status !== 'Completed') throw new Error(`job ${job.status}: ${job.latest_error}`);
  const [n] = await query(platform, 'SELECT count() AS n, uniqExact(visitor_id) AS u FROM bench_visitors FINAL');
  if (Number(n.n) !== VISITORS || Number(n.u) !== VISITORS) throw new Error(`warehouse has ${n.n} visitors (${n.u} distinct), expected ${VISITORS}`);
  const cpuOf = (pid: number | undefined) => (pid === undefined ? undefined : cpu.get(pid));
  return {
    seconds, peakKb: mem.peakKb, enginePeakKb: eng?.peakKb,
    cpu: { platform: cpuOf(platform.pid)!, engine: cpuOf(enginePid), temporal: cpuOf(temporalPid) },
  };
}

async function main(parts: BenchParts) {
  process.env.TRIBUTARY_PENDO_RPS ??= '1000';
  log(`${VISITORS.toLocaleString('en')} generated visitors; page size ${process.env.TRIBUTARY_PENDO_PAGE_SIZE ?? '5000 (default)'}; pacing ${process.env.TRIBUTARY_PENDO_RPS} requests/s`);
  const server = await startServer(parts);
  // BENCH_READ=0: the platform run only.
  if (process.env.BENCH_READ !== '0') await bareRead(server);
  if (process.env.BENCH_PLATFORM === '1') {
    const load = loadAverage();
    const serverCpu0 = cpuSeconds(server.pid) ?? 0;
    const p = await platformRun(parts, server.apiUrl);
    const serverCpu = (cpuSeconds(server.pid) ?? serverCpu0) - serverCpu0;
    const ours = p.cpu.platform + (p.cpu.engine ?? 0);
    const s1 = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(1)} s`);
    log(
      `through the platform (create → job completed, full refresh): ${p.seconds.toFixed(1)} s = ${Math.round(VISITORS / p.seconds).toLocaleString('en')} rows/s; ` +
        `platform peak RSS ${mb(p.peakKb)}${p.enginePeakKb ? `, warehouse engine ${mb(p.enginePeakKb)}` : ''}`,
    );
    log(
      `platform CPU: worker process ${s1(p.cpu.platform)} + engine ${s1(p.cpu.engine)} = ${ours.toFixed(1)} s = ${Math.round(VISITORS / ours).toLocaleString('en')} rows per CPU-second ` +
        `(Temporal dev server ${s1(p.cpu.temporal)}, local Pendo server ${serverCpu.toFixed(1)} s); load average before ${load}, after ${loadAverage()}`,
    );
  }
}

const loadAverage = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function bareRead(server: { apiUrl: string; pid: number }) {
  const serverRss = sampleRss(server.pid, 100);
  const r = await readerRun(server.apiUrl);
  const s = serverRss.stop();
  log(
    `connector read: ${r.rows.toLocaleString('en')} rows in ${r.seconds.toFixed(1)} s = ${Math.round(r.rows / r.seconds).toLocaleString('en')} rows/s ` +
      `(${(r.bytes / 1024 / 1024 / r.seconds).toFixed(1)} MB/s of TSV, ${r.batches} batches)`,
  );
  // CPU time says what the reader costs whatever else the machine runs (wall-clock rows/s depends on that).
  log(`reader CPU: ${r.cpuSeconds.toFixed(1)} s = ${Math.round(r.rows / r.cpuSeconds).toLocaleString('en')} rows per CPU-second`);
  log(
    `reader peak RSS: ${mb(r.at100k!.peakKb)} after 100k rows (${r.at100k!.seconds.toFixed(1)} s)` +
      `${r.at500k ? `, ${mb(r.at500k)} after 500k` : ''}, ${mb(r.peakKb)} over all ${r.rows.toLocaleString('en')}; server peak RSS ${mb(s.peakKb)}`,
  );
}

if (process.argv[2] === 'serve') void serve();
else BenchParts.run(log, main);
