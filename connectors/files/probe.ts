import crypto from 'node:crypto';
import type { Warehouse } from '../../warehouse/client';
import { SourceError, type DiscoveredTable } from '../types';
import type { FilesConfig, FilesTable } from './config';
import { checkConfined, confinedPattern, filesRoot } from './local';
import { PROBE_SETTINGS, bucketUrl, collectionDdl, formatSettings, readerExpression, settingsClause, type LinkedColumn } from './sql';

/**
 * db-schema for Files: each table's pattern listed (count, size, a few paths) and its columns inferred by the
 * engine itself (DESCRIBE over the files), through a throwaway named collection that holds the keys.
 */

const SAMPLE = 5;
/** Files tried one by one to name the one that does not parse. */
const BLAME_TRIES = 20;

export interface ProbedTable {
  table: FilesTable;
  files: { count: number; bytes: number; sample: string[] };
  columns: LinkedColumn[];
}

/** Runs `fn` with a named collection holding the source's keys (none for a local folder), dropped after. */
export async function withProbeCollection<T>(wh: Warehouse, config: FilesConfig, fn: (collection: string) => Promise<T>): Promise<T> {
  if (config.provider === 'local') return fn('');
  const name = `tributary_files_probe_${crypto.randomBytes(6).toString('hex')}`;
  for (const stmt of collectionDdl(name, { access_key_id: config.access_key_id!, secret_access_key: config.secret_access_key! })) await wh.command(stmt);
  try {
    return await fn(name);
  } finally {
    await wh.command(`DROP NAMED COLLECTION IF EXISTS ${name}`).catch(() => undefined);
  }
}

