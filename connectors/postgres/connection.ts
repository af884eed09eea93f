import pg from 'pg';
import { SourceError } from '../types';
import type { PostgresConfig } from './config';

/**
 * Opens a session whose output ClickHouse can parse as-is: ISO dates, UTC, exact floats.
 * Connection failures surface as SourceError carrying Postgres's own message.
 */
/**
 * A session under which Postgres renders values as ClickHouse parses them — ISO dates, UTC, exact
 * floats — for batch reads and the CDC replication connection alike.
 */
export function clientConfig(config: PostgresConfig, applicationName = 'tributary'): pg.ClientConfig {
  return {
    host: config.host,
    port: config.port,
    database: config.dbname,
    user: config.user,
    password: config.password,
    ssl: config.sslmode === 'require' ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 10_000,
    application_name: applicationName,
    options: '-c DateStyle=ISO,YMD -c TimeZone=UTC -c extra_float_digits=1 -c IntervalStyle=iso_8601',
  };
}

export async function connect(config: PostgresConfig): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(config));
  client.on('error', () => undefined); // a dropped idle connection must not crash the process
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new SourceError(describeConnectError(err as Error & { code?: string }, config));
  }
  return client;
}

function describeConnectError(err: Error & { code?: string }, config: PostgresConfig): string {
  if (err.code === 'ECONNREFUSED') return `Could not connect to ${config.host}:${config.port}: connection refused`;
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `Could not resolve host "${config.host}"`;
  if (/timeout/i.test(err.message)) return `Timed out connecting to ${config.host}:${config.port}`;
  return err.message;
}

export const quotePgIdent = (name: string) => '"' + name.replace(/"/g, '""') + '"';
export const qualified = (schema: string, table: string) => `${quotePgIdent(schema)}.${quotePgIdent(table)}`;

export async function withConnection<T>(config: PostgresConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(config);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
