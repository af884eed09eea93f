import path from 'node:path';
import { DEFAULT_QUERY_LIMITS, QUERY_LIMIT_ENV, type QueryLimits } from '../warehouse/query-limits';
import { outgoingPolicyFromEnv, type OutgoingPolicy } from '../destinations/outgoing-network';
import { filesEndpointPolicy } from '../connectors/files/endpoint';

/**
 * Every setting Tributary reads from the environment, in one place.
 * With none set, each part runs embedded under TRIBUTARY_DATA_DIR; each *_URL / *_ADDRESS
 * switches that part to a real server without changing any other code.
 */
export interface Config {
  dataDir: string;
  /** publicUrl: where sources reach the API from outside (webhooks); default the API's own address. */
  api: { host: string; port: number; token?: string; publicUrl?: string };
  secretKey?: string;
  logLevel: string;
  /** Bytes per batch a sync reads and inserts (TRIBUTARY_BATCH_BYTES); unset: the connector's default. */
  batchBytes?: number;
  /**
   * Batches of a resumable full refresh (Pendo, Stripe) being inserted at once (TRIBUTARY_INSERTS_IN_FLIGHT, default
   * 2): the engine parses one while it writes the other; positions are still heartbeated in order.
   */
  insertsInFlight: number;
  /** At most this long between heartbeats reaching Temporal (TRIBUTARY_HEARTBEAT_THROTTLE_MS, default 1000). */
  heartbeatThrottleMs: number;
  /** CDC streams one worker process runs at once, on their own task queue (TRIBUTARY_STREAM_SLOTS, default 50). */
  streamSlots: number;
  /** Bounds on users' queries (POST /api/query): TRIBUTARY_QUERY_* (warehouse/query-limits.ts). */
  queryLimits: QueryLimits;
  /** A sync's load activity silent this long is taken for dead and retried (TRIBUTARY_HEARTBEAT_TIMEOUT_MS, default 30000). */
  heartbeatTimeoutMs: number;
  /** The change log destinations read (warehouse/change-log.ts). */
  changeLog: {
    /** Days a change is kept, so a destination can replay from any time within them (TRIBUTARY_CHANGE_RETENTION_DAYS, default 7). */
    retentionDays: number;
    /** A change batch left open this long by a writer that died is read past (TRIBUTARY_CHANGE_BATCH_LEASE_MS, default 600000). */
    batchLeaseMs: number;
  };
  /** Delivery to destinations (activities/deliver.ts, destinations/health.ts). */
  destinations: {
    /** A destination its health disabled waits this long before it is re-enabled (TRIBUTARY_DESTINATION_COOLDOWN_MS, default 600000). */
    cooldownMs: number;
    /** A change whose attempts ran out is tried again after this long (TRIBUTARY_DESTINATION_RETRY_PAUSE_MS, default 30000). */
    retryPauseMs: number;
    /** Days the destinations' logs and metrics are kept (TRIBUTARY_DESTINATION_ACTIVITY_RETENTION_DAYS, default 14). */
    activityRetentionDays: number;
  };
  // TRIBUTARY_DESTINATION_LOOPS_PER_RUN (default 50: a delivery workflow's rounds before it continues as new) is read
  // where the workflow starts, temporal/destination-workflows.ts, and travels in its input.
  /**
   * Where destinations may send (destinations/outgoing-network.ts): private and loopback ranges only with
   * TRIBUTARY_DESTINATIONS_ALLOW_PRIVATE=1, link-local and cloud metadata only with TRIBUTARY_DESTINATIONS_ALLOW_LINK_LOCAL=1.
   */
  outgoingNetwork: OutgoingPolicy;
  /**
   * Where the embedded engine may connect to object storage (connectors/files/endpoint.ts, warehouse/egress-proxy.ts):
   * private and loopback only with TRIBUTARY_FILES_ALLOW_PRIVATE=1, link-local only with TRIBUTARY_FILES_ALLOW_LINK_LOCAL=1.
   */
  filesNetwork: OutgoingPolicy;
  /**
   * The embedded engine's object storage connections through the egress proxy that judges each one
   * (warehouse/egress-proxy.ts; TRIBUTARY_FILES_EGRESS_PROXY, default 1). 0: the engine connects itself, and a
   * custom endpoint is judged only when it is linked (no protection against DNS rebinding), at no proxy cost.
   */
  filesEgressProxy: boolean;
  temporal: {
    /** Unset: spawn the Temporal dev server as a child process. */
    address?: string;
    namespace: string;
    taskQueue: string;
    tls: boolean;
    apiKey?: string;
    cliPath?: string;
    devServerPort: number;
    devServerUiPort: number;
  };
  clickhouse: {
    /** Unset: chDB in-process, data under dataDir/warehouse. */
    url?: string;
    user: string;
    password: string;
    database: string;
    /** Remote: a server user of its own for users' queries (CLICKHOUSE_QUERY_USER / _PASSWORD), readonly = 1 in its profile. */
    queryUser?: string;
    queryPassword?: string;
    /** Remote: the cluster Tributary's DDL runs ON CLUSTER, with Replicated*MergeTree tables (CLICKHOUSE_CLUSTER). */
    cluster?: string;
    /** Embedded: how long a start waits for another engine to release the data dir (TRIBUTARY_ENGINE_LOCK_WAIT_MS, default 30000). */
    engineLockWaitMs: number;
  };
  catalog: {
    /** Unset: PGlite in-process, data under dataDir/catalog. */
    databaseUrl?: string;
  };
  /** Alerts (activities/alerts.ts): the check runs every TRIBUTARY_ALERT_CHECK_SECONDS (default 60; 0: off). */
  alerts: { checkEveryMs: number };
  /**
   * Prometheus metrics (platform/metrics.ts). The API serves its process's at /metrics; a worker-only process on
   * TRIBUTARY_METRICS_PORT (unset: off, so workers sharing a host do not clash; 0: a port the OS picks, logged);
   * the Temporal SDK's own at TRIBUTARY_TEMPORAL_METRICS_ADDRESS (host:port; unset: off).
   */
  metrics: { workerPort?: number; temporalAddress?: string };
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`${name} must be a port number (0-65535), got "${raw}"`);
  }
  return n;
}

