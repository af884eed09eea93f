import os from 'node:os';
import type { ClickHouseSettings } from '@clickhouse/client';

/** Bounds on every user query (POST /api/query), each set by the environment variable its comment names. */
export interface QueryLimits {
  /** TRIBUTARY_QUERY_TIMEOUT_SECONDS (default 30): ClickHouse's max_execution_time. */
  timeoutSeconds: number;
  /** TRIBUTARY_QUERY_MAX_MEMORY_BYTES (default 2 GiB): max_memory_usage. */
  maxMemoryBytes: number;
  /** TRIBUTARY_QUERY_MAX_RESULT_ROWS (default 1,000,000): max_result_rows. */
  maxResultRows: number;
  /** TRIBUTARY_QUERY_MAX_RESULT_BYTES (default 100 MiB, uncompressed in the engine): max_result_bytes. */
  maxResultBytes: number;
  /**
   * TRIBUTARY_QUERY_MAX_THREADS (default half the cores, at least 1): max_threads. A heavy query then leaves
   * cores to the syncs, the worker and Temporal instead of taking every one for as long as it runs.
   */
  maxThreads: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  timeoutSeconds: 30,
  maxMemoryBytes: 2 * 1024 ** 3,
  maxResultRows: 1_000_000,
  maxResultBytes: 100 * 1024 ** 2,
  maxThreads: Math.max(1, Math.floor(os.availableParallelism() / 2)),
};

export const QUERY_LIMIT_ENV: Record<keyof QueryLimits, string> = {
  timeoutSeconds: 'TRIBUTARY_QUERY_TIMEOUT_SECONDS',
  maxMemoryBytes: 'TRIBUTARY_QUERY_MAX_MEMORY_BYTES',
  maxResultRows: 'TRIBUTARY_QUERY_MAX_RESULT_ROWS',
  maxResultBytes: 'TRIBUTARY_QUERY_MAX_RESULT_BYTES',
  maxThreads: 'TRIBUTARY_QUERY_MAX_THREADS',
};

/**
 * The settings every user query runs under: its limits, over which the query fails (never a silently cut
 * result), and JSON output that rounds no value (64-bit integers and decimals as strings). The session they
 * are set on is then made `readonly = 1`, so that no query can change them (a SETTINGS clause or SET is refused).
 */
export function userQuerySettings(limits: QueryLimits): ClickHouseSettings {
  return {
    max_execution_time: limits.timeoutSeconds,
    timeout_overflow_mode: 'throw',
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_rows: String(limits.maxResultRows),
    max_result_bytes: String(limits.maxResultBytes),
    result_overflow_mode: 'throw',
    max_threads: limits.maxThreads,
    output_format_json_quote_64bit_integers: 1,
    output_format_json_quote_decimals: 1,
    output_format_decimal_trailing_zeros: 1,
    output_format_json_quote_denormals: 1,
  };
}

/**
 * The SQL that makes a ClickHouse server user for users' queries (CLICKHOUSE_QUERY_USER): the query limits and
 * output settings in its profile, readonly = 1 after them (no query can change a setting or write), SELECT on
 * Tributary's database only. The README shows it; the deployment test's server is given the same profile.
 */
export function queryUserSql(opts: { user: string; password: string; database: string; limits: QueryLimits }): string[] {
  const ident = (s: string) => '`' + s.replace(/`/g, '``') + '`';
  const literal = (v: unknown) => (typeof v === 'number' || /^-?\d+$/.test(String(v)) ? String(v) : `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  const settings = Object.entries(queryUserProfile(opts.limits)).map(([k, v]) => `${k} = ${literal(v)}`);
  return [
    `CREATE USER IF NOT EXISTS ${ident(opts.user)} IDENTIFIED WITH sha256_password BY ${literal(opts.password)} SETTINGS ${settings.join(', ')}`,
    `GRANT SELECT ON ${ident(opts.database)}.* TO ${ident(opts.user)}`,
  ];
}

/** The query user's settings profile: the user query settings, then readonly = 1. */
export function queryUserProfile(limits: QueryLimits): Record<string, string | number> {
  const profile: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(userQuerySettings(limits))) if (v !== undefined) profile[k] = typeof v === 'number' ? v : String(v);
  profile.cancel_http_readonly_queries_on_client_close = 1;
  profile.readonly = 1;
  return profile;
}
