import { CHANGE_LOG_TABLE } from './change-log';
import { quoteIdent, type Warehouse } from './client';
import { alterTableSql, createTableDefsSql, type Ddl } from './cluster';
import { destinationEvents } from '../platform/metrics';

/**
 * What each destination did, in the warehouse so `/api/query` reads it too:
 * - `_tributary_destination_logs`: one row per attempt (time, level, message, the HTTP status, duration, error,
 *   the first part of the response, the webhook-id and change ids it carried, the attempt number) and per change
 *   of health state.
 * - `_tributary_destination_metrics`: counts per minute, per destination and metric. Every metric counts changes
 *   except `disabled` (times disabled): `succeeded` (a 2xx), `rejected` (a 4xx other than 408/429: logged, not
 *   retried, passed), `failed` (a change whose attempts ran out; it is kept and tried again later), `retried`
 *   (an attempt after the first), `filtered` (skipped by the filters).
 * Both expire after TRIBUTARY_DESTINATION_ACTIVITY_RETENTION_DAYS (default 14).
 */
export const DESTINATION_LOGS_TABLE = '_tributary_destination_logs';
export const DESTINATION_METRICS_TABLE = '_tributary_destination_metrics';

export const DESTINATION_METRICS = ['succeeded', 'failed', 'filtered', 'retried', 'disabled', 'rejected'] as const;
export type DestinationMetric = (typeof DESTINATION_METRICS)[number];

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A response body kept in a log row is cut at this many characters. */
export const LOGGED_RESPONSE_CHARS = 1_000;

export interface DestinationLogEntry {
  /** Epoch milliseconds; default now. */
  time?: number;
  level: LogLevel;
  message: string;
  status?: number | null;
  duration_ms?: number | null;
  error?: string | null;
  response?: string | null;
  webhook_id?: string;
  change_ids?: string[];
  attempt?: number;
}

const days = (n: number) => Math.max(1, Math.floor(n));

const logsTtl = (retentionDays: number) => `TTL toDateTime(time) + INTERVAL ${days(retentionDays)} DAY DELETE`;
const metricsTtl = (retentionDays: number) => `TTL time + INTERVAL ${days(retentionDays)} DAY DELETE`;

export function destinationActivityDdl(database: string, retentionDays: number, ddl: Ddl): string[] {
  const opts = { ...ddl, ifNotExists: true };
  return [
    createTableDefsSql(database, DESTINATION_LOGS_TABLE, {
      columns: [
        "time DateTime64(3, 'UTC') DEFAULT now64(3)",
        'destination_id String',
        'level LowCardinality(String)',
        'message String',
        'status Nullable(UInt16)',
        'duration_ms Nullable(UInt32)',
        'error Nullable(String)',
        'response Nullable(String)',
        "webhook_id String DEFAULT ''",
        'change_ids Array(String)',
        'attempt UInt16 DEFAULT 0',
      ],
      engine: 'MergeTree',
      clauses: `PARTITION BY toYYYYMMDD(time) ORDER BY (destination_id, time)\n    ${logsTtl(retentionDays)} SETTINGS ttl_only_drop_parts = 1`,
    }, opts),
    createTableDefsSql(database, DESTINATION_METRICS_TABLE, {
      columns: ["time DateTime('UTC')", 'destination_id String', 'metric LowCardinality(String)', 'count UInt64'],
      engine: 'SummingMergeTree(count)',
      clauses: `PARTITION BY toYYYYMM(time) ORDER BY (destination_id, metric, time)\n    ${metricsTtl(retentionDays)}`,
    }, opts),
  ];
}

/** Creates both tables if needed and sets their retention. */
export async function ensureDestinationActivity(wh: Warehouse, retentionDays: number): Promise<void> {
  const ddl = { cluster: wh.cluster };
  for (const sql of destinationActivityDdl(wh.database, retentionDays, ddl)) await wh.command(sql);
  await wh.command(alterTableSql(wh.database, DESTINATION_LOGS_TABLE, `MODIFY ${logsTtl(retentionDays)}`, ddl));
  await wh.command(alterTableSql(wh.database, DESTINATION_METRICS_TABLE, `MODIFY ${metricsTtl(retentionDays)}`, ddl));
}