function positiveInt(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${env[name]}"`);
  return n;
}

function positiveNumber(env: NodeJS.ProcessEnv, name: string): number {
  const n = Number(env[name]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${env[name]}"`);
  return n;
}

function queryLimitsFromEnv(env: NodeJS.ProcessEnv): QueryLimits {
  const set = (key: keyof QueryLimits, parse: typeof positiveInt) => (nonEmpty(env[QUERY_LIMIT_ENV[key]]) ? parse(env, QUERY_LIMIT_ENV[key]) : DEFAULT_QUERY_LIMITS[key]);
  return {
    timeoutSeconds: set('timeoutSeconds', positiveNumber),
    maxMemoryBytes: set('maxMemoryBytes', positiveInt),
    maxResultRows: set('maxResultRows', positiveInt),
    maxResultBytes: set('maxResultBytes', positiveInt),
    maxThreads: set('maxThreads', positiveInt),
  };
}

function identifierFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const v = nonEmpty(env[name]) ?? fallback;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new Error(`${name} must be a plain identifier (letters, digits, _), got "${v}"`);
  return v;
}

function urlFromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = nonEmpty(env[name]);
  if (v === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new Error(`${name} must be an http(s) URL, got "${v}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${name} must be an http(s) URL, got "${v}"`);
  return v.replace(/\/+$/, '');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = path.resolve(nonEmpty(env.TRIBUTARY_DATA_DIR) ?? '.data');
  return {
    dataDir,
    api: {
      host: nonEmpty(env.TRIBUTARY_API_HOST) ?? '127.0.0.1',
      port: intFromEnv(env, 'TRIBUTARY_API_PORT', 8000),
      token: nonEmpty(env.TRIBUTARY_API_TOKEN),
      publicUrl: urlFromEnv(env, 'TRIBUTARY_PUBLIC_URL'),
    },
    secretKey: nonEmpty(env.TRIBUTARY_SECRET_KEY),
    logLevel: nonEmpty(env.LOG_LEVEL) ?? 'info',
    batchBytes: env.TRIBUTARY_BATCH_BYTES ? positiveInt(env, 'TRIBUTARY_BATCH_BYTES') : undefined,
    insertsInFlight: env.TRIBUTARY_INSERTS_IN_FLIGHT ? positiveInt(env, 'TRIBUTARY_INSERTS_IN_FLIGHT') : 2,
    heartbeatThrottleMs: env.TRIBUTARY_HEARTBEAT_THROTTLE_MS ? positiveInt(env, 'TRIBUTARY_HEARTBEAT_THROTTLE_MS') : 1000,
    streamSlots: env.TRIBUTARY_STREAM_SLOTS ? positiveInt(env, 'TRIBUTARY_STREAM_SLOTS') : 50,
    queryLimits: queryLimitsFromEnv(env),
    heartbeatTimeoutMs: env.TRIBUTARY_HEARTBEAT_TIMEOUT_MS ? positiveInt(env, 'TRIBUTARY_HEARTBEAT_TIMEOUT_MS') : 30_000,
    changeLog: {
      retentionDays: env.TRIBUTARY_CHANGE_RETENTION_DAYS ? positiveInt(env, 'TRIBUTARY_CHANGE_RETENTION_DAYS') : 7,
      batchLeaseMs: env.TRIBUTARY_CHANGE_BATCH_LEASE_MS ? positiveInt(env, 'TRIBUTARY_CHANGE_BATCH_LEASE_MS') : 600_000,
    },
    destinations: {
      cooldownMs: env.TRIBUTARY_DESTINATION_COOLDOWN_MS ? positiveInt(env, 'TRIBUTARY_DESTINATION_COOLDOWN_MS') : 600_000,
      retryPauseMs: env.TRIBUTARY_DESTINATION_RETRY_PAUSE_MS ? positiveInt(env, 'TRIBUTARY_DESTINATION_RETRY_PAUSE_MS') : 30_000,
      activityRetentionDays: env.TRIBUTARY_DESTINATION_ACTIVITY_RETENTION_DAYS ? positiveInt(env, 'TRIBUTARY_DESTINATION_ACTIVITY_RETENTION_DAYS') : 14,
    },
    outgoingNetwork: outgoingPolicyFromEnv(env),
    filesNetwork: filesEndpointPolicy(env),
    filesEgressProxy: !['0', 'false', 'no'].includes((env.TRIBUTARY_FILES_EGRESS_PROXY ?? '').trim().toLowerCase()),
    temporal: {
      address: nonEmpty(env.TEMPORAL_ADDRESS),
      namespace: nonEmpty(env.TEMPORAL_NAMESPACE) ?? 'default',
      taskQueue: nonEmpty(env.TEMPORAL_TASK_QUEUE) ?? 'tributary',
      tls: env.TEMPORAL_TLS === 'true' || env.TEMPORAL_TLS === '1',
      apiKey: nonEmpty(env.TEMPORAL_API_KEY),
      cliPath: nonEmpty(env.TEMPORAL_CLI_PATH),
      devServerPort: intFromEnv(env, 'TRIBUTARY_TEMPORAL_PORT', 7233),
      devServerUiPort: intFromEnv(env, 'TRIBUTARY_TEMPORAL_UI_PORT', 8233),
    },
    clickhouse: {
      url: nonEmpty(env.CLICKHOUSE_URL),
      user: nonEmpty(env.CLICKHOUSE_USER) ?? 'default',
      password: env.CLICKHOUSE_PASSWORD ?? '',
      database: identifierFromEnv(env, 'CLICKHOUSE_DATABASE', 'default'),
      queryUser: nonEmpty(env.CLICKHOUSE_QUERY_USER),
      queryPassword: env.CLICKHOUSE_QUERY_PASSWORD ?? '',
      cluster: nonEmpty(env.CLICKHOUSE_CLUSTER) ? identifierFromEnv(env, 'CLICKHOUSE_CLUSTER', '') : undefined,
      engineLockWaitMs: env.TRIBUTARY_ENGINE_LOCK_WAIT_MS ? positiveInt(env, 'TRIBUTARY_ENGINE_LOCK_WAIT_MS') : 30_000,
    },
    catalog: { databaseUrl: nonEmpty(env.DATABASE_URL) },
    alerts: { checkEveryMs: nonEmpty(env.TRIBUTARY_ALERT_CHECK_SECONDS) ? Number(env.TRIBUTARY_ALERT_CHECK_SECONDS) === 0 ? 0 : positiveNumber(env, 'TRIBUTARY_ALERT_CHECK_SECONDS') * 1000 : 60_000 },
    metrics: { workerPort: nonEmpty(env.TRIBUTARY_METRICS_PORT) === undefined ? undefined : intFromEnv(env, 'TRIBUTARY_METRICS_PORT', 0), temporalAddress: nonEmpty(env.TRIBUTARY_TEMPORAL_METRICS_ADDRESS) },
  };
}

