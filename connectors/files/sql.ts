import net from 'node:net';
import { checkOutgoingUrl, type OutgoingPolicy } from '../../destinations/outgoing-network';
import { quoteIdent, sqlString } from '../../warehouse/client';
import { FILE_FORMATS, type FilesConfig, type FilesTable } from './config';
import { filesEndpointPolicy } from './endpoint';

/**
 * How the engine reads a Files table: the SQL an import's `INSERT … SELECT` or a linked table's definition
 * needs. The secret never appears in it: an S3 reader names the source's named collection (created from the
 * catalog's sealed secret, kept in the engine's encrypted named-collection storage), which holds the keys.
 */

/** The named collection that holds a Files source's keys (one per source). */
export function namedCollectionName(sourceId: string): string {
  return `tributary_files_${sourceId.replace(/[^a-zA-Z0-9]/g, '').toLowerCase()}`;
}

/** The bucket's base URL, path-style (`…/bucket/`), for the S3 providers. */
export function bucketUrl(config: Pick<FilesConfig, 'provider' | 'region' | 'account_id' | 'endpoint' | 'bucket'>): string {
  const bucket = encodeURIComponent(config.bucket ?? '');
  switch (config.provider) {
    case 'aws':
      return `https://s3.${config.region ?? 'us-east-1'}.amazonaws.com/${bucket}/`;
    case 'gcs':
      return `https://storage.googleapis.com/${bucket}/`;
    case 'r2':
      return `https://${config.account_id}.r2.cloudflarestorage.com/${bucket}/`;
    case 's3_compatible':
      return `${(config.endpoint ?? '').replace(/\/+$/, '')}/${bucket}/`;
    case 'local':
      throw new Error('a local folder has no bucket URL');
  }
}

/**
 * The host the embedded engine may connect to itself instead of through the egress proxy, or undefined: one whose
 * address no user can move after the link-time check. A provider preset's storage host (AWS `s3.<region>.amazonaws.com`,
 * GCS `storage.googleapis.com`, R2 `<account>.r2.cloudflarestorage.com`: their names, and their subdomains, are the
 * provider's DNS; never all of amazonaws.com, under which an EC2 host's name resolves to a private address in a VPC),
 * and a custom endpoint's IPv4 literal that the policy allows now (nothing to resolve, so nothing to rebind; judged
 * again here, in case the switches changed since the link). A custom host name, an IPv6 literal and a local folder:
 * undefined (a name goes through the proxy; the engine follows no redirect, engine-process.ts).
 */
export function directHost(config: Pick<FilesConfig, 'provider' | 'region' | 'account_id' | 'endpoint' | 'bucket'>, policy: OutgoingPolicy = filesEndpointPolicy()): string | undefined {
  if (config.provider === 'local') return undefined;
  let host: string;
  try {
    host = new URL(bucketUrl(config)).hostname;
  } catch {
    return undefined;
  }
  if (config.provider !== 's3_compatible') return host;
  return net.isIPv4(host) && !checkOutgoingUrl(config.endpoint ?? '', policy) ? host : undefined;
}

