import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import type { createChdbConnection } from 'chdb/connection';
import { ensureDir } from '../platform/data-dir';

/**
 * The warehouse: one ClickHouse engine, reached through @clickhouse/client either in-process
 * (chDB, the default) or over HTTP (CLICKHOUSE_URL). Same SQL either way.
 */
export interface Warehouse {
  readonly mode: 'embedded' | 'remote';
  readonly database: string;
  command(sql: string, settings?: ClickHouseSettings): Promise<void>;
  queryRows<T = Record<string, unknown>>(
    sql: string,
    opts?: { params?: Record<string, unknown>; settings?: ClickHouseSettings },
  ): Promise<T[]>;
  /**
   * A user's query, run where nothing can be written (ClickHouse `readonly = 2`): rows with
   * ClickHouse's column metadata (the JSON format). Validate it with `checkReadQuery` first.
   */
  queryReadOnly(sql: string, opts?: { params?: Record<string, unknown>; settings?: ClickHouseSettings }): Promise<QueryResult>;
  /** ClickHouse's parse of a statement, one line of `EXPLAIN AST` each (on the read-only session). */
  explainAst(sql: string): Promise<string[]>;
  /** Inserts bytes already in `format`, untouched by JavaScript (the hot path). */
  insertBytes(table: string, columns: string[], data: Buffer, opts?: { format?: string; settings?: ClickHouseSettings }): Promise<void>;
  ping(): Promise<{ ok: boolean; error?: string }>;
  close(): Promise<void>;
}

export interface QueryResult {
  meta: { name: string; type: string }[];
  data: Record<string, unknown>[];
  rows: number;
}

type ChdbConnection = ReturnType<typeof createChdbConnection>;

export const quoteIdent = (name: string) => '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

export const sqlString = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function settingsClause(settings: ClickHouseSettings | undefined): string {
  const entries = Object.entries(settings ?? {}).filter(([, v]) => v !== undefined);
  if (!entries.length) return '';
  for (const [k] of entries) if (!/^[a-z_][a-z0-9_]*$/i.test(k)) throw new Error(`invalid setting name ${k}`);
  return ` SETTINGS ${entries.map(([k, v]) => `${k} = ${typeof v === 'string' ? sqlString(v) : Number(v)}`).join(', ')}`;
}

class ClickHouseWarehouse implements Warehouse {
  constructor(
    readonly mode: 'embedded' | 'remote',
    readonly database: string,
    private readonly client: ClickHouseClient,
    private readonly chdb?: ChdbConnection,
    private readonly readOnlyClient?: ClickHouseClient,
    private readonly spoolDir?: string,
  ) {}

  async command(sql: string, settings?: ClickHouseSettings) {
    await this.client.command({ query: sql, clickhouse_settings: settings });
  }

  async queryRows<T>(sql: string, opts: { params?: Record<string, unknown>; settings?: ClickHouseSettings } = {}) {
    const rs = await this.client.query({
      query: sql,
      format: 'JSONEachRow',
      query_params: opts.params,
      clickhouse_settings: opts.settings,
    });
    return rs.json<T>();
  }

  async queryReadOnly(sql: string, opts: { params?: Record<string, unknown>; settings?: ClickHouseSettings } = {}): Promise<QueryResult> {
    // Embedded: chDB applies settings as session SETs, so user queries get a session of their own whose
    // readonly mode can never leak into the sync path. Remote: HTTP settings are per query.
    const client = this.readOnlyClient ?? this.client;
    const rs = await client.query({
      query: sql,
      format: 'JSON',
      query_params: opts.params,
      clickhouse_settings: this.readOnlyClient ? opts.settings : { ...opts.settings, readonly: '2' },
    });
    return (await rs.json<Record<string, unknown>>()) as unknown as QueryResult;
  }

  async explainAst(sql: string): Promise<string[]> {
    const client = this.readOnlyClient ?? this.client;
    const rs = await client.query({ query: `EXPLAIN AST ${sql}`, format: 'TabSeparatedRaw', clickhouse_settings: this.readOnlyClient ? {} : { readonly: '2' } });
    // chDB answers EXPLAIN in CSV whatever the format asked: unquote such lines.
    return (await rs.text())
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => (l.startsWith('"') && l.endsWith('"') ? l.slice(1, -1).replace(/""/g, '"') : l));
  }

  async insertBytes(table: string, columns: string[], data: Buffer, opts: { format?: string; settings?: ClickHouseSettings } = {}) {
    if (data.length === 0) return;
    const format = opts.format ?? 'TabSeparated';
    if (this.chdb) {
      // chDB parses data read from a file 4-5x faster than the same bytes inlined in an INSERT
      // (BENCHMARKS.md), so each batch takes a short trip through the spool dir. Settings go in the
      // statement: chDB would turn clickhouse_settings into session-wide SETs.
      const file = path.join(this.spoolDir!, `${crypto.randomUUID()}.tsv`);
      await fs.promises.writeFile(file, data);
      try {
        await this.client.command({
          query: `INSERT INTO ${quoteIdent(this.database)}.${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM INFILE ${sqlString(file)}${settingsClause(opts.settings)} FORMAT ${format}`,
        });
      } finally {
        await fs.promises.rm(file, { force: true });
      }
      return;
    }
    await this.client.insert({
      table: `${quoteIdent(this.database)}.${quoteIdent(table)}`,
      columns: columns.map(quoteIdent) as [string, ...string[]],
      values: Readable.from([data], { objectMode: false }),
      format: format as 'TabSeparated',
      clickhouse_settings: opts.settings,
    });
  }

  async ping() {
    try {
      const r = await this.client.ping();
      return r.success ? { ok: true } : { ok: false, error: String((r as { error?: unknown }).error) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  async close() {
    await this.readOnlyClient?.close();
    await this.client.close();
  }
}

export async function openWarehouse(opts: {
  url?: string;
  user: string;
  password: string;
  database: string;
  dataDir: string;
}): Promise<Warehouse> {
  let wh: ClickHouseWarehouse;
  if (opts.url) {
    const client = createClient({
      url: opts.url,
      username: opts.user,
      password: opts.password,
      request_timeout: 3_600_000,
      clickhouse_settings: { date_time_input_format: 'basic' },
    });
    wh = new ClickHouseWarehouse('remote', opts.database, client);
  } else {
    // Loaded only in embedded mode: a deployment with CLICKHOUSE_URL never needs chDB's native library.
    const { createChdbConnection: connectChdb } = await import('chdb/connection');
    const conn = connectChdb({ path: ensureDir(path.join(opts.dataDir, 'warehouse')) });
    const client = createClient({ connection: conn } as Parameters<typeof createClient>[0]);
    const readOnly = createClient({ connection: connectChdb({ path: conn.chdb.session.path }) } as Parameters<typeof createClient>[0]);
    await readOnly.command({ query: 'SET readonly = 2' }); // for the life of this session
    const spool = path.join(opts.dataDir, 'tmp', 'inserts');
    fs.rmSync(spool, { recursive: true, force: true }); // batches a crash left behind
    wh = new ClickHouseWarehouse('embedded', opts.database, client, conn, readOnly, ensureDir(spool));
  }
  if (opts.database !== 'default') await wh.command(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(opts.database)}`);
  return wh;
}
