/**
 * `npm run bench:files` — files in object storage (issue 15). versitygw serves a scratch folder as S3; the engine
 * itself writes BENCH_ROWS rows (10,000,000 by default) into it as BENCH_FILES (100) Parquet files and as as many
 * gzip CSV files (`INSERT INTO FUNCTION s3(…) PARTITION BY`, so the objects carry ETags as uploads do), and
 * BENCH_LINK_FILES (10,000) small CSV files are written into the bucket's folder directly. Then, BENCH_REPEATS
 * (5) times each, medians compared:
 *
 * - an aggregate over the linked table (POST /api/query) against the same query run by the engine on `s3()` over
 *   the same files (target ≥ 0.95×, time ratio engine / linked): the endpoint as the IPv4 literal 127.0.0.1, which
 *   the platform's engine connects to itself, and as `localhost`, a name, which goes through its egress proxy;
 * - linking the 10,000-file bucket: db-schema (listing + schema inference) + create (target < 10 s);
 * - importing (a full refresh of the table as an imported table; the job's duration) against the engine's own
 *   `INSERT … SELECT FROM s3()` into a MergeTree of the same columns (target ≥ 0.9×): the median of the per-pair
 *   ratios, the pairs run in alternating order.
 *
 * The engine-direct runs use a second embedded engine (its own process and data dir, the same chDB build): the
 * platform's users may not call `s3()`. The two engines take turns, run by run (never at the same time), so a
 * ratio compares runs made under the same machine load. BENCH_PLATFORM=0 runs only the engine-direct half;
 * BENCH_PARTS (a comma list of link, query, import; default all) chooses the measures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchParts } from './bench-setup';
import { openWarehouse, sqlString, type Warehouse } from '../warehouse/client';
import { ensureVersitygw, startVersitygw, type Versitygw } from '../test/support/versitygw';
import { query, waitForJobs, type RunningPlatform } from '../test/support/platform';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const FILES = Number(process.env.BENCH_FILES ?? 100);
const LINK_FILES = Number(process.env.BENCH_LINK_FILES ?? 10_000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
/** BENCH_PARTS: which of link, query, import to run (default all). */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'link,query,import').split(','));
const ACCESS = 'bench-access';
const SECRET = 'bench-secret-0000';
const BUCKET = 'bench';
const log = (m: string) => process.stderr.write(`[bench:files ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const secs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ');
const load = () => os.loadavg()[0].toFixed(1);

/** The formats benchmarked: where their files are and how the engine reads them. */
const FORMATS = [
  { name: 'parquet', folder: 'parquet', ext: 'parquet', format: 'Parquet' },
  { name: 'csv_gz', folder: 'csv', ext: 'csv.gz', format: 'CSVWithNames' },
] as const;
type Format = (typeof FORMATS)[number];

/** Orders-like rows: a key, a timestamp, a customer, an amount, a status, a nullable text. */
const STRUCTURE = "id UInt64, created_at DateTime64(6, 'UTC'), customer_id UInt32, amount Decimal(12, 2), status String, email Nullable(String)";
const GENERATE = `SELECT number AS id,
    toDateTime64('2024-01-01 00:00:00', 6, 'UTC') + toIntervalMicrosecond(number * 3155) AS created_at,
    toUInt32(cityHash64(number) % 200000) AS customer_id,
    toDecimal64((cityHash64(number, 1) % 100000) / 100, 2) AS amount,
    ['paid', 'open', 'void', 'refunded', 'failed', 'draft'][1 + cityHash64(number, 2) % 6] AS status,
    if(number % 13 = 0, NULL, concat('user', toString(number % 500000), '@example.com')) AS email
  FROM numbers(${ROWS})`;
const AGGREGATE = (from: string) =>
  `SELECT status, count() AS n, sum(amount) AS total, uniq(customer_id) AS customers, max(created_at) AS latest FROM ${from} GROUP BY status ORDER BY status`;

const s3Url = (gw: Versitygw, f: Format) => `${gw.endpoint}/${BUCKET}/${f.folder}/*.${f.ext}`;
const s3Direct = (gw: Versitygw, f: Format) => `s3(${sqlString(s3Url(gw, f))}, ${sqlString(ACCESS)}, ${sqlString(SECRET)}, ${sqlString(f.format)})`;

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

async function generate(wh: Warehouse, gw: Versitygw) {
  for (const f of FORMATS) {
    const url = `${gw.endpoint}/${BUCKET}/${f.folder}/part-{_partition_id}.${f.ext}`;
    const t = await timed(() =>
      wh.command(`INSERT INTO FUNCTION s3(${sqlString(url)}, ${sqlString(ACCESS)}, ${sqlString(SECRET)}, ${sqlString(f.format)}, ${sqlString(STRUCTURE)}) PARTITION BY id % ${FILES} ${GENERATE}`),
    );
    const dir = path.join(gw.dir, BUCKET, f.folder);
    const bytes = fs.readdirSync(dir).reduce((n, file) => n + fs.statSync(path.join(dir, file)).size, 0);
    log(`${f.name}: ${ROWS.toLocaleString('en')} rows written as ${fs.readdirSync(dir).length} files, ${(bytes / 1024 / 1024).toFixed(0)} MB, in ${t.seconds.toFixed(1)} s`);
  }
  // The link bench's many small files, straight into the bucket's folder (versitygw serves what is there).
  const many = path.join(gw.dir, BUCKET, 'many');
  fs.mkdirSync(many, { recursive: true });
  for (let i = 0; i < LINK_FILES; i++) {
    const day = `dt=2024-${String(1 + (i % 12)).padStart(2, '0')}-01`;
    fs.mkdirSync(path.join(many, day), { recursive: true });
    fs.writeFileSync(path.join(many, day, `events-${i}.csv`), `id,event,value\n${i * 2},signup,${i % 97}\n${i * 2 + 1},login,${i % 89}\n`);
  }
  log(`many: ${LINK_FILES.toLocaleString('en')} small CSV files in 12 hive partitions`);
}

/** The engine on s3() directly: the aggregate. */
const directQuery = (wh: Warehouse, gw: Versitygw, f: Format) => timed(() => wh.queryRows(AGGREGATE(s3Direct(gw, f)))).then((t) => t.seconds);

/** The engine on s3() directly: INSERT … SELECT into a MergeTree of the imported table's shape (the time of the INSERT). */
async function directImport(wh: Warehouse, gw: Versitygw, f: Format): Promise<number> {
  await wh.command('DROP TABLE IF EXISTS direct_import');
  // The columns as the engine infers them from the files (what a linked or imported table is given).
  const inferred = await wh.queryRows<{ name: string; type: string }>(`DESCRIBE ${s3Direct(gw, f)}`);
  await wh.command(
    `CREATE TABLE direct_import (${inferred.map((c) => `\`${c.name}\` ${c.type}`).join(', ')}, _tributary_file LowCardinality(String),
       _tributary_synced_at DateTime64(6, 'UTC') DEFAULT now64(6), _tributary_version UInt64 DEFAULT 0, _tributary_is_deleted UInt8 DEFAULT 0)
     ENGINE = MergeTree ORDER BY tuple()`,
  );
  const t = await timed(() => wh.command(`INSERT INTO direct_import SELECT *, _path, now64(6), 1, 0 FROM ${s3Direct(gw, f)}`));
  const [{ n }] = await wh.queryRows<{ n: string }>('SELECT toString(count()) AS n FROM direct_import');
  if (Number(n) !== ROWS) throw new Error(`the direct import of ${f.name} holds ${n} rows, expected ${ROWS}`);
  await wh.command('DROP TABLE IF EXISTS direct_import');
  return t.seconds;
}

/** A Files source over the bench bucket with `tables`, each with its sync settings; `host` in place of the endpoint's 127.0.0.1. */
function filesPayload(gw: Versitygw, tables: { name: string; path: string; format: string }[], schemas: Record<string, unknown>[], host?: string) {
  const endpoint = host ? gw.endpoint.replace('127.0.0.1', host) : gw.endpoint;
  return { provider: 's3_compatible', endpoint, bucket: BUCKET, access_key_id: ACCESS, secret_access_key: SECRET, tables, schemas };
}

const TABLES = [
  { name: 'parquet', path: 'parquet/*.parquet', format: 'parquet' },
  { name: 'csv_gz', path: 'csv/*.csv.gz', format: 'csv_with_header' },
];

/** The platform's half: link the 10,000-file bucket, query the linked tables, import the files. */
async function throughPlatform(parts: BenchParts, gw: Versitygw, wh: Warehouse) {
  // Users' queries get half the cores by default (TRIBUTARY_QUERY_MAX_THREADS): the engine's own default here, so
  // the linked table and s3() are compared on the same threads.
  const platform = await parts.platform('bench-files', { TRIBUTARY_QUERY_TIMEOUT_SECONDS: '600', TRIBUTARY_QUERY_MAX_THREADS: String(os.cpus().length), TRIBUTARY_FILES_ALLOW_PRIVATE: '1' });
  const api = async (method: string, url: string, body?: unknown) => {
    const res = await platform.api(method, url, body);
    if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 2000)}`);
    return res.body;
  };

  // Linking a 10,000-file bucket: db-schema (listing, inference), then create.
  const many = [{ name: 'many', path: 'many/**/*.csv', format: 'csv_with_header' }];
  const links: number[] = [];
  for (let i = 0; i < (PARTS.has('link') ? REPEATS : 0); i++) {
    const t = await timed(async () => {
      const listed = await api('POST', '/api/sources/db-schema', { source_type: 'Files', ...filesPayload(gw, many, []) });
      const created = await api('POST', '/api/sources', {
        source_type: 'Files', prefix: `link${i}`, payload: filesPayload(gw, many, [{ name: 'many', should_sync: true, sync_type: 'linked' }]),
      });
      return { listed, created };
    });
    if (i === 0) log(`db-schema of the 10,000-file bucket: ${JSON.stringify(t.value.listed).slice(0, 400)}`);
    links.push(t.seconds);
  }
  if (links.length) {
    const [{ n: linkedRows }] = await query(platform, 'SELECT toString(count()) AS n FROM link0_many');
    if (Number(linkedRows) !== LINK_FILES * 2) throw new Error(`link0_many has ${linkedRows} rows, expected ${LINK_FILES * 2}`);
    log(`link a ${LINK_FILES.toLocaleString('en')}-file bucket (db-schema + create): ${secs(links)} s, median ${median(links).toFixed(2)} s; load ${load()}`);
  }

  // The query's linked tables twice: over the endpoint as an IPv4 literal (127.0.0.1), which the engine connects to
  // itself, and over the name `localhost`, which goes through the egress proxy as every host name does. The engine's
  // direct hosts are the catalog's at its start: it is started again (killed; the platform starts it on the next
  // query) once the bench's sources exist, as a platform restart would, so that 127.0.0.1 is one of them — for the
  // imports' sources too (the same endpoint). Linked before the engine started again, 127.0.0.1 is proxied: the
  // `localhost` figure is what it gets.
  if (PARTS.has('query') || PARTS.has('import')) {
    const linked = TABLES.map((t) => ({ name: t.name, should_sync: true, sync_type: 'linked' }));
    await api('POST', '/api/sources', { source_type: 'Files', prefix: 'bench', payload: filesPayload(gw, TABLES, linked) });
    if (PARTS.has('query')) await api('POST', '/api/sources', { source_type: 'Files', prefix: 'byname', payload: filesPayload(gw, TABLES, linked, 'localhost') });
    const before = platform.enginePid();
    process.kill(before!, 'SIGKILL');
    // A query sent before the platform saw its engine go fails with it: the next one starts the engine again.
    for (let tries = 0; ; tries++) {
      const ok = await query(platform, 'SELECT 1').then(() => true, (err: Error) => (tries < 100 ? false : Promise.reject(err)));
      if (ok && platform.enginePid() !== before) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    log(`platform engine started again (pid ${before} -> ${platform.enginePid()}): 127.0.0.1 is a direct host`);
  }
  const results: string[] = [];
  // Each run: the engine on s3(), then the linked tables, one after the other, so all see the same machine load.
  for (const f of FORMATS) {
    if (!PARTS.has('query')) break;
    const direct: number[] = [];
    const linked: number[] = [];
    const byName: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      direct.push(await directQuery(wh, gw, f));
      linked.push((await timed(() => query(platform, AGGREGATE(`bench_${f.name}`)))).seconds);
      byName.push((await timed(() => query(platform, AGGREGATE(`byname_${f.name}`)))).seconds);
    }
    const ratio = median(direct) / median(linked);
    const nameRatio = median(direct) / median(byName);
    log(
      `aggregate over ${f.name}: engine on s3() ${secs(direct)} s (median ${median(direct).toFixed(2)}); linked table, endpoint 127.0.0.1 (direct) ${secs(linked)} s ` +
        `(median ${median(linked).toFixed(2)}), s3() / linked = ${ratio.toFixed(2)}; endpoint localhost (through the egress proxy) ${secs(byName)} s ` +
        `(median ${median(byName).toFixed(2)}), s3() / linked = ${nameRatio.toFixed(2)}; load ${load()}`,
    );
    results.push(`query ${f.name} ${ratio.toFixed(2)} (by name ${nameRatio.toFixed(2)})`);
  }

  // Imports: each table as a full refresh (its first run on create, then "sync now"); the job's own duration. A
  // source per format, so that no two imports run at once (a create starts every enabled table's first run).
  for (const f of FORMATS) {
    if (!PARTS.has('import')) break;
    const table = TABLES.filter((t) => t.name === f.name);
    const created = await api('POST', '/api/sources', {
      source_type: 'Files', prefix: `imp_${f.name}`, payload: filesPayload(gw, table, [{ name: f.name, should_sync: true, sync_type: 'full_refresh', sync_frequency: '24hour' }]),
    });
    const schemaId = created.schemas[0].id;
    const direct: number[] = [];
    const runs: number[] = [];
    const job = async (i: number) => {
      if (i > 0) await api('POST', `/api/schemas/${schemaId}/sync`);
      const done = await waitForJobs(platform, schemaId, i + 1, 1_800_000);
      if (done.status !== 'Completed' || Number(done.rows_synced) !== ROWS) throw new Error(`import of ${f.name}: ${done.status}, ${done.rows_synced} rows: ${done.latest_error}`);
      runs.push(Number(done.duration_seconds));
    };
    // The order alternates pair by pair (import then INSERT … SELECT, then the other way round): on a loaded
    // machine whichever runs second of a fixed pair ran under a different load (the first import right after its
    // source's creation, the engine's caches warmed by the first), which moved the ratio of medians 0.82–1.17
    // between runs. Each pair's own ratio, then their median: a pair's runs are adjacent, so see about one load.
    for (let i = 0; i < REPEATS; i++) {
      if (i % 2 === 0) {
        await job(i);
        direct.push(await directImport(wh, gw, f));
      } else {
        direct.push(await directImport(wh, gw, f));
        await job(i);
      }
    }
    const pairs = direct.map((d, i) => d / runs[i]);
    const ratio = median(pairs);
    log(
      `import ${f.name}: engine INSERT … SELECT ${secs(direct)} s (median ${median(direct).toFixed(2)}); full refresh job ${secs(runs)} s (median ${median(runs).toFixed(2)}, ` +
        `${Math.round(ROWS / median(runs)).toLocaleString('en')} rows/s); per pair (import first, then INSERT first, alternating) INSERT … SELECT / import ${secs(pairs)}, ` +
        `median ${ratio.toFixed(2)} (ratio of medians ${(median(direct) / median(runs)).toFixed(2)}); load ${load()}`,
    );
    results.push(`import ${f.name} ${ratio.toFixed(2)}`);
  }
  log(`summary: ${links.length ? `link ${median(links).toFixed(2)} s; ` : ''}${results.join('; ')}`);
}

