import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { ensureDir } from '../platform/data-dir';
import type { Logger } from '../platform/logger';
import { EmbeddedEngine, maskStatement, type EngineOptions } from './engine';
import { createDatabaseSql } from './cluster';
import { DEFAULT_QUERY_LIMITS, userQuerySettings, type QueryLimits } from './query-limits';

/**
 * The warehouse: one ClickHouse engine, reached through @clickhouse/client either in a process of its own
 * started with the platform (chDB, the default: engine.ts) or over HTTP (CLICKHOUSE_URL). Same SQL either way.
 */
export interface Warehouse {
  readonly mode: 'embedded' | 'remote';
  readonly database: string;
  /** CLICKHOUSE_CLUSTER: DDL runs ON CLUSTER, tables are Replicated*MergeTree (warehouse/cluster.ts). */
  readonly cluster?: string;
  command(sql: string, settings?: ClickHouseSettings): Promise<void>;
  queryRows<T = Record<string, unknown>>(
    sql: string,
    opts?: { params?: Record<string, unknown>; settings?: ClickHouseSettings },
  ): Promise<T[]>;
  /**
   * A user's query, run under the user query limits where no setting can be changed and nothing written
   * (ClickHouse `readonly = 1`): rows with ClickHouse's column metadata (the JSON format). Validate it with
   * `checkReadQuery` first. `signal` drops it while it waits for the engine (embedded) or cancels it (server).
   */
  queryReadOnly(sql: string, opts?: { params?: Record<string, unknown>; signal?: AbortSignal }): Promise<QueryResult>;
  /** ClickHouse's parse of a statement, one line of `EXPLAIN AST` each (on the read-only session). */
  explainAst(sql: string, opts?: { signal?: AbortSignal }): Promise<string[]>;
  /** Inserts bytes already in `format`, untouched by JavaScript (the hot path). */
  insertBytes(table: string, columns: string[], data: Buffer, opts?: { format?: string; settings?: ClickHouseSettings }): Promise<void>;
  /**
   * An INSERT … SELECT over bytes in `format` with columns `structure` (ClickHouse's `name Type, …`): `sql(source)`
   * builds the statement around `source`, the table function that reads them (`input(…)` on a server, a spool file
   * embedded). For deriving rows from a batch inside the engine (the change log's) without a table in between.
   */
  insertSelectBytes(sql: (source: string) => string, structure: string, data: Buffer, opts?: { format?: string }): Promise<void>;
  /**
   * One INSERT fed by a stream of row-aligned chunks in `format`: the engine parses while the source is still
   * being read, and forms its own blocks (few parts, memory bounded by the block size). Rows become visible
   * when it ends; a stream that fails midway leaves the rows before it (load into a staging table). Embedded,
   * it runs in the engine's lane for loads: the platform's other statements go on meanwhile.
   */
  insertStream(table: string, columns: string[], chunks: AsyncIterable<Buffer>, opts?: { format?: string; settings?: ClickHouseSettings }): Promise<void>;
  /**
   * Stops the table's background merges until `resume()` (idempotent): a load of many inserts then merges its
   * parts once, instead of over and over while it runs (on two cores the merges compete with the parsing).
   * Best effort: a server user may lack the SYSTEM MERGES privilege, and then merges go on.
   */
  pauseMerges(table: string): Promise<{ resume(): Promise<void> }>;
  /**
   * Whether a trivial query answers within `timeoutMs` (default: no limit), on the platform's session and on
   * the one users' queries run on.
   */
  ping(opts?: { timeoutMs?: number }): Promise<{ ok: boolean; error?: string }>;
  /** What the engine is running or has waiting (embedded), or the server's system.processes (remote). */
  running(): Promise<RunningQuery[]>;
  /** The embedded engine's process id (undefined for a server). */
  readonly enginePid?: number;
  /** Embedded: the engine is killed if it has not closed after `engineWaitMs` (default 15 s). */
  close(opts?: { engineWaitMs?: number }): Promise<void>;
}

