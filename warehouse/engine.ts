import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseError, type ClickHouseClientConfigOptions, type ClickHouseSettings } from '@clickhouse/client';
import type { Logger } from '../platform/logger';
import { engineThreadPoolSize, laneSizes } from './engine-lanes';
import { NAMED_COLLECTIONS_KEY_ENV, type EngineAnswer, type EngineReply, type EngineRequest } from './engine-protocol';
import type { AddressResolver, OutgoingPolicy } from '../destinations/outgoing-network';
import { startEgressProxy, type EgressProxy } from './egress-proxy';

type Connection = NonNullable<ClickHouseClientConfigOptions['connection']>;
type Session = EngineRequest['session'];

const ENTRY = path.join(__dirname, 'engine-process.ts');
const CLOSE_WAIT_MS = 15_000;
/** Marks a read-only statement in a leading comment, for KILL QUERY to find it when its caller goes away. */
const CANCEL_TAG = 'tributary-cancel:';
/** How much of a query's text inFlight() shows. */
const QUERY_TEXT_MAX = 200;

export interface EngineOptions {
  log?: Logger;
  /** Settings of the read-only session users' queries run on (fixed for its life: readonly = 1 after them). */
  readOnlySettings?: ClickHouseSettings;
  /** How long to wait for another process's engine to release the data dir (default 30 s). */
  lockWaitMs?: number;
  /**
   * Read-only requests the engine is given at once; the rest wait here, where a caller that goes away (a closed
   * HTTP request) can drop one before it runs. chDB runs one query at a time per session, so this is the
   * number of read-only sessions the engine's lane for them may open (default: engine-lanes.ts laneSizes()).
   */
  readOnlyLanes?: number;
  /**
   * Statements run on every engine start (the first, and one after a crash) before any other request: what
   * lives only as long as the engine (linked file tables and the named collections with their keys).
   */
  startupStatements?: () => Promise<string[]>;
  /**
   * Where the engine may connect to object storage (the files sources' switches): its S3 requests then all go
   * through a proxy of the platform's that judges each connection's address (egress-proxy.ts). Unset: the
   * engine connects itself.
   */
  egressPolicy?: OutgoingPolicy;
  /** Tests: how the proxy resolves names (default: the system's). */
  egressResolver?: AddressResolver;
  /**
   * With egressPolicy: the hosts the engine connects to itself, not through the proxy (its `<no_proxy>`,
   * engine-process.ts), asked at every engine start. One that fails: every host is proxied.
   */
  egressDirect?: () => Promise<string[]>;
}

/** Secrets in statements (CREATE/ALTER NAMED COLLECTION … AS key = 'value'): never shown in /health or logs. */
export function maskStatement(sql: string): string {
  return sql.replace(/((?:CREATE|ALTER)\s+NAMED\s+COLLECTION\b[\s\S]*?\b(?:AS|SET)\b)[\s\S]*/gi, '$1 [HIDDEN]');
}

/** A request the engine has, or that waits for it: what /health shows when the engine is slow to answer. */
export interface InFlightRequest {
  session: Session;
  /** The query's text and its parameters, cut at 200 characters. */
  query: string;
  /** Since it was asked for. */
  age_ms: number;
  /** `queued`: waiting here for a read-only lane; `running`: the engine has it. */
  state: 'queued' | 'running';
}

interface Pending {
  req: EngineRequest;
  /** The statement as its caller wrote it (without the cancellation tag). */
  shown?: string;
  since: number;
  state: InFlightRequest['state'];
  resolve: (r: EngineAnswer) => void;
  reject: (e: Error) => void;
}

/**
 * The embedded warehouse engine (chDB) in a process of its own, and @clickhouse/client connections to it:
 * the platform talks to it through the same client, with the same SQL, as to a ClickHouse server. Started
 * with the platform, ended with it (also when the platform is killed: engine-process.ts); an engine that dies
 * on its own (a crash of the native library) fails the requests in flight and is started again by the next one.
 */
