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
  /** A query's rows with ClickHouse's column metadata (the JSON format). */
  queryJson(sql: string, settings?: ClickHouseSettings): Promise<{ meta: { name: string; type: string }[]; data: Record<string, unknown>[]; rows: number }>;
  /** Inserts bytes already in `format`, untouched by JavaScript (the hot path). */
  insertBytes(table: string, columns: string[], data: Buffer, opts?: { format?: string; settings?: ClickHouseSettings }): Promise<void>;
  ping(): Promise<{ ok: boolean; error?: string }>;
  close(): Promise<void>;
}

type ChdbConnection = ReturnType<typeof createChdbConnection>;

export const quoteIdent = (name: string) => '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

class ClickHouseWarehouse implements Warehouse {
  constructor(
    readonly mode: 'embedded' | 'remote',
    readonly database: string,
    private readonly client: ClickHouseClient,
    private readonly chdb?: ChdbConnection,
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

  async queryJson(sql: string, settings?: ClickHouseSettings) {
    const rs = await this.client.query({ query: sql, format: 'JSON', clickhouse_settings: settings });
    return rs.json<Record<string, unknown>>() as Promise<{ meta: { name: string; type: string }[]; data: Record<string, unknown>[]; rows: number }>;
  }

  async insertBytes(table: string, columns: string[], data: Buffer, opts: { format?: string; settings?: ClickHouseSettings } = {}) {
    if (data.length === 0) return;
    const format = opts.format ?? 'TabSeparated';
    if (this.chdb) {
      // chDB's raw insert hands the Buffer to the engine without copying it into a JS string.
      // It takes plain identifiers only, which is what warehouse names are (see warehouseColumnNames).
      await this.chdb.chdb.rawInsert({
        table: `${this.database}.${table}`,
        columns,
        values: data,
        format: format as 'TabSeparated',
        settings: opts.settings as Record<string, string | number | boolean> | undefined,
      });
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
    wh = new ClickHouseWarehouse('embedded', opts.database, client, conn);
  }
  if (opts.database !== 'default') await wh.command(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(opts.database)}`);
  return wh;
}
