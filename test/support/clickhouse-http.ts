/**
 * A test-only ClickHouse server: ClickHouse's documented HTTP interface (https://clickhouse.com/docs/interfaces/http)
 * in front of the real engine, chDB, in a process of its own. No ClickHouse server new enough for Tributary's SQL
 * can be installed on the CI machine (Debian ships 18.16), so the scaled deployment's warehouse is this.
 *
 * What it does as the documentation says:
 * - `GET /ping` and `GET /` answer `Ok.\n`; any other path is 404.
 * - The query in the `query` URL parameter, in the POST body, or begun in the URL and continued in the body;
 *   an `INSERT … FORMAT f` in the URL takes the body as its data, streamed into the engine while it arrives.
 * - Every other URL parameter is a setting of that query (`database`, `default_format`, `session_id`,
 *   `session_timeout`, `session_check`, `query_id`, `param_<name>` and the HTTP-only ones are not settings).
 * - `session_id`: the session keeps its settings and `USE` between requests (one chDB session each); a second
 *   request while one runs is refused with SESSION_IS_LOCKED, an expired or unknown one with session_check=1
 *   with SESSION_NOT_FOUND.
 * - Users: HTTP basic auth, `X-ClickHouse-User` / `X-ClickHouse-Key`, or `user` / `password` parameters; a user
 *   may have a settings profile (`readonly = 1` for a query user): URL settings that differ from it are refused
 *   with READONLY, as the server does. GET requests are `readonly = 2` (no writes).
 * - Errors: the status ClickHouse maps the error code to (404 unknown table, 400 syntax, 403 readonly, 401
 *   authentication, else 500), `X-ClickHouse-Exception-Code`, and the text body `Code: N. DB::Exception: … (NAME)
 *   (version …)`.
 * - Answers carry `X-ClickHouse-Query-Id`, `X-ClickHouse-Format`, `X-ClickHouse-Timezone` and
 *   `X-ClickHouse-Summary`; gzip when asked (`enable_http_compression=1` + Accept-Encoding), gzip bodies read.
 *
 * What it does not do (README, "Scaled deployment"): results are sent once the query ends (as with
 * `wait_end_of_query=1`), so an error never arrives after a 200; a query whose client goes away runs to its end;
 * no `ON CLUSTER`, no replication, no native protocol, no SQL users/grants (users come from its start options);
 * the `input()` table function reads its body from a file written first rather than as a stream.
 *
 * For the tests' multi-tenant checks every statement is appended to a JSON-lines log, and requests that name no
 * database run in `defaultDatabase` (one that holds no tables), so a statement relying on the default fails.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { openPipeForWriting } from '../../warehouse/client';

export interface ClickHouseHttpUser {
  password: string;
  /** The user's settings profile: applied first on every request; readonly = 1 forbids changing any other. */
  settings?: Record<string, string | number>;
}

export interface ClickHouseHttpOptions {
  dataDir: string;
  /** Users by name (default: `default` with no password). */
  users?: Record<string, ClickHouseHttpUser>;
  /** Where requests that send no `database` run (created empty). Default `default`. */
  defaultDatabase?: string;
  /** Every statement, one JSON object a line: { user, database, session_id, query, error? }. */
  logFile?: string;
  port?: number;
}

export interface StatementRecord {
  user: string;
  database?: string;
  session_id?: string;
  query: string;
  error?: number;
}

type Session = {
  queryAsync(sql: string, opts?: { format?: string }): Promise<{ elapsed: number; rowsRead: number; bytesRead: number; bytes(): Uint8Array }>;
  queryBindAsync(sql: string, params: object, opts?: { format?: string }): Promise<{ elapsed: number; rowsRead: number; bytesRead: number; bytes(): Uint8Array }>;
  close(): void;
};

/** Not settings: the HTTP interface's own parameters. */
const HTTP_PARAMS = new Set([
  'query', 'database', 'default_format', 'session_id', 'session_timeout', 'session_check', 'query_id', 'user', 'password', 'quota_key',
  'compress', 'decompress', 'buffer_size', 'wait_end_of_query', 'role', 'enable_http_compression', 'http_zlib_compression_level',
  'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'cancel_http_readonly_queries_on_client_close',
  'http_response_buffer_size', 'http_wait_end_of_query', 'output_format_parallel_formatting',
]);