export interface RunningQuery {
  /** Embedded: the engine session; remote: the ClickHouse user. */
  session: string;
  /** The query's text, cut at 200 characters. */
  query: string;
  age_ms: number;
  state: 'queued' | 'running';
}

export interface QueryResult {
  meta: { name: string; type: string }[];
  data: Record<string, unknown>[];
  rows: number;
}

export const quoteIdent = (name: string) => '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';

export const sqlString = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function settingsClause(settings: ClickHouseSettings | undefined): string {
  const entries = Object.entries(settings ?? {}).filter(([, v]) => v !== undefined);
  if (!entries.length) return '';
  for (const [k] of entries) if (!/^[a-z_][a-z0-9_]*$/i.test(k)) throw new Error(`invalid setting name ${k}`);
  // Numbers stay bare (a UInt64 setting arrives as a string in @clickhouse/client's types).
  return ` SETTINGS ${entries.map(([k, v]) => `${k} = ${typeof v === 'string' && !/^-?\d+$/.test(v) ? sqlString(v) : Number(v)}`).join(', ')}`;
}

class ClickHouseWarehouse implements Warehouse {
  constructor(
    readonly mode: 'embedded' | 'remote',
    readonly database: string,
    private readonly client: ClickHouseClient,
    private readonly engine?: EmbeddedEngine,
    private readonly readOnlyClient?: ClickHouseClient,
    private readonly spoolDir?: string,
    /** The user query limits and output settings; the embedded engine has them fixed on its read-only session. */
    private readonly userSettings: ClickHouseSettings = userQuerySettings(DEFAULT_QUERY_LIMITS),
    /** Embedded: the engine's lane for streaming loads, so that one never holds up the platform's short work. */
    private readonly loadClient?: ClickHouseClient,
  ) {}

  /**
   * The settings sent with each user query. None embedded (its session has them and refuses any), nor for a
   * server's query user of its own (CLICKHOUSE_QUERY_USER), whose profile holds them with readonly = 1 and
   * would refuse any that differ (queryUserSql).
   */
  private readOnlySettings(): ClickHouseSettings {
    // readonly = 1 is applied with the others, all checked against the user's profile; the query's own SETTINGS
    // are then refused. A server cancels the query when its HTTP request goes away.
    return this.engine || this.queryUserOwnsSettings ? {} : { ...this.userSettings, readonly: '1', cancel_http_readonly_queries_on_client_close: 1 };
  }

  /** Remote: users' queries run as a server user whose profile has the limits and readonly = 1. */
  queryUserOwnsSettings = false;
  cluster?: string;

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

  async queryReadOnly(sql: string, opts: { params?: Record<string, unknown>; signal?: AbortSignal } = {}): Promise<QueryResult> {
    // Embedded: chDB applies settings as session SETs, so user queries get a session of their own whose
    // limits and readonly mode can never leak into the sync path. Remote: HTTP settings are per query.
    const client = this.readOnlyClient ?? this.client;
    const rs = await client.query({
      query: sql,
      format: 'JSON',
      query_params: opts.params,
      clickhouse_settings: this.readOnlySettings(),
      abort_signal: opts.signal,
    });
    return (await rs.json<Record<string, unknown>>()) as unknown as QueryResult;
  }