const truncate = (s: string | null | undefined, n: number) => (s == null ? null : s.length > n ? s.slice(0, n) + '…' : s);

/**
 * Collects a delivery's log rows and metric counts and writes them in one insert each (the embedded engine is
 * one lane: a row per request at thousands a second would queue every other statement behind them). Counts are
 * summed per minute before they are written. What was not flushed when the process dies is lost: the logs are
 * for watching, the checkpoint is what delivery relies on.
 */
export class DestinationActivity {
  private logs: string[] = [];
  private counts = new Map<string, number>();

  constructor(
    private readonly wh: Warehouse,
    private readonly destinationId: string,
  ) {}

  log(e: DestinationLogEntry): void {
    this.logs.push(
      JSON.stringify({
        time: new Date(e.time ?? Date.now()).toISOString().replace('T', ' ').replace('Z', ''),
        destination_id: this.destinationId,
        level: e.level,
        message: e.message,
        status: e.status ?? null,
        duration_ms: e.duration_ms == null ? null : Math.max(0, Math.round(e.duration_ms)),
        error: truncate(e.error, LOGGED_RESPONSE_CHARS),
        response: truncate(e.response, LOGGED_RESPONSE_CHARS),
        webhook_id: e.webhook_id ?? '',
        change_ids: e.change_ids ?? [],
        attempt: e.attempt ?? 0,
      }),
    );
  }