/** ClickHouse's HTTPHandler mapping from error code to status (the codes Tributary can meet). */
const STATUS_OF_CODE: Record<number, number> = {
  194: 401, 192: 401, 193: 401, 516: 401, // REQUIRED_PASSWORD, UNKNOWN_USER, WRONG_PASSWORD, AUTHENTICATION_FAILED
  164: 403, 497: 403, // READONLY, ACCESS_DENIED
  6: 400, 26: 400, 27: 400, 38: 400, 62: 400, 53: 400, 69: 400, 117: 400, // CANNOT_PARSE_*, SYNTAX_ERROR, TYPE_MISMATCH, …, INCORRECT_DATA
  60: 404, 46: 404, 47: 404, 50: 404, 56: 404, 81: 404, 115: 404, 73: 404, // UNKNOWN_TABLE, _FUNCTION, _IDENTIFIER, _TYPE, _STORAGE, _DATABASE, _SETTING, _FORMAT
  48: 501, // NOT_IMPLEMENTED
  159: 504, // TIMEOUT_EXCEEDED
};

class ClickHouseException extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const ERROR_RE = /^Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*\(([A-Z0-9_]+)\)\s*(?:CHDB_\w+)?\s*$/;

function asClickHouse(err: unknown): ClickHouseException {
  if (err instanceof ClickHouseException) return err;
  const message = (err as Error).message ?? String(err);
  const m = ERROR_RE.exec(message.trim());
  if (m) return new ClickHouseException(Number(m[1]), m[3], m[2]);
  return new ClickHouseException(1001, 'STD_EXCEPTION', message);
}

const sqlLiteral = (v: string) => (/^-?\d+(\.\d+)?$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);

