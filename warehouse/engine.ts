import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseError, type ClickHouseClientConfigOptions } from '@clickhouse/client';
import type { Logger } from '../platform/logger';
import { engineThreadPoolSize } from './engine-lanes';
import type { EngineAnswer, EngineReply, EngineRequest } from './engine-protocol';

type Connection = NonNullable<ClickHouseClientConfigOptions['connection']>;
type Session = EngineRequest['session'];

const ENTRY = path.join(__dirname, 'engine-process.ts');
const CLOSE_WAIT_MS = 15_000;

/**
 * The embedded warehouse engine (chDB) in a process of its own, and @clickhouse/client connections to it:
 * the platform talks to it through the same client, with the same SQL, as to a ClickHouse server. Started
 * with the platform, ended with it (also when the platform is killed: engine-process.ts); an engine that dies
 * on its own (a crash of the native library) fails the requests in flight and is started again by the next one.
 */
export class EmbeddedEngine {
  private child?: ChildProcess;
  private starting?: Promise<ChildProcess>;
  private readonly pending = new Map<number, { resolve: (r: EngineAnswer) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;

  private constructor(
    private readonly dataPath: string,
    private readonly log?: Logger,
  ) {}

  static async start(dataPath: string, log?: Logger): Promise<EmbeddedEngine> {
    const engine = new EmbeddedEngine(dataPath, log);
    await engine.process();
    return engine;
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

  private spawn(): Promise<ChildProcess> {
    // The engine runs under tsx like the platform (inherited; added when the caller runs TypeScript otherwise, as
    // jest does). A process group of its own: Ctrl-C in a terminal reaches the platform, which drains its worker
    // before it closes the engine.
    const execArgv = process.execArgv.some((a) => a.includes('tsx')) ? process.execArgv : [...process.execArgv, '--import', 'tsx'];
    // chDB runs each query on a libuv pool thread for as long as it takes, and a streaming load (an INSERT fed
    // through a pipe) as long as its source: a thread for every session the engine's lanes may open.
    const env = { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(engineThreadPoolSize()) };
    const child = fork(ENTRY, [this.dataPath], { execArgv, env, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    return new Promise((resolve, reject) => {
      const early = (code: number | null, signal: NodeJS.Signals | null) => reject(new Error(`the warehouse engine exited while starting (${signal ?? `code ${code}`})`));
      child.once('exit', early);
      child.on('message', (msg: EngineReply) => {
        if ('type' in msg) {
          child.off('exit', early);
          if (msg.type === 'failed') {
            reject(new Error(`the warehouse engine could not open ${this.dataPath}: ${msg.message}`));
            return;
          }
          this.child = child;
          child.once('exit', (code, signal) => this.lost(child, code, signal));
          this.log?.info({ pid: child.pid, dir: this.dataPath }, 'warehouse engine (chDB) started');
          resolve(child);
          return;
        }
        const waiting = this.pending.get(msg.id);
        if (!waiting) return;
        this.pending.delete(msg.id);
        if (msg.ok) waiting.resolve(msg);
        else waiting.reject(msg.code ? new ClickHouseError({ message: msg.message, code: msg.code, type: msg.errorType }) : new Error(msg.message));
      });
    });
  }

  private lost(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (this.child === child) this.child = undefined;
    const err = new Error(`the warehouse engine (chDB, pid ${child.pid}) stopped (${signal ?? `code ${code}`}) before answering`);
    if (!this.closed) this.log?.error({ pid: child.pid, code, signal, inFlight: this.pending.size }, 'the warehouse engine stopped; the next query starts it again');
    for (const [, waiting] of this.pending) waiting.reject(err);
    this.pending.clear();
  }

  async request(req: Omit<EngineRequest, 'id'>): Promise<EngineAnswer> {
    const child = await this.process();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.send({ ...req, id } satisfies EngineRequest, (err) => {
        if (err && this.pending.delete(id)) reject(err);
      });
    });
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
      ping: async () => {
        try {
          await this.request({ session, op: 'ping' });
          return { success: true };
        } catch (err) {
          return { success: false, error: err as Error };
        }
      },
      query: async (p) => {
        const reply = await this.request({ ...fields(p), op: 'query' });
        return { ...base(p.query_id), stream: Readable.from([Buffer.from(reply.bytes ?? new Uint8Array())], { objectMode: false }) };
      },
      command: async (p) => {
        const reply = await this.request({ ...fields(p), op: 'command' });
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.starting?.catch(() => undefined);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.send({ op: 'close' });
    const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }
}