export class EmbeddedEngine {
  private child?: ChildProcess;
  private starting?: Promise<ChildProcess>;
  /** Every request not yet answered, by id: sent to the engine (`running`) or waiting for a read-only lane. */
  private readonly pending = new Map<number, Pending>();
  private readonly readOnlyQueue: number[] = [];
  private readOnlyRunning = 0;
  private nextId = 1;
  private closed = false;
  /** The proxy the engine's object storage requests go through (egressPolicy); it outlives engine restarts. */
  private egress?: EgressProxy;

  private constructor(
    private readonly dataPath: string,
    private readonly opts: EngineOptions,
  ) {}

  static async start(dataPath: string, opts: EngineOptions = {}): Promise<EmbeddedEngine> {
    const engine = new EmbeddedEngine(dataPath, opts);
    if (opts.egressPolicy) engine.egress = await startEgressProxy(opts.egressPolicy, { log: opts.log, resolve: opts.egressResolver });
    try {
      await engine.process();
    } catch (err) {
      await engine.egress?.close();
      throw err;
    }
    return engine;
  }

  private get log() {
    return this.opts.log;
  }

  /** The engine's process id (the benchmark samples its memory). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private process(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new Error('the warehouse engine is closed'));
    if (this.child) return Promise.resolve(this.child);
    this.starting ??= this.spawn().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async spawn(): Promise<ChildProcess> {
    const egressDirect =
      this.egress && this.opts.egressDirect
        ? await this.opts.egressDirect().catch((err: Error) => {
            this.log?.warn({ err: err.message }, 'the hosts the engine may connect to directly could not be listed: all go through the egress proxy');
            return [];
          })
        : undefined;
    // The engine runs under tsx like the platform (inherited; added when the caller runs TypeScript otherwise, as
    // jest does). A process group of its own: Ctrl-C in a terminal reaches the platform, which drains its worker
    // before it closes the engine.
    const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
    // chDB runs each query on a libuv pool thread for as long as it takes, and a streaming load (an INSERT fed
    // through a pipe) as long as its source: a thread for every session the engine's lanes may open.
    // A fresh key for the named collections at each start: they are re-created from the catalog (engine-process.ts).
    const env = {
      ...process.env,
      UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(engineThreadPoolSize()),
      [NAMED_COLLECTIONS_KEY_ENV]: randomBytes(16).toString('hex'),
    };
    const startup = JSON.stringify({ readOnlySettings: this.opts.readOnlySettings ?? {}, lockWaitMs: this.opts.lockWaitMs, egressProxy: this.egress?.uri, egressDirect });
    // stderr passes through here: chDB prints why it could not open the data dir there, not in its error.
    const child = fork(ENTRY, [this.dataPath, startup], { execArgv, env, serialization: 'advanced', stdio: ['ignore', 'inherit', 'pipe', 'ipc'], detached: true });
    let stderrTail = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      if (!this.child) stderrTail = (stderrTail + chunk.toString()).slice(-8192);
    });
    return new Promise((resolve, reject) => {
      const early = (code: number | null, signal: NodeJS.Signals | null) => reject(new Error(`the warehouse engine exited while starting (${signal ?? `code ${code}`})${engineSaid(stderrTail)}`));
      child.once('exit', early);
      child.on('message', (msg: EngineReply) => {
        if ('type' in msg) {
          child.off('exit', early);
          if (msg.type === 'failed') {
            // It exits on its own; one whose native teardown hangs is killed: the failure is told once it is gone.
            const reaper = setTimeout(() => child.kill('SIGKILL'), 5_000);
            const failure = new Error(`the warehouse engine could not open ${this.dataPath}: ${msg.message}${engineSaid(stderrTail)}`);
            const gone = () => {
              clearTimeout(reaper);
              reject(failure);
            };
            if (child.exitCode !== null || child.signalCode !== null) gone();
            else child.once('exit', gone);
            return;
          }
          stderrTail = '';
          child.once('exit', (code, signal) => this.lost(child, code, signal));
          this.log?.info({ pid: child.pid, dir: this.dataPath }, 'warehouse engine (chDB) started');
          void this.startup(child).then(
            () => {
              if (child.exitCode !== null || child.signalCode !== null) return reject(new Error('the warehouse engine stopped while starting'));
              this.child = child;
              resolve(child);
            },
            (err: Error) => {
              child.kill('SIGKILL');
              reject(new Error(`the warehouse engine's startup statements failed: ${err.message}`));
            },
          );
          return;
        }
        const waiting = this.pending.get(msg.id);
        if (!waiting) return;
        this.settle(msg.id);
        if (msg.ok) waiting.resolve(msg);
        else waiting.reject(msg.code ? new ClickHouseError({ message: msg.message, code: msg.code, type: msg.errorType }) : new Error(msg.message));
      });
    });
  }

  /** Runs the startup statements on a started engine, before it takes any other request. */
  private async startup(child: ChildProcess): Promise<void> {
    for (const query of (await this.opts.startupStatements?.()) ?? []) {
      const id = this.nextId++;
      const req: EngineRequest = { id, session: 'main', op: 'command', query };
      // One that fails (a linked table the engine refuses) is logged: the rest of the warehouse still opens.
      await new Promise<EngineAnswer>((resolve, reject) => {
        this.pending.set(id, { req, shown: query, since: Date.now(), state: 'running', resolve, reject });
        child.send(req);
      }).catch((err: Error) => this.log?.warn({ statement: maskStatement(query).slice(0, QUERY_TEXT_MAX), err: maskStatement(err.message) }, 'an engine startup statement failed'));
    }
  }