/**
 * The environment variables read outside loadConfig, each where it is used. Most are read there because the value
 * is wanted at that moment and nowhere else (a connector's pacing, a workflow's start input: workflows cannot read
 * the environment, so the starter copies the number into the input). test/docker-compose.test.ts parses all
 * non-test code for environment reads and fails on a name neither loadConfig reads nor this list holds; for each
 * `setting` it also wants docker-compose.yml to set it or the README's Configuration tables to document it.
 * - `setting`: an operator's knob, with a default in the code.
 * - `test`: a hook for tests only; docker-compose.yml must not set it.
 * - `internal`: set by the platform itself for a child process it starts.
 * - `system`: the OS's or Node's own (PATH, XDG_CACHE_HOME, UV_THREADPOOL_SIZE), read by the tool builder and engine start.
 */
export const ENV_READ_ELSEWHERE: ReadonlyArray<{ name: string; kind: 'setting' | 'test' | 'internal' | 'system'; where: string }> = [
  { name: 'TRIBUTARY_STREAM_HEARTBEAT_TIMEOUT_MS', kind: 'setting', where: 'temporal/cdc-mirrors.ts, temporal/destination-workflows.ts (into the workflow input)' },
  { name: 'TRIBUTARY_CDC_LOOPS_PER_RUN', kind: 'setting', where: 'temporal/cdc-mirrors.ts (into the workflow input)' },
  { name: 'TRIBUTARY_CDC_STREAM_ATTEMPTS', kind: 'setting', where: 'temporal/cdc-mirrors.ts (into the workflow input)' },
  { name: 'TRIBUTARY_CDC_RETRY_AFTER_ERROR_SECONDS', kind: 'setting', where: 'temporal/cdc-mirrors.ts (into the workflow input)' },
  { name: 'TRIBUTARY_DESTINATION_LOOPS_PER_RUN', kind: 'setting', where: 'temporal/destination-workflows.ts (into the workflow input)' },
  { name: 'TRIBUTARY_CDC_BATCH_CHANGES', kind: 'setting', where: 'activities/cdc.ts' },
  { name: 'TRIBUTARY_CDC_FLUSH_MS', kind: 'setting', where: 'activities/cdc.ts' },
  { name: 'TRIBUTARY_CDC_STREAM_MS', kind: 'setting', where: 'activities/cdc.ts' },
  { name: 'TRIBUTARY_CDC_LAG_CHECK_MS', kind: 'setting', where: 'activities/cdc.ts' },
  { name: 'TRIBUTARY_CDC_LAG_WARNING_BYTES', kind: 'setting', where: 'api/cdc-control.ts' },
  { name: 'TRIBUTARY_CDC_LAG_CRITICAL_BYTES', kind: 'setting', where: 'api/cdc-control.ts' },
  { name: 'TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS', kind: 'setting', where: 'connectors/postgres/cdc-stream.ts' },
  { name: 'TRIBUTARY_ALERT_STALE_FACTOR', kind: 'setting', where: 'activities/alerts.ts' },
  { name: 'TRIBUTARY_OPERATION_WAIT_MS', kind: 'setting', where: 'api/operations.ts' },
  { name: 'TRIBUTARY_STAGING_SWEEP_DELAY_MS', kind: 'setting', where: 'activities/admin.ts' },
  { name: 'TRIBUTARY_METRICS_TOKEN', kind: 'setting', where: 'api/app.ts, platform/metrics.ts' },
  { name: 'TEMPORAL_UI_URL', kind: 'setting', where: 'platform/main.ts (links to runs, GET /api/platform-info)' },
  { name: 'TRIBUTARY_INSERT_BLOCK_ROWS', kind: 'setting', where: 'warehouse/client.ts' },
  { name: 'TRIBUTARY_ENGINE_SESSIONS', kind: 'setting', where: 'warehouse/engine-lanes.ts' },
  { name: 'TRIBUTARY_ENGINE_LOAD_SESSIONS', kind: 'setting', where: 'warehouse/engine-lanes.ts' },
  { name: 'TRIBUTARY_API_TIMEOUT_MS', kind: 'setting', where: 'connectors/kit/http.ts, connectors/pendo/client.ts' },
  { name: 'TRIBUTARY_STRIPE_API_URL', kind: 'setting', where: 'connectors/stripe/client.ts' },
  { name: 'TRIBUTARY_STRIPE_TEST_RPS', kind: 'setting', where: 'connectors/stripe/client.ts (connectors/kit/pacer.ts)' },
  { name: 'TRIBUTARY_STRIPE_LIVE_RPS', kind: 'setting', where: 'connectors/stripe/client.ts (connectors/kit/pacer.ts)' },
  { name: 'TRIBUTARY_STRIPE_SETTLE_SECONDS', kind: 'setting', where: 'connectors/stripe/read.ts' },
  { name: 'TRIBUTARY_STRIPE_EVENTS_WINDOW_SECONDS', kind: 'setting', where: 'connectors/stripe/read.ts' },
  { name: 'TRIBUTARY_PENDO_API_URL', kind: 'setting', where: 'connectors/pendo/client.ts' },
  { name: 'TRIBUTARY_PENDO_PAGE_SIZE', kind: 'setting', where: 'connectors/pendo/read.ts' },
  { name: 'TRIBUTARY_PENDO_RPS', kind: 'setting', where: 'connectors/pendo/client.ts (connectors/kit/pacer.ts)' },
  { name: 'TRIBUTARY_RENDER_THREAD_AFTER', kind: 'setting', where: 'connectors/kit/row-thread.ts' },
  { name: 'TRIBUTARY_FILES_ROOT', kind: 'setting', where: 'connectors/files/local.ts' },
  { name: 'TRIBUTARY_FILES_IMPORT_SLICE_FILES', kind: 'setting', where: 'activities/files-import.ts' },
  { name: 'TRIBUTARY_FILES_IMPORT_SLICE_BYTES', kind: 'setting', where: 'activities/files-import.ts' },
  { name: 'TRIBUTARY_TEST_HOLD_AT', kind: 'test', where: 'activities/context.ts (a step where a test stops an activity)' },
  { name: 'TRIBUTARY_ENGINE_NAMED_COLLECTIONS_KEY', kind: 'internal', where: 'warehouse/engine-process.ts (the key warehouse/engine.ts gives the embedded engine)' },
  { name: 'UV_THREADPOOL_SIZE', kind: 'system', where: 'warehouse/engine.ts (an override of the engine process pool size)' },
  { name: 'PATH', kind: 'system', where: 'platform/go-tools.ts (finding the Temporal CLI)' },
  { name: 'XDG_CACHE_HOME', kind: 'system', where: 'platform/go-tools.ts (where built tools are kept)' },
];