/** The engine's words about storage, as what the user must fix. */
export function storageError(err: unknown, config: FilesConfig, at: string, what: string): SourceError {
  const msg = ((err as Error).message ?? String(err)).trim();
  const code = /S3 exception: `(\w+)`/.exec(msg)?.[1];
  const where = config.provider === 'local' ? 'the files root' : `bucket "${config.bucket}"`;
  // The egress proxy's refusal (warehouse/egress-proxy.ts) comes as an S3 AccessDenied: it is the address, not the key.
  const refused = /Tributary refused the connection: ([^'\n]*)/.exec(msg)?.[1];
  if (refused) return new SourceError(`cannot connect to ${safeBase(config)}: ${refused.replace(/\.$/, '')}`, config.provider === 's3_compatible' ? 'endpoint' : 'provider');
  if (code && /SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|InvalidToken|Forbidden/.test(code)) {
    return new SourceError(`access denied by ${where} (${code}): check access_key_id and secret_access_key`, 'secret_access_key');
  }
  // With the egress proxy on, the engine follows no S3 redirect (warehouse/engine-process.ts says why).
  if (/Too many redirects/.test(msg)) {
    const field = config.provider === 's3_compatible' ? 'endpoint' : config.provider === 'aws' ? 'region' : 'provider';
    return new SourceError(`${safeBase(config)} answered with a redirect, which is not followed: set ${field} to where it redirects`, field);
  }
  if (code === 'NoSuchBucket') return new SourceError(`no such bucket "${config.bucket}" at ${safeBase(config)}`, 'bucket');
  if (/Connection refused|Timeout|timed out|Could not resolve|Host not found|Poco::Exception|No route to host|Network is unreachable/i.test(msg)) {
    return new SourceError(`cannot reach ${safeBase(config)}: ${firstSentence(msg)}`, config.provider === 's3_compatible' ? 'endpoint' : 'provider');
  }
  return new SourceError(`${what}: ${firstSentence(msg)}`, at);
}

const safeBase = (config: FilesConfig) => (config.provider === 'local' ? 'the files root' : bucketUrl(config).replace(/\/[^/]*\/$/, ''));
/** The engine repeats a generic "cannot extract the structure" after the real cause: keep the cause. */
const firstSentence = (msg: string) => msg.split(/: The table structure cannot be extracted/)[0].replace(/\s+/g, ' ').slice(0, 600);

function localGlob(config: FilesConfig, table: FilesTable, field: string): string | undefined {
  return config.provider === 'local' ? confinedPattern(filesRoot(), table.path, field) : undefined;
}

/** A listing reader: the files only, no parsing (format One reads nothing of them). */
function listing(config: FilesConfig, table: FilesTable, collection: string, localPath?: string): string {
  return readerExpression(config, { ...table, format: 'csv', compression: 'none' }, { collection, localPath }).replace(/'CSV'/, "'One'");
}

export async function probeTable(wh: Warehouse, config: FilesConfig, table: FilesTable, index: number, collection: string): Promise<ProbedTable> {
  const at = `tables.${index}.path`;
  const localPath = localGlob(config, table, at);
  const list = listing(config, table, collection, localPath);
  const probe = settingsClause(PROBE_SETTINGS);
  let files: { count: number; bytes: number; sample: string[] };
  try {
    const [row] = await wh.queryRows<{ count: string; bytes: string; sample: string[] }>(
      `SELECT count() AS count, sum(_size) AS bytes, groupArray(${BLAME_TRIES})(_path) AS sample FROM ${list}${probe}`,
    );
    files = { count: Number(row.count), bytes: Number(row.bytes), sample: row.sample };
  } catch (err) {
    throw storageError(err, config, at, `table "${table.name}": cannot list "${table.path}"`);
  }
  if (files.count === 0) throw new SourceError(`table "${table.name}": no file matches "${table.path}" in ${config.provider === 'local' ? 'the files root' : `bucket "${config.bucket}"`}`, at);
  if (localPath) {
    const all = await wh.queryRows<{ p: string }>(`SELECT _path AS p FROM ${list}${probe}`);
    checkConfined(filesRoot(), all.map((r) => r.p), at);
  }
  const reader = readerExpression(config, table, { collection, localPath });
  const settings = settingsClause({ ...PROBE_SETTINGS, ...formatSettings(table) });
  try {
    const described = await wh.queryRows<{ name: string; type: string }>(`DESCRIBE ${reader}${settings}`);
    // A sample read: a file whose first rows do not parse fails here rather than at the first query.
    await wh.queryRows(`SELECT * FROM ${reader} LIMIT 100${settings}`);
    return { table, files: { ...files, sample: files.sample.slice(0, SAMPLE) }, columns: described.map((c) => ({ name: c.name, type: c.type })) };
  } catch (err) {
    const access = storageError(err, config, at, '');
    if (access.field !== at) throw access;
    throw await blame(wh, config, table, collection, files.sample, err, at, settings);
  }
}

/** The first of the matched files that fails alone, named with the engine's own words about it. */
async function blame(wh: Warehouse, config: FilesConfig, table: FilesTable, collection: string, paths: string[], original: unknown, at: string, settings: string): Promise<SourceError> {
  for (const p of paths.slice(0, BLAME_TRIES)) {
    const one = { ...table, path: config.provider === 'local' ? p : p.replace(/^[^/]+\//, '') };
    const reader = readerExpression(config, one, { collection, localPath: config.provider === 'local' ? p.replace(/([*?{}])/g, '\\$1') : undefined });
    try {
      await wh.queryRows(`SELECT * FROM ${reader} LIMIT 100${settings}`);
    } catch (err) {
      return new SourceError(`table "${table.name}": file "${displayPath(config, p)}" does not parse as ${table.format}: ${firstSentence((err as Error).message)}`, at);
    }
  }
  return new SourceError(`table "${table.name}": the files do not parse as ${table.format}: ${firstSentence((original as Error).message)}`, at);
}

const displayPath = (config: FilesConfig, p: string) => (config.provider === 'local' ? p.replace(filesRoot() + '/', '') : p);

export async function probeTables(wh: Warehouse, config: FilesConfig, only?: string[]): Promise<ProbedTable[]> {
  return withProbeCollection(wh, config, async (collection) => {
    const out: ProbedTable[] = [];
    for (const [i, t] of config.tables.entries()) if (!only || only.includes(t.name)) out.push(await probeTable(wh, config, t, i, collection));
    return out;
  });
}

export function toDiscovered(p: ProbedTable): DiscoveredTable {
  const mb = (p.files.bytes / 1048576).toFixed(1);
  return {
    table: p.table.name,
    should_sync: false,
    rows: null,
    incremental_available: false,
    // Imported by new files (and rewritten ones): no cursor column (activities/files-import.ts).
    append_available: true,
    cdc_available: null,
    supports_webhooks: false,
    incremental_fields: [],
    detected_primary_keys: [],
    available_columns: p.columns.map((c) => ({ field: c.name, type: c.type, nullable: /^Nullable\(/.test(c.type) })),
    description: `${p.files.count} file${p.files.count === 1 ? '' : 's'} (${mb} MiB) match ${p.table.path}`,
    linked_available: true,
    files: p.files,
  };
}

