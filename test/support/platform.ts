import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

/**
 * Runs the real platform (`node --import tsx platform/main.ts all`) as a child process — Temporal dev server,
 * chDB, PGlite and all — and talks to it over HTTP, as a user would.
 */
export interface RunningPlatform {
  url: string;
  token: string;
  /** The embedded Temporal dev server's frontend, to inspect workflows as the Temporal UI would. */
  temporalAddress: string;
  dataDir: string;
  /** The platform's process, and its embedded warehouse engine's (chDB) if one is running. */
  pid: number;
  enginePid(): number | undefined;
  output(): string;
  api<T = any>(method: string, urlPath: string, body?: unknown, opts?: { token?: string | null; raw?: string }): Promise<{ status: number; body: T }>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
}

const repoRoot = path.resolve(__dirname, '..', '..');

export function makeDataDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tributary-${name}-`));
}

/**
 * `role` (default `all`): `api` or `worker` run one half of the scaled deployment, given TEMPORAL_ADDRESS,
 * CLICKHOUSE_URL and DATABASE_URL in `env`; a worker has no API, so it is ready once it polls its task queue.
 */
export async function startPlatform(opts: { dataDir: string; env?: Record<string, string>; token?: string; role?: 'all' | 'api' | 'worker' }): Promise<RunningPlatform> {
  const role = opts.role ?? 'all';
  const [apiPort, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
  const token = opts.token ?? 'test-token-' + Math.random().toString(36).slice(2);
  // One process (node with tsx's loader), so a SIGKILL really kills the platform, as a crash would.
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'platform/main.ts', role], {
    cwd: repoRoot,
    env: {
      ...process.env,
      TRIBUTARY_DATA_DIR: opts.dataDir,
      TRIBUTARY_API_PORT: String(apiPort),
      TRIBUTARY_TEMPORAL_PORT: String(temporalPort),
      TRIBUTARY_TEMPORAL_UI_PORT: String(uiPort),
      TRIBUTARY_API_TOKEN: token,
      LOG_LEVEL: 'warn',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${apiPort}`;

  const api: RunningPlatform['api'] = async (method, urlPath, body, o = {}) => {
    const headers: Record<string, string> = {};
    const authToken = o.token === undefined ? token : o.token;
    if (authToken !== null) headers.authorization = `Bearer ${authToken}`;
    if (body !== undefined || o.raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(url + urlPath, { method, headers, body: o.raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text so the test can show it */
    }
    return { status: res.status, body: parsed as any };
  };

  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`platform exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`platform did not become healthy in time:\n${out}`);
    }
    if (role === 'worker') {
      if (out.includes('Tributary worker is polling')) break;
    } else try {
      const res = await fetch(url + '/health');
      if (res.status === 200 && out.includes('Tributary is running')) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return {
    url,
    token,
    temporalAddress: `127.0.0.1:${temporalPort}`,
    dataDir: opts.dataDir,
    pid: child.pid!,
    enginePid: () => childProcesses(child.pid!).find((pid) => readProc(pid, 'cmdline')?.includes('engine-process.ts')),
    output: () => out,
    api,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A file of /proc/<pid>, or undefined once the process is gone. */
export function readProc(pid: number, file: string): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

function childProcesses(parent: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => Number(/^PPid:\s+(\d+)/m.exec(readProc(pid, 'status') ?? '')?.[1]) === parent);
}

/** Whether a process is still running (a zombie counts as ended). */
export function isRunning(pid: number): boolean {
  const status = readProc(pid, 'status');
  return status !== undefined && !/^State:\s+Z/m.test(status);
}

/** Polls until the schema has `count` finished jobs (Completed or Failed); returns the newest. */
export async function waitForJobs(p: RunningPlatform, schemaId: string, count: number, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await p.api('GET', `/api/jobs?schema_id=${schemaId}`);
    const finished = (res.body.results ?? []).filter((j: any) => j.status !== 'Running');
    if (finished.length >= count) return finished[0];
    if (Date.now() > deadline) throw new Error(`schema ${schemaId}: ${finished.length}/${count} jobs finished; jobs: ${JSON.stringify(res.body)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function query(p: RunningPlatform, sql: string): Promise<Record<string, any>[]> {
  const res = await p.api('POST', '/api/query', { sql });
  if (res.status !== 200) throw new Error(`query failed (${res.status}): ${JSON.stringify(res.body)}`);
  return res.body.rows;
}