  async explainAst(sql: string, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const client = this.readOnlyClient ?? this.client;
    const rs = await client.query({ query: `EXPLAIN AST ${sql}`, format: 'TabSeparatedRaw', clickhouse_settings: this.readOnlySettings(), abort_signal: opts.signal });
    // chDB answers EXPLAIN in CSV whatever the format asked: unquote such lines.
    return (await rs.text())
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => (l.startsWith('"') && l.endsWith('"') ? l.slice(1, -1).replace(/""/g, '"') : l));
  }

  async insertBytes(table: string, columns: string[], data: Buffer, opts: { format?: string; settings?: ClickHouseSettings } = {}) {
    if (data.length === 0) return;
    const format = opts.format ?? 'TabSeparated';
    if (this.engine) {
      // chDB parses data read from a file 4-5x faster than the same bytes inlined in an INSERT
      // (BENCHMARKS.md), so each batch takes a short trip through the spool dir. Settings go in the
      // statement: chDB would turn clickhouse_settings into session-wide SETs.
      await this.viaSpoolFile(data, (file) =>
        this.client.command({
          query: `INSERT INTO ${quoteIdent(this.database)}.${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM INFILE ${sqlString(file)}${settingsClause(opts.settings)} FORMAT ${format}`,
        }),
      );
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

  async insertSelectBytes(sql: (source: string) => string, structure: string, data: Buffer, opts: { format?: string } = {}) {
    if (data.length === 0) return;
    const format = opts.format ?? 'TabSeparated';
    if (this.engine) {
      await this.viaSpoolFile(data, (file) => this.client.command({ query: sql(`file(${sqlString(file)}, ${sqlString(format)}, ${sqlString(structure)})`) }));
      return;
    }
    await this.client.exec({ query: `${sql(`input(${sqlString(structure)})`)} FORMAT ${format}`, values: Readable.from([data], { objectMode: false }) }).then(async (r) => {
      // The answer's body must be read for the request to end.
      for await (const _ of r.stream) void _;
    });
  }

  /** Embedded: `data` in a file of the spool dir for the engine to read, removed once `use` is done. */
  private async viaSpoolFile(data: Buffer, use: (file: string) => Promise<unknown>): Promise<void> {
    const file = path.join(this.spoolDir!, `${crypto.randomUUID()}.tsv`);
    await fs.promises.writeFile(file, data);
    try {
      await use(file);
    } finally {
      await fs.promises.rm(file, { force: true });
    }
  }

  async insertStream(table: string, columns: string[], chunks: AsyncIterable<Buffer>, opts: { format?: string; settings?: ClickHouseSettings } = {}) {
    const format = opts.format ?? 'TabSeparated';
    // Blocks of 64k rows (TRIBUTARY_INSERT_BLOCK_ROWS): a handful of parts per million rows, and the engine's
    // memory stays near a block's worth. Parallel parsing only adds copies on two cores: the source is the pace.
    const blockRows = String(insertBlockRows());
    const settings: ClickHouseSettings = {
      max_insert_block_size: blockRows,
      min_insert_block_size_rows: blockRows,
      min_insert_block_size_bytes: '0',
      input_format_parallel_parsing: 0,
      ...opts.settings,
    };
    // Parts are merged once, after the load, rather than over and over while it runs.
    const merges = await this.pauseMerges(table);
    try {
      await this.streamInto(table, columns, chunks, format, settings);
    } finally {
      await merges.resume();
    }
  }

  async pauseMerges(table: string): Promise<{ resume(): Promise<void> }> {
    const target = `${quoteIdent(this.database)}.${quoteIdent(table)}`;
    const merges = (action: 'STOP' | 'START') => this.client.command({ query: `SYSTEM ${action} MERGES ${target}` }).then(() => true, () => false);
    let paused = await merges('STOP');
    return {
      resume: async () => {
        if (!paused) return;
        paused = false;
        await merges('START');
      },
    };
  }

  private async streamInto(table: string, columns: string[], chunks: AsyncIterable<Buffer>, format: string, settings: ClickHouseSettings) {
    if (!this.engine) {
      await this.client.insert({
        table: `${quoteIdent(this.database)}.${quoteIdent(table)}`,
        columns: columns.map(quoteIdent) as [string, ...string[]],
        values: Readable.from(chunks, { objectMode: false }),
        format: format as 'TabSeparated',
        clickhouse_settings: settings,
      });
      return;
    }
    // Embedded: the engine reads a named pipe as its INFILE while this process writes the chunks into it.
    const fifo = path.join(this.spoolDir!, `${crypto.randomUUID()}.fifo`);
    await execFileAsync('mkfifo', ['-m', '600', fifo]);
    try {
      const insert = (this.loadClient ?? this.client).command({
        query: `INSERT INTO ${quoteIdent(this.database)}.${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) FROM INFILE ${sqlString(fifo)}${settingsClause(settings)} FORMAT ${format}`,
      });
      let settled = false;
      const ended = insert.then(
        () => {
          settled = true;
        },
        (err) => {
          settled = true;
          throw err;
        },
      );
      ended.catch(() => undefined);
      const pipe = await openPipeForWriting(fifo, () => settled);
      if (!pipe) {
        await ended;
        throw new Error(`the insert into ${table} ended before reading its input`);
      }
      const failed = ended.then(() => new Promise<never>(() => undefined));
      try {
        for await (const chunk of chunks) {
          if (!pipe.write(chunk)) await Promise.race([once(pipe, 'drain'), failed]);
        }
        await Promise.race([new Promise<void>((resolve) => pipe.end(resolve)), failed]);
      } catch (err) {
        // The source failed (or the insert did): closing the pipe ends the insert, whose error, if any, is the cause.
        pipe.destroy();
        throw (await ended.then(() => undefined, (insertErr: unknown) => insertErr)) ?? err;
      }
      await ended;
    } finally {
      await fs.promises.rm(fifo, { force: true });
    }
  }

  async ping(opts: { timeoutMs?: number } = {}) {
    const lanes = [this.client, ...(this.readOnlyClient ? [this.readOnlyClient] : [])];
    const results = await Promise.all(lanes.map((client) => trivialQuery(client, opts.timeoutMs)));
    const failed = results.find((r) => !r.ok);
    return failed ?? { ok: true };
  }

  async running(): Promise<RunningQuery[]> {
    if (this.engine) return this.engine.inFlight();
    const rows = await this.queryRows<{ user: string; query: string; elapsed: number }>(
      'SELECT user, substring(query, 1, 200) AS query, elapsed FROM system.processes WHERE query_id != queryID() ORDER BY elapsed DESC',
    );
    return rows.map((r) => ({ session: r.user, query: maskStatement(r.query), age_ms: Math.round(Number(r.elapsed) * 1000), state: 'running' }));
  }

  get enginePid() {
    return this.engine?.pid;
  }

  async close(opts: { engineWaitMs?: number } = {}) {
    await this.loadClient?.close();
    await this.readOnlyClient?.close();
    await this.client.close();
    await this.engine?.close(opts.engineWaitMs);
  }
}

/** `SELECT 1`, given up after `timeoutMs` (and dropped, if it is still waiting for the engine). */
async function trivialQuery(client: ClickHouseClient, timeoutMs?: number): Promise<{ ok: boolean; error?: string }> {
  const abort = new AbortController();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(new Error(`a trivial query did not answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    await client.command({ query: 'SELECT 1', abort_signal: abort.signal });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: abort.signal.aborted ? (abort.signal.reason as Error).message : (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

const execFileAsync = promisify(execFile);

function insertBlockRows(): number {
  const v = Number(process.env.TRIBUTARY_INSERT_BLOCK_ROWS);
  return Number.isInteger(v) && v > 0 ? v : 65_536;
}

/**
 * Opens a named pipe's write end once a reader has it open (a non-blocking open fails with ENXIO until then),
 * as a socket: writes go through the event loop with backpressure, never through the thread pool the engine's
 * queries run on. Gives up (undefined) when `gaveUp()` says the reader will not come.
 */
export async function openPipeForWriting(fifo: string, gaveUp: () => boolean): Promise<net.Socket | undefined> {
  for (;;) {
    try {
      const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      const pipe = new net.Socket({ fd, readable: false, writable: true });
      pipe.on('error', () => undefined); // a reader gone away: the insert's own error says why
      return pipe;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
      if (gaveUp()) return undefined;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

export async function openWarehouse(opts: {
  url?: string;
  user: string;
  password: string;
  database: string;
  dataDir: string;
  log?: Logger;
  /** The bounds on users' queries (default DEFAULT_QUERY_LIMITS). */
  userQueryLimits?: QueryLimits;
  /** Embedded: how long to wait for another engine to release the data dir. */
  engineLockWaitMs?: number;
  /** Statements run at every engine start before any other (embedded), or once now (a server): linked file tables. */
  startupStatements?: () => Promise<string[]>;
  /** Embedded: the engine's object storage connections go through a proxy that judges each address (egress-proxy.ts). */
  egressPolicy?: EngineOptions['egressPolicy'];
  egressResolver?: EngineOptions['egressResolver'];
  egressDirect?: EngineOptions['egressDirect'];
  /** Remote: the server user users' queries run as (CLICKHOUSE_QUERY_USER; default `user`, with readonly = 1 per query). */
  queryUser?: string;
  queryPassword?: string;
  /** Remote: the ClickHouse cluster DDL runs ON (CLICKHOUSE_CLUSTER). */
  cluster?: string;
}): Promise<Warehouse> {
  const userSettings = userQuerySettings(opts.userQueryLimits ?? DEFAULT_QUERY_LIMITS);
  let wh: ClickHouseWarehouse;
  if (opts.url) {
    const client = createClient({
      url: opts.url,
      username: opts.user,
      password: opts.password,
      request_timeout: 3_600_000,
      clickhouse_settings: { date_time_input_format: 'basic' },
    });
    // Users' queries name no database: theirs is CLICKHOUSE_DATABASE (the `database` parameter of each request).
    // Tributary's own statements name it themselves, and go without one.
    const readOnly = createClient({
      url: opts.url,
      username: opts.queryUser ?? opts.user,
      password: opts.queryUser ? (opts.queryPassword ?? '') : opts.password,
      database: opts.database,
      request_timeout: 3_600_000,
    });
    wh = new ClickHouseWarehouse('remote', opts.database, client, undefined, readOnly, undefined, userSettings);
    wh.queryUserOwnsSettings = Boolean(opts.queryUser);
    wh.cluster = opts.cluster;
  } else {
    const engine = await EmbeddedEngine.start(ensureDir(path.join(opts.dataDir, 'warehouse')), {
      log: opts.log,
      readOnlySettings: userSettings,
      lockWaitMs: opts.engineLockWaitMs,
      startupStatements: opts.startupStatements,
      egressPolicy: opts.egressPolicy,
      egressResolver: opts.egressResolver,
      egressDirect: opts.egressDirect,
    });
    const client = createClient({ connection: engine.connection('main') });
    const readOnly = createClient({ connection: engine.connection('readonly') }); // the user query limits, readonly = 1, for its life
    const loads = createClient({ connection: engine.connection('load') });
    const spool = path.join(opts.dataDir, 'tmp', 'inserts');
    fs.rmSync(spool, { recursive: true, force: true }); // batches a crash left behind
    wh = new ClickHouseWarehouse('embedded', opts.database, client, engine, readOnly, ensureDir(spool), userSettings, loads);
  }
  // Here on the server this process talks to (the startup statements below may need it), then on the cluster.
  if (opts.database !== 'default') await wh.command(createDatabaseSql(opts.database, { cluster: undefined }));
  if (opts.url && opts.startupStatements) {
    for (const stmt of await opts.startupStatements()) await wh.command(stmt).catch((err: Error) => opts.log?.warn({ err: maskStatement(err.message) }, 'a warehouse startup statement failed'));
  }
  if (opts.database !== 'default') await wh.command(createDatabaseSql(opts.database, { cluster: opts.url ? opts.cluster : undefined }));
  return wh;
}