/** The server, in this process (the child that startClickHouseHttp spawns runs it). */
export async function serve(opts: ClickHouseHttpOptions): Promise<http.Server> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Session: SessionCtor } = require('chdb') as { Session: new (p: string) => Session };
  const dataDir = opts.dataDir;
  fs.mkdirSync(dataDir, { recursive: true });
  const spool = fs.mkdtempSync(path.join(os.tmpdir(), 'ch-http-spool-'));
  const root = new SessionCtor(dataDir); // held for the server's life: the engine stays up between requests
  const engineVersion = Buffer.from((await root.queryAsync('SELECT version()', { format: 'TSVRaw' })).bytes()).toString().trim();
  const defaultDb = opts.defaultDatabase ?? 'default';
  await root.queryAsync(`CREATE DATABASE IF NOT EXISTS \`${defaultDb}\``);
  const users = opts.users ?? { default: { password: '' } };
  const sessions = new Map<string, { session: Session; busy: boolean; timeoutMs: number; timer?: NodeJS.Timeout }>();
  const log = opts.logFile ? fs.openSync(opts.logFile, 'a') : undefined;
  const record = (r: StatementRecord) => log !== undefined && fs.writeSync(log, JSON.stringify(r) + '\n');

  const fail = (res: http.ServerResponse, e: ClickHouseException, headers: Record<string, string>) => {
    if (res.headersSent) return res.destroy();
    res.writeHead(STATUS_OF_CODE[e.code] ?? 500, {
      ...headers,
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(e.code),
    });
    res.end(`Code: ${e.code}. DB::Exception: ${/[.!?]$/.test(e.message) ? e.message : e.message + '.'} (${e.type}) (version ${engineVersion})\n`);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = url.searchParams;
    const queryId = params.get('query_id') || crypto.randomUUID();
    const headers: Record<string, string> = { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Server-Display-Name': 'tributary-test-clickhouse', 'X-ClickHouse-Timezone': 'UTC' };
    if (url.pathname === '/ping' || (url.pathname === '/' && req.method === 'GET' && !params.has('query'))) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
      return res.end('Ok.\n');
    }
    if (url.pathname !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      return res.end(`There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\n`);
    }

    // Who: basic auth, then the X-ClickHouse-* headers, then the URL.
    let user = 'default';
    let password = '';
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString();
      user = decoded.slice(0, decoded.indexOf(':'));
      password = decoded.slice(decoded.indexOf(':') + 1);
    } else if (req.headers['x-clickhouse-user']) {
      user = String(req.headers['x-clickhouse-user']);
      password = String(req.headers['x-clickhouse-key'] ?? '');
    } else if (params.has('user')) {
      user = params.get('user')!;
      password = params.get('password') ?? '';
    }
    const account = users[user];
    if (!account || account.password !== password) {
      req.resume();
      return fail(res, new ClickHouseException(516, 'AUTHENTICATION_FAILED', `${user}: Authentication failed: password is incorrect, or there is no user with such name`), headers);
    }

    const body: NodeJS.ReadableStream = req.headers['content-encoding'] === 'gzip' ? req.pipe(zlib.createGunzip()) : req;
    const urlQuery = params.get('query') ?? '';
    // An INSERT whose statement is all in the URL: the body is its data, streamed.
    const insertFormat = /^\s*INSERT\b[\s\S]*\bFORMAT\s+(\w+)\s*$/i.exec(urlQuery)?.[1];
    const streamed = insertFormat !== undefined && req.method === 'POST';
    let sql = urlQuery;
    if (!streamed) {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c as Buffer);
      const rest = Buffer.concat(parts).toString();
      sql = urlQuery && rest ? `${urlQuery}\n${rest}` : urlQuery || rest;
    }
    const database = params.get('database') ?? undefined;
    const sessionId = params.get('session_id') ?? undefined;
    const entry: StatementRecord = { user, database, session_id: sessionId, query: sql };
    if (!sql.trim()) return fail(res, new ClickHouseException(62, 'SYNTAX_ERROR', 'Empty query'), headers);

    // The session: a request's own, or the one its session_id names (locked while a request uses it).
    let held: { session: Session; busy: boolean; timeoutMs: number; timer?: NodeJS.Timeout } | undefined;
    let session: Session;
    if (sessionId) {
      held = sessions.get(sessionId);
      if (!held && params.get('session_check') === '1') return fail(res, new ClickHouseException(372, 'SESSION_NOT_FOUND', `Session ${sessionId} not found`), headers);
      if (held?.busy) return fail(res, new ClickHouseException(373, 'SESSION_IS_LOCKED', `Session ${sessionId} is locked by a concurrent client`), headers);
      if (!held) {
        held = { session: new SessionCtor(dataDir), busy: false, timeoutMs: 60_000 };
        sessions.set(sessionId, held);
        await applyProfile(held.session, account);
      }
      if (params.has('session_timeout')) held.timeoutMs = Number(params.get('session_timeout')) * 1000;
      held.busy = true;
      clearTimeout(held.timer);
      session = held.session;
    } else {
      session = new SessionCtor(dataDir);
    }
    const format = insertFormat ?? /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(sql)?.[1] ?? params.get('default_format') ?? 'TabSeparated';
    headers['X-ClickHouse-Format'] = format;
    let fifo: string | undefined;
    try {
      if (!sessionId) await applyProfile(session, account);
      if (database) await session.queryAsync(`USE \`${database.replace(/`/g, '')}\``);
      else if (!held) await session.queryAsync(`USE \`${defaultDb}\``);
      if (req.method === 'GET') await session.queryAsync('SET readonly = 2').catch(() => undefined);
      for (const [k, v] of params) {
        if (HTTP_PARAMS.has(k) || k.startsWith('param_')) continue;
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ClickHouseException(115, 'UNKNOWN_SETTING', `Unknown setting ${k}`);
        await session.queryAsync(`SET ${k} = ${sqlLiteral(v)}`);
      }
      const bind = bindings(sql, params);
      let run = sql;
      let feeding: Promise<void> | undefined;
      if (streamed) {
        fifo = path.join(spool, `${crypto.randomUUID()}.data`);
        if (/\binput\s*\(/i.test(urlQuery)) {
          // input(): the engine reads the body from a file (written whole first), in the format the URL names.
          await pipeline(body, fs.createWriteStream(fifo));
          run = urlQuery.replace(/\binput\s*\(\s*('(?:[^'\\]|\\.)*')\s*\)/i, `file('${fifo}', '${insertFormat}', $1)`).replace(/\s*\bFORMAT\s+\w+\s*$/i, '');
        } else {
          // FROM INFILE a named pipe this process writes the body into as it arrives.
          await new Promise<void>((resolve, reject) => spawn('mkfifo', ['-m', '600', fifo!]).once('exit', (c) => (c === 0 ? resolve() : reject(new Error('mkfifo failed')))));
          run = urlQuery.replace(/(\s+SETTINGS\s[\s\S]*?)?\s+FORMAT\s+(\w+)\s*$/i, (_m, settings: string | undefined, f: string) => ` FROM INFILE '${fifo}'${settings ?? ''} FORMAT ${f}`);
          let settled = false;
          const pipe = openPipeForWriting(fifo, () => settled);
          feeding = (async () => {
            const w = await pipe;
            if (!w) return;
            try {
              for await (const chunk of body) if (!w.write(chunk)) await new Promise((r) => w.once('drain', r));
            } catch {
              // The client went away mid-body: a server cancels the INSERT. The engine cannot be interrupted here, so
              // a line no format parses ends it with an error instead (blocks already formed stay, as on a server).
              w.write('\n\u0000{"aborted by the client\t\n');
            } finally {
              w.end();
            }
          })();
          feeding.catch(() => undefined);
          const result = Object.keys(bind).length ? session.queryBindAsync(run, bind) : session.queryAsync(run);
          const done = await result.finally(() => (settled = true));
          await feeding.catch(() => undefined);
          record(entry);
          return answer(res, headers, done, Buffer.alloc(0), req);
        }
      }
      const result = await (Object.keys(bind).length ? session.queryBindAsync(run, bind, { format }) : session.queryAsync(run, { format }));
      record(entry);
      return answer(res, headers, result, Buffer.from(result.bytes()), req);
    } catch (err) {
      const e = asClickHouse(err);
      record({ ...entry, error: e.code });
      req.resume();
      return fail(res, e, headers);
    } finally {
      if (fifo) fs.rmSync(fifo, { force: true });
      if (held) {
        held.busy = false;
        const h = held;
        h.timer = setTimeout(() => {
          sessions.delete(sessionId!);
          h.session.close();
        }, h.timeoutMs);
        h.timer.unref();
      } else {
        session.close();
      }
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => fail(res, asClickHouse(err), {}));
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  server.on('close', () => root.close());
  return server;
}