/** A key or glob as a URL path: each character percent-encoded except `/` and the glob syntax the engine reads. */
export function encodeKeyPattern(pattern: string): string {
  return pattern
    .replace(/^\/+/, '')
    .split('')
    .map((c) => (/[A-Za-z0-9\-._~/*?{},=]/.test(c) ? c : encodeURIComponent(c)))
    .join('');
}

/** The engine's format name for a table. */
export const engineFormat = (table: Pick<FilesTable, 'format'>) => FILE_FORMATS[table.format];

/** Settings the table's format needs (CSV delimiter), for a SETTINGS clause. */
export function formatSettings(table: Pick<FilesTable, 'format' | 'delimiter'>): Record<string, string> {
  const s: Record<string, string> = {};
  if ((table.format === 'csv' || table.format === 'csv_with_header') && table.delimiter) s.format_csv_delimiter = table.delimiter;
  return s;
}

export function settingsClause(settings: Record<string, string | number>): string {
  const entries = Object.entries(settings);
  return entries.length ? ` SETTINGS ${entries.map(([k, v]) => `${k} = ${typeof v === 'number' ? v : sqlString(v)}`).join(', ')}` : '';
}

export interface ReaderOptions {
  /** The source's named collection (namedCollectionName). */
  collection: string;
  /** `name Type, …`; omitted: the engine infers it from the files. */
  structure?: string;
  /** Local provider: the absolute path of the confined folder (TRIBUTARY_FILES_ROOT joined with the table's path, checked). */
  localPath?: string;
  /** The engine format to read with instead of the table's: `One` lists the files (a row each) without reading them. */
  engineFormat?: string;
}

/**
 * The table function that reads one table's files:
 * `s3(collection, url = '…', format = '…', compression_method = '…'[, structure = '…'])`, or
 * `file('/abs/glob', 'Format'[, 'structure'][, 'compression'])` for a local folder. Virtual columns `_path`, `_file`,
 * `_size`, `_time` (and `_etag` for S3) are selectable. Pair with `formatSettings(table)` in the query's SETTINGS.
 */
export function readerExpression(config: FilesConfig, table: FilesTable, opts: ReaderOptions): string {
  const compression = table.compression === 'auto' ? 'auto' : table.compression;
  if (config.provider === 'local') {
    if (!opts.localPath) throw new Error('a local table needs its checked absolute path');
    const args = [sqlString(opts.localPath), sqlString(opts.engineFormat ?? engineFormat(table)), sqlString(opts.structure ?? 'auto'), sqlString(compression)];
    return `file(${args.join(', ')})`;
  }
  const args = [
    quoteIdent(opts.collection),
    `url = ${sqlString(bucketUrl(config) + encodeKeyPattern(table.path))}`,
    `format = ${sqlString(opts.engineFormat ?? engineFormat(table))}`,
    `compression_method = ${sqlString(compression)}`,
  ];
  if (opts.structure) args.push(`structure = ${sqlString(opts.structure)}`);
  return `s3(${args.join(', ')})`;
}

/**
 * The engine's database for a tenant's linked tables: Memory, so nothing of them is on disk and an engine start never
 * waits on a bucket. One per warehouse database (CLICKHOUSE_DATABASE), so tenants sharing a server share no
 * database, and a tenant's query user can be granted this one alone.
 */
export const linkedDatabase = (database: string) => `_tributary_linked_${database}`;

/** The linked table behind a schema (by id: a prefix change renames only the view users query). */
export const linkedTableName = (schemaId: string) => `s_${schemaId.replace(/[^a-zA-Z0-9]/g, '')}`;

/**
 * The statements that make a source's named collection hold its keys; their text holds the secret (masked wherever
 * shown). ALTER, not DROP and CREATE: a collection its tables use cannot be dropped.
 */
export function collectionDdl(name: string, keys: { access_key_id: string; secret_access_key: string }): string[] {
  const values = `access_key_id = ${sqlString(keys.access_key_id)}, secret_access_key = ${sqlString(keys.secret_access_key)}`;
  return [`CREATE NAMED COLLECTION IF NOT EXISTS ${quoteIdent(name)} AS ${values}`, `ALTER NAMED COLLECTION ${quoteIdent(name)} SET ${values}`];
}

export interface LinkedColumn {
  name: string;
  type: string;
}

/** The table engine clause reading one table's files: S3(collection, …) or File(format, '/abs/glob'). */
export function linkedEngine(config: FilesConfig, table: FilesTable, opts: { collection: string; localPath?: string }): string {
  const settings = settingsClause(formatSettings(table));
  if (config.provider === 'local') {
    if (!opts.localPath) throw new Error('a local table needs its checked absolute path');
    const compression = table.compression === 'auto' ? '' : `, ${sqlString(table.compression)}`;
    return `File(${engineFormat(table)}, ${sqlString(opts.localPath)}${compression})${settings}`;
  }
  const args = [
    quoteIdent(opts.collection),
    `url = ${sqlString(bucketUrl(config) + encodeKeyPattern(table.path))}`,
    `format = ${sqlString(engineFormat(table))}`,
    `compression_method = ${sqlString(table.compression)}`,
  ];
  return `S3(${args.join(', ')})${settings}`;
}

/*
 * The one warehouse DDL built outside warehouse/cluster.ts (test/cluster-ddl.test.ts names this exception), and
 * never ON CLUSTER: linked tables belong to the engine process that made them. Their database is Memory (gone at
 * the server's restart) and is re-created by each Tributary process's startup statements on the server it talks
 * to, with the storage credentials' named collection; a local source's File engine reads that machine's disk.
 * ON CLUSTER would put tables on replicas no process re-creates after their restart (nor holds the collection
 * for), and a view there would point at a table that may not exist. On a cluster a linked table is queried
 * through the server the Tributary process uses.
 */

/** The engine's database for linked tables (see above: local to the server, never ON CLUSTER). */
export const linkedDatabaseDdl = (database: string) => `CREATE DATABASE IF NOT EXISTS ${quoteIdent(linkedDatabase(database))} ENGINE = Memory`;

/**
 * The linked table and the view `{prefix}_{name}` users query, in this order. `replace` (link, PATCH, refresh)
 * re-creates the table with the catalog's columns; `ensure` (a process's startup) only creates what is missing,
 * because on a shared server the api and every worker run their startup statements at once, and one's DROP
 * between another's CREATE TABLE and CREATE VIEW failed that view (UNKNOWN_TABLE, seen in the scaled e2e).
 */
export function linkedTableDdl(database: string, view: string, schemaId: string, columns: LinkedColumn[], engine: string, mode: 'replace' | 'ensure' = 'replace'): string[] {
  const inner = `${quoteIdent(linkedDatabase(database))}.${quoteIdent(linkedTableName(schemaId))}`;
  const create = `${inner} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')}) ENGINE = ${engine}`;
  return [
    linkedDatabaseDdl(database),
    // A Memory database cannot rename, so no CREATE OR REPLACE: the view is re-pointed right after.
    ...(mode === 'replace' ? [`DROP TABLE IF EXISTS ${inner}`, `CREATE TABLE ${create}`] : [`CREATE TABLE IF NOT EXISTS ${create}`]),
    `CREATE OR REPLACE VIEW ${quoteIdent(database)}.${quoteIdent(view)} AS SELECT * FROM ${inner}`,
  ];
}

export function unlinkDdl(database: string, view: string, schemaId: string): string[] {
  return [
    `DROP VIEW IF EXISTS ${quoteIdent(database)}.${quoteIdent(view)}`,
    `DROP TABLE IF EXISTS ${quoteIdent(linkedDatabase(database))}.${quoteIdent(linkedTableName(schemaId))}`,
  ];
}

/**
 * Bounds on a probe of storage (db-schema, refresh): one retry and short connect/request timeouts, because the
 * engine's defaults retry an unreachable endpoint for minutes.
 */
export const PROBE_SETTINGS: Record<string, number> = {
  s3_retry_attempts: 1,
  s3_connect_timeout_ms: 3000,
  s3_request_timeout_ms: 10000,
  max_execution_time: 60,
};