  count(metric: DestinationMetric, n = 1, at = Date.now()): void {
    if (n <= 0) return;
    destinationEvents.inc({ destination_id: this.destinationId, outcome: metric }, n);
    const minute = Math.floor(at / 60_000) * 60;
    const k = `${minute}\t${metric}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + n);
  }

  get pending(): number {
    return this.logs.length + this.counts.size;
  }

  async flush(): Promise<void> {
    const logs = this.logs.splice(0);
    const counts = [...this.counts];
    this.counts.clear();
    try {
      if (logs.length) {
        await this.wh.insertBytes(
          DESTINATION_LOGS_TABLE,
          ['time', 'destination_id', 'level', 'message', 'status', 'duration_ms', 'error', 'response', 'webhook_id', 'change_ids', 'attempt'],
          Buffer.from(logs.join('\n') + '\n', 'utf8'),
          { format: 'JSONEachRow' },
        );
      }
      if (counts.length) {
        const rows = counts.map(([k, n]) => {
          const [minute, metric] = k.split('\t');
          return JSON.stringify({ time: Number(minute), destination_id: this.destinationId, metric, count: n });
        });
        await this.wh.insertBytes(DESTINATION_METRICS_TABLE, ['time', 'destination_id', 'metric', 'count'], Buffer.from(rows.join('\n') + '\n', 'utf8'), {
          format: 'JSONEachRow',
        });
      }
    } catch (err) {
      // Kept for the next flush rather than lost to a busy engine (bounded: the oldest go first).
      this.logs = [...logs, ...this.logs].slice(-10_000);
      for (const [k, n] of counts) this.counts.set(k, (this.counts.get(k) ?? 0) + n);
      throw err;
    }
  }
}

/** The metrics' bucket sizes and how far back each looks. */
export const METRIC_INTERVALS = {
  '1m': { seconds: 60, buckets: 60 },
  '5m': { seconds: 300, buckets: 144 },
  '1h': { seconds: 3600, buckets: 168 },
  '1d': { seconds: 86400, buckets: 30 },
} as const;
export type MetricInterval = keyof typeof METRIC_INTERVALS;

export type MetricBucket = { time: string } & Record<DestinationMetric, number>;

/** Per-bucket counts, oldest first, only the buckets with something in them. */
export async function destinationMetrics(wh: Warehouse, destinationId: string, interval: MetricInterval): Promise<{ buckets: MetricBucket[]; totals: Record<DestinationMetric, number> }> {
  const { seconds, buckets } = METRIC_INTERVALS[interval];
  const rows = await wh.queryRows<{ bucket: string; metric: string; n: string }>(
    `SELECT toString(toStartOfInterval(time, INTERVAL {s:UInt32} SECOND)) AS bucket, metric, toString(sum(count)) AS n
       FROM ${quoteIdent(wh.database)}.${DESTINATION_METRICS_TABLE}
      WHERE destination_id = {id:String} AND time >= toStartOfInterval(now(), INTERVAL {s:UInt32} SECOND) - INTERVAL {back:UInt32} SECOND
      GROUP BY bucket, metric ORDER BY bucket`,
    { params: { id: destinationId, s: seconds, back: seconds * (buckets - 1) } },
  );
  const zero = () => Object.fromEntries(DESTINATION_METRICS.map((m) => [m, 0])) as Record<DestinationMetric, number>;
  const byBucket = new Map<string, MetricBucket>();
  const totals = zero();
  for (const r of rows) {
    if (!(DESTINATION_METRICS as readonly string[]).includes(r.metric)) continue;
    const time = new Date(r.bucket.replace(' ', 'T') + 'Z').toISOString();
    const b = byBucket.get(time) ?? { time, ...zero() };
    b[r.metric as DestinationMetric] += Number(r.n);
    totals[r.metric as DestinationMetric] += Number(r.n);
    byBucket.set(time, b);
  }
  return { buckets: [...byBucket.values()], totals };
}

export interface DestinationLogRow {
  time: string;
  level: LogLevel;
  message: string;
  status: number | null;
  duration_ms: number | null;
  error: string | null;
  response: string | null;
  webhook_id: string;
  change_ids: string[];
  attempt: number;
}

/** The newest log rows first, optionally only some levels. */
export async function destinationLogs(wh: Warehouse, destinationId: string, opts: { levels?: LogLevel[]; limit: number }): Promise<DestinationLogRow[]> {
  const rows = await wh.queryRows<DestinationLogRow>(
    `SELECT toString(time) AS time, level, message, status, duration_ms, error, response, webhook_id, change_ids, attempt
       FROM ${quoteIdent(wh.database)}.${DESTINATION_LOGS_TABLE}
      WHERE destination_id = {id:String} ${opts.levels?.length ? 'AND level IN {levels:Array(String)}' : ''}
      ORDER BY time DESC LIMIT {limit:UInt32}`,
    { params: { id: destinationId, levels: opts.levels ?? [], limit: opts.limit } },
  );
  return rows.map((r) => ({
    ...r,
    time: new Date(r.time.replace(' ', 'T') + 'Z').toISOString(),
    status: r.status === null ? null : Number(r.status),
    duration_ms: r.duration_ms === null ? null : Number(r.duration_ms),
    attempt: Number(r.attempt),
  }));
}

/**
 * How far behind a destination is: the changes after its checkpoint that its tables and operations select (the
 * expression is not evaluated here), and the age of the oldest. Zero and null when it is up to date.
 */
export async function destinationLag(
  wh: Warehouse,
  opts: { after: { batch: bigint; seq: number }; tables?: string[]; ops?: string[] },
): Promise<{ changes: number; oldest_landed_at: string | null; seconds: number | null }> {
  const where = [
    '(batch, seq) > ({ab:UInt64}, {as:UInt32})',
    ...(opts.tables?.length ? ['`table` IN {tables:Array(String)}'] : []),
    ...(opts.ops?.length ? ['toString(op) IN {ops:Array(String)}'] : []),
  ];
  const rows = await wh.queryRows<{ n: string; oldest: string | null; age: number | null }>(
    `SELECT toString(count()) AS n, if(count() = 0, NULL, toString(min(landed_at))) AS oldest,
            if(count() = 0, NULL, toFloat64(dateDiff('millisecond', min(landed_at), now64(6))) / 1000) AS age
       FROM ${quoteIdent(wh.database)}.${CHANGE_LOG_TABLE} WHERE ${where.join(' AND ')}`,
    { params: { ab: opts.after.batch.toString(), as: opts.after.seq, tables: opts.tables ?? [], ops: opts.ops ?? [] } },
  );
  const r = rows[0];
  const n = Number(r?.n ?? 0);
  return {
    changes: n,
    oldest_landed_at: n && r.oldest ? new Date(r.oldest.replace(' ', 'T') + 'Z').toISOString() : null,
    seconds: n && r.age !== null ? Math.max(0, Number(r.age)) : null,
  };
}
