import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from '../catalog/db';
import { latestChangeBatch } from '../catalog/destinations';

/**
 * Prometheus metrics of this process (GET /metrics; a worker-only process serves them on its own port). Two kinds:
 * counters and histograms the process moves as things happen (runs it finished, requests it answered, deliveries
 * it made: they start at 0 with the process, as Prometheus expects of counters), and gauges read from the catalog
 * at scrape time (last success, rows, CDC lag, destination lag, open alerts), the same in every process.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'tributary_process_' });

const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

export const syncRuns = new Counter({ name: 'tributary_sync_runs_total', help: 'Sync runs finished by this process, by outcome', labelNames: ['source', 'schema', 'status'], registers: [registry] });
export const syncRows = new Counter({ name: 'tributary_sync_rows_total', help: 'Rows written by sync runs this process finished', labelNames: ['source', 'schema'], registers: [registry] });
export const syncDuration = new Histogram({ name: 'tributary_sync_duration_seconds', help: 'Duration of sync runs (job start to end)', labelNames: ['source', 'schema', 'status'], buckets: DURATION_BUCKETS, registers: [registry] });
export const destinationEvents = new Counter({
  name: 'tributary_destination_deliveries_total',
  help: 'Changes handled by destination delivery in this process, by outcome (succeeded, failed, retried, rejected, filtered, disabled)',
  labelNames: ['destination_id', 'outcome'],
  registers: [registry],
});
const httpRequests = new Counter({ name: 'tributary_http_requests_total', help: 'API requests answered', labelNames: ['method', 'route', 'status'], registers: [registry] });
const httpDuration = new Histogram({ name: 'tributary_http_request_duration_seconds', help: 'API request latency', labelNames: ['method', 'route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] });

/** Counts and times every API request, labelled by its route pattern (never the raw path: ids would explode the series). */
export function httpMetrics(): RequestHandler {
  return (req, res, next) => {
    const end = httpDuration.startTimer();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : res.statusCode === 404 ? 'unmatched' : req.baseUrl || 'unmatched';
      end({ method: req.method, route });
      httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}

/** A finished run: called where jobs are closed (activities/sync.ts). */
export function observeRun(labels: { source: string; schema: string }, status: 'Completed' | 'Failed', rows: number, startedAt: Date, finishedAt: Date | null): void {
  syncRuns.inc({ ...labels, status });
  if (rows > 0) syncRows.inc(labels, rows);
  if (finishedAt) syncDuration.observe({ ...labels, status }, Math.max(0, (new Date(finishedAt).getTime() - new Date(startedAt).getTime()) / 1000));
}

let catalogDb: Queryable | undefined;

/** The catalog the scrape-time gauges read; unset (a process without one): they are left out. */
export function bindMetricsCatalog(db: Queryable | undefined): void {
  catalogDb = db;
}

function catalogGauge(name: string, help: string, labelNames: string[], read: (db: Queryable, g: Gauge) => Promise<void>): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      if (catalogDb) await read(catalogDb, this).catch(() => undefined);
    },
  });
}