/**
 * `param_<name>` values, as the server reads them: a top-level String in the escaped text format (\\t, \\n,
 * \\', \\\\ …), any other type (arrays, whose elements are quoted) as the literal text of the type the query
 * declares (`{name:Type}`). chDB's binder takes a string as it is and parses other types from their text, so
 * String parameters are unescaped here.
 */
function bindings(sql: string, params: URLSearchParams): Record<string, string> {
  const types = new Map([...sql.matchAll(/\{\s*(\w+)\s*:\s*([^}]+?)\s*\}/g)].map((m) => [m[1], m[2]]));
  const unescape = (v: string) => v.replace(/\\([\s\S])/g, (_m, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', '0': '\0' })[c] ?? c);
  const isString = (type: string | undefined) => /^(?:Nullable\(|LowCardinality\()*(?:String|FixedString\(\d+\))\)*$/.test(type ?? '');
  return Object.fromEntries(
    [...params].filter(([k]) => k.startsWith('param_')).map(([k, v]) => [k.slice(6), isString(types.get(k.slice(6))) ? unescape(v) : v]),
  );
}

/** The user's profile: its settings, readonly last (after which nothing else may change). */
async function applyProfile(session: Session, user: ClickHouseHttpUser) {
  const entries = Object.entries(user.settings ?? {});
  for (const [k, v] of entries.filter(([k]) => k !== 'readonly')) await session.queryAsync(`SET ${k} = ${sqlLiteral(String(v))}`);
  const ro = user.settings?.readonly;
  if (ro !== undefined) await session.queryAsync(`SET readonly = ${Number(ro)}`);
}

function answer(res: http.ServerResponse, headers: Record<string, string>, result: { elapsed: number; rowsRead: number; bytesRead: number }, bytes: Buffer, req: http.IncomingMessage) {
  const summary = {
    read_rows: String(result.rowsRead),
    read_bytes: String(result.bytesRead),
    written_rows: '0',
    written_bytes: '0',
    total_rows_to_read: String(result.rowsRead),
    result_rows: '0',
    result_bytes: String(bytes.length),
    elapsed_ns: String(Math.round(result.elapsed * 1e9)),
  };
  const gzip = new URL(req.url ?? '/', 'http://localhost').searchParams.get('enable_http_compression') === '1' && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const out = gzip ? zlib.gzipSync(bytes) : bytes;
  res.writeHead(200, {
    ...headers,
    'Content-Type': 'text/plain; charset=UTF-8',
    'X-ClickHouse-Summary': JSON.stringify(summary),
    ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
  });
  res.end(out);
}

export interface RunningClickHouseHttp {
  url: string;
  pid: number;
  /** The statements the server ran (and refused), oldest first. */
  statements(): StatementRecord[];
  stop(): Promise<void>;
}

/** The server in a child process of its own (chDB holds its data dir for the process's life). */
export async function startClickHouseHttp(opts: Omit<ClickHouseHttpOptions, 'logFile'>): Promise<RunningClickHouseHttp> {
  const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ch-http-log-')), 'statements.jsonl');
  fs.writeFileSync(logFile, '');
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, JSON.stringify({ ...opts, logFile })], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, UV_THREADPOOL_SIZE: '32' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the test ClickHouse server exited (${code}):\n${out}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    statements: () =>
      fs
        .readFileSync(logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as StatementRecord),
    async stop() {
      // SIGKILL: chDB's exit handlers can hang a process that exits while sessions are open; parts on disk are atomic.
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      fs.rmSync(path.dirname(logFile), { recursive: true, force: true });
    },
  };
}

if (require.main === module) {
  const opts = JSON.parse(process.argv[2]) as ClickHouseHttpOptions;
  void serve(opts).then((server) => {
    const { port } = server.address() as { port: number };
    process.stdout.write(`listening on ${port}\n`);
    process.on('SIGTERM', () => process.kill(process.pid, 'SIGKILL'));
    // A request gone wrong must not take the server down with it.
    process.on('unhandledRejection', (err) => process.stderr.write(`unhandled: ${(err as Error)?.stack ?? err}\n`));
  });
}