async function main(parts: BenchParts) {
  log(`${ROWS.toLocaleString('en')} rows as ${FILES} files per format; ${LINK_FILES.toLocaleString('en')} files to link; ${REPEATS} runs each; load ${load()} on ${os.cpus().length} cores`);
  const gw = await startVersitygw(await ensureVersitygw(log), { access: ACCESS, secret: SECRET, buckets: [BUCKET] });
  parts.onClose(async () => fs.rmSync(gw.dir, { recursive: true, force: true }));
  parts.onClose(() => gw.stop());
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bench-files-engine-'));
  parts.onClose(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const wh = await openWarehouse({ user: 'default', password: '', database: 'bench', dataDir });
  parts.onClose(() => wh.close());
  await generate(wh, gw);
  if (process.env.BENCH_PLATFORM === '0') {
    for (const f of FORMATS) {
      const q: number[] = [];
      const imp: number[] = [];
      for (let i = 0; i < REPEATS; i++) q.push(await directQuery(wh, gw, f));
      for (let i = 0; i < REPEATS; i++) imp.push(await directImport(wh, gw, f));
      log(`engine on s3(), ${f.name}: aggregate ${secs(q)} s (median ${median(q).toFixed(2)}); INSERT … SELECT ${secs(imp)} s (median ${median(imp).toFixed(2)}); load ${load()}`);
    }
    return;
  }
  // Both engines stay open; they run in turn, never at once.
  await throughPlatform(parts, gw, wh);
}

BenchParts.run(log, main);