  private lost(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.child === child) this.child = undefined;
    const err = new Error(`the warehouse engine (chDB, pid ${child.pid}) stopped (${signal ?? `code ${code}`}) before answering`);
    const running = [...this.pending].filter(([, p]) => p.state === 'running');
    if (!this.closed) this.log?.error({ pid: child.pid, code, signal, inFlight: running.length }, 'the warehouse engine stopped; the next query starts it again');
    for (const [id, waiting] of running) {
      this.settle(id);
      waiting.reject(err);
    }
  }

  /** Forgets an answered (or abandoned) request, and gives its read-only lane to the next in the queue. */
  private settle(id: number) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.req.session === 'readonly' && p.state === 'running') {
      this.readOnlyRunning--;
      this.dispatchReadOnly();
    }
  }

  private dispatchReadOnly() {
    while (this.readOnlyQueue.length && this.readOnlyRunning < (this.opts.readOnlyLanes ?? laneSizes().readonly)) {
      const id = this.readOnlyQueue.shift()!;
      const p = this.pending.get(id);
      if (p) void this.send(id, p);
    }
  }

  private async send(id: number, p: Pending) {
    p.state = 'running';
    if (p.req.session === 'readonly') this.readOnlyRunning++;
    let child: ChildProcess;
    try {
      child = await this.process();
    } catch (err) {
      this.settle(id);
      p.reject(err as Error);
      return;
    }
    child.send(p.req, (err) => {
      if (err && this.pending.has(id)) {
        this.settle(id);
        p.reject(err);
      }
    });
  }

  /**
   * Sends a request to the engine. Read-only ones wait here for a lane; `signal` drops one that is still waiting,
   * and cancels one the engine already runs: chDB honours KILL QUERY sent from another session (it does not
   * honour a query id of ours, so the statement carries a tag in a leading comment that KILL QUERY finds). Its
   * caller is answered at once; the lane is free once the engine has stopped the statement.
   */
  async request(req: Omit<EngineRequest, 'id'>, signal?: AbortSignal): Promise<EngineAnswer> {
    if (this.closed) throw new Error('the warehouse engine is closed');
    signal?.throwIfAborted();
    const id = this.nextId++;
    const tag = req.session === 'readonly' && req.query ? randomUUID() : undefined;
    const sent = tag ? { ...req, id, query: `/* ${CANCEL_TAG}${tag} */ ${req.query}` } : { ...req, id };
    return new Promise((resolve, reject) => {
      const p: Pending = { req: sent, shown: req.query, since: Date.now(), state: 'queued', resolve, reject };
      this.pending.set(id, p);
      signal?.addEventListener(
        'abort',
        () => {
          if (!this.pending.has(id)) return;
          if (p.state === 'queued') {
            this.pending.delete(id);
            this.readOnlyQueue.splice(this.readOnlyQueue.indexOf(id), 1);
          } else if (tag) {
            // ASYNC: chDB 3.4 never answers KILL QUERY … SYNC. The statement ends with "Query was cancelled".
            const kill = `KILL QUERY WHERE query LIKE '%${CANCEL_TAG}${tag} */%' AND query NOT LIKE '%KILL QUERY%' ASYNC`;
            this.request({ session: 'main', op: 'command', query: kill }).catch((err: Error) =>
              this.log?.warn({ err: err.message }, 'could not cancel a user query whose caller went away'),
            );
          }
          reject(signal.reason instanceof Error ? signal.reason : new Error('the query was aborted'));
        },
        { once: true },
      );
      if (req.session === 'readonly') {
        this.readOnlyQueue.push(id);
        this.dispatchReadOnly();
      } else {
        void this.send(id, p);
      }
    });
  }

  /** The requests the engine has or that wait for it, oldest first. */
  inFlight(): InFlightRequest[] {
    const now = Date.now();
    return [...this.pending.values()].map((p) => ({
      session: p.req.session,
      // With its parameters: a user's SQL reaches the engine as one while it is checked (read-query.ts).
      query: [maskStatement(p.shown ?? (p.req.op === 'ping' ? 'SELECT 1' : '')), p.req.query_params ? JSON.stringify(p.req.query_params) : ''].join(' ').trim().slice(0, QUERY_TEXT_MAX),
      age_ms: now - p.since,
      state: p.state,
    }));
  }

  /** A @clickhouse/client connection to one of the engine's sessions. */
  connection(session: Session): Connection {
    const base = (query_id?: string) => ({ query_id: query_id ?? randomUUID(), response_headers: {}, http_status_code: 200 });
    const fields = (p: { query: string; query_id?: string; clickhouse_settings?: EngineRequest['clickhouse_settings']; query_params?: Record<string, unknown> }) => ({
      session,
      query: p.query,
      query_id: p.query_id,
      clickhouse_settings: p.clickhouse_settings,
      query_params: p.query_params,
    });
    const connection: Connection = {
      ping: async (p?: { abort_signal?: AbortSignal }) => {
        try {
          await this.request({ session, op: 'ping' }, p?.abort_signal);
          return { success: true };
        } catch (err) {
          return { success: false, error: err as Error };
        }
      },
      query: async (p) => {
        const reply = await this.request({ ...fields(p), op: 'query' }, p.abort_signal);
        return { ...base(p.query_id), stream: Readable.from([Buffer.from(reply.bytes ?? new Uint8Array())], { objectMode: false }) };
      },
      command: async (p) => {
        const reply = await this.request({ ...fields(p), op: 'command' }, p.abort_signal);
        return { ...base(p.query_id), summary: reply.summary };
      },
      // Embedded loads reach the engine as `INSERT … FROM INFILE` commands (warehouse/client.ts), never as bodies.
      insert: async () => {
        throw new Error('insert with a body is not used with the embedded warehouse engine');
      },
      exec: async () => {
        throw new Error('exec is not used with the embedded warehouse engine');
      },
      close: async () => undefined,
    } as Connection;
    return connection;
  }

  /**
   * Asks the engine to close its sessions, and kills it after `waitMs` (a query it is running would hold the close
   * up to its time limit): MergeTree parts are committed atomically, so a kill loses nothing committed, as a crash.
   */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new Error('the warehouse engine is closed');
    for (const id of this.readOnlyQueue.splice(0)) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      p?.reject(gone);
    }
    const child = this.child ?? (await this.starting?.catch(() => undefined));
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.egress?.close();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const timer = setTimeout(() => {
      this.log?.warn({ pid: child.pid, waitMs, inFlight: this.inFlight() }, 'the warehouse engine did not close in time: killed');
      child.kill('SIGKILL');
    }, waitMs);
    if (child.connected) child.send({ op: 'close' });
    else child.kill('SIGKILL');
    await exited;
    clearTimeout(timer);
    await this.egress?.close();
  }
}

/** The engine's own words on why it failed (chDB prints them to stderr): its last exception line. */
function engineSaid(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => /Exception|Cannot lock|error/i.test(l));
  const last = lines.at(-1)?.trim();
  return last ? `; the engine said: ${last.slice(0, 1000)}` : '';
}