catalogGauge('tributary_schema_last_success_timestamp_seconds', 'When the schema last completed a sync (Unix seconds)', ['source', 'schema', 'sync_type'], async (db, g) => {
  const r = await db.query<{ prefix: string; name: string; sync_type: string; t: string | null }>(
    `SELECT src.prefix, s.name, s.sync_type, extract(epoch FROM (SELECT max(finished_at) FROM jobs j WHERE j.schema_id = s.id AND j.status = 'Completed'))::float8::text AS t
       FROM schemas s JOIN sources src ON src.id = s.source_id WHERE s.should_sync AND s.sync_type IS NOT NULL`,
  );
  for (const x of r.rows) if (x.t !== null) g.set({ source: x.prefix, schema: x.name, sync_type: x.sync_type }, Number(x.t));
});
catalogGauge('tributary_schema_rows_synced', "Rows the schema's last run synced (CDC: changes since the snapshot)", ['source', 'schema'], async (db, g) => {
  const r = await db.query<{ prefix: string; name: string; rows: string | null }>(`SELECT src.prefix, s.name, s.rows_synced::text AS rows FROM schemas s JOIN sources src ON src.id = s.source_id WHERE s.should_sync`);
  for (const x of r.rows) if (x.rows !== null) g.set({ source: x.prefix, schema: x.name }, Number(x.rows));
});
catalogGauge('tributary_sync_failures', 'Failed runs recorded in the catalog per schema (all processes, since the schema was created)', ['source', 'schema'], async (db, g) => {
  const r = await db.query<{ prefix: string; name: string; n: string }>(
    `SELECT src.prefix, s.name, count(j.id)::text AS n FROM schemas s JOIN sources src ON src.id = s.source_id LEFT JOIN jobs j ON j.schema_id = s.id AND j.status = 'Failed' GROUP BY src.prefix, s.name`,
  );
  for (const x of r.rows) g.set({ source: x.prefix, schema: x.name }, Number(x.n));
});
catalogGauge('tributary_cdc_lag_bytes', 'WAL the replication slot holds back (pg_wal_lsn_diff, checked every minute)', ['source'], async (db, g) => {
  const r = await db.query<{ prefix: string; lag: string | null }>(`SELECT src.prefix, m.lag_bytes::text AS lag FROM cdc_mirrors m JOIN sources src ON src.id = m.source_id`);
  for (const x of r.rows) if (x.lag !== null) g.set({ source: x.prefix }, Number(x.lag));
});
catalogGauge(
  'tributary_cdc_lag_seconds',
  "Replication delay: seconds from the source's commit of the last transaction the warehouse has to the moment it was durable there (source clock vs Tributary's)",
  ['source'],
  async (db, g) => {
    const r = await db.query<{ prefix: string; s: string }>(
      `SELECT src.prefix, extract(epoch FROM m.last_applied_at - m.last_commit_at)::float8::text AS s FROM cdc_mirrors m JOIN sources src ON src.id = m.source_id WHERE m.last_commit_at IS NOT NULL`,
    );
    for (const x of r.rows) g.set({ source: x.prefix }, Number(x.s));
  },
);
catalogGauge('tributary_cdc_last_commit_timestamp_seconds', "The source's commit time of the last transaction the warehouse has (Unix seconds; time() minus it: how old the newest mirrored change is)", ['source'], async (db, g) => {
  const r = await db.query<{ prefix: string; t: string }>(`SELECT src.prefix, extract(epoch FROM m.last_commit_at)::float8::text AS t FROM cdc_mirrors m JOIN sources src ON src.id = m.source_id WHERE m.last_commit_at IS NOT NULL`);
  for (const x of r.rows) g.set({ source: x.prefix }, Number(x.t));
});
catalogGauge('tributary_cdc_changes_synced_total', 'Changes the CDC mirror has written (rate() gives changes/s)', ['source'], async (db, g) => {
  const r = await db.query<{ prefix: string; n: string }>(`SELECT src.prefix, m.changes_synced::text AS n FROM cdc_mirrors m JOIN sources src ON src.id = m.source_id`);
  for (const x of r.rows) g.set({ source: x.prefix }, Number(x.n));
});
catalogGauge('tributary_destination_lag_batches', 'Change batches landed that the destination has not passed yet', ['destination_id', 'destination', 'health'], async (db, g) => {
  const latest = Number(await latestChangeBatch(db));
  const r = await db.query<{ id: string; name: string; health_state: string; b: string }>(`SELECT id, name, health_state, checkpoint_batch::text AS b FROM destinations`);
  for (const x of r.rows) g.set({ destination_id: x.id, destination: x.name, health: x.health_state }, Math.max(0, latest - Number(x.b)));
});
catalogGauge('tributary_alerts_open', 'Open alerts (GET /api/alerts?state=open)', ['kind', 'severity'], async (db, g) => {
  const r = await db.query<{ kind: string; severity: string; n: string }>(`SELECT kind, severity, count(*)::text AS n FROM alerts WHERE cleared_at IS NULL GROUP BY kind, severity`);
  for (const x of r.rows) g.set({ kind: x.kind, severity: x.severity }, Number(x.n));
});

/** GET /metrics (the API puts requireToken(TRIBUTARY_METRICS_TOKEN) in front of it when that is set). */
export function metricsHandler(): RequestHandler {
  return async (_req, res) => {
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const digest = (v: string) => crypto.createHash('sha256').update(v).digest();
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return crypto.timingSafeEqual(digest(m?.[1]?.trim() ?? ''), digest(token)) && Boolean(m);
}

/** A worker-only process has no API: it answers GET /metrics on a port of its own. */
export function serveMetrics(host: string, port: number, token = process.env.TRIBUTARY_METRICS_TOKEN): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    if (token && !tokenMatches(req.headers.authorization, token)) return void res.writeHead(401).end();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * A worker's metrics port: only when TRIBUTARY_METRICS_PORT is set (0: one the OS picks). A default port would make
 * the second worker on a host fail to start, and a port picked silently instead is one no scrape config names; so
 * unset means off, and a port that is set but taken stops the start, naming the variable.
 */
export async function startWorkerMetrics(host: string, port: number | undefined): Promise<{ server: http.Server; port: number } | undefined> {
  if (port === undefined) return undefined;
  try {
    const server = await serveMetrics(host, port);
    return { server, port: (server.address() as AddressInfo).port };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`TRIBUTARY_METRICS_PORT ${port} is in use on ${host}: give each worker on this host a port of its own (0: any free one)`);
    throw err;
  }
}
