import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureDir } from '../platform/data-dir';
import type { Logger } from '../platform/logger';
import { SA } from './search-attributes';

/**
 * The embedded default for orchestration: `temporal server start-dev` as a child process, with its
 * SQLite file under the data dir so schedules and workflow history survive a restart.
 */
export interface DevServer {
  address: string;
  uiUrl: string;
  /**
   * How long a client's first connection may wait for it: its port opens before it answers, and restarted on its
   * database on a busy machine it once took longer than the SDK's 10 s (temporal/connection.ts).
   */
  connectTimeoutMs: number;
  stop(): Promise<void>;
}

const GUARD = `
parent=$1; shift
"$@" & server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; exit 0' TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
kill -TERM $server 2>/dev/null; wait $server
`;

function waitForPort(port: number, host: string, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`Temporal dev server exited with code ${child.exitCode}`));
      const sock = net.connect(port, host);
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`Temporal dev server did not listen on ${host}:${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export async function startDevServer(opts: {
  cliPath: string;
  dataDir: string;
  port: number;
  uiPort: number;
  namespace: string;
  log: Logger;
}): Promise<DevServer> {
  const dir = ensureDir(path.join(opts.dataDir, 'temporal'));
  const host = '127.0.0.1';
  const args = [
    'server', 'start-dev',
    '--ip', host,
    '--port', String(opts.port),
    '--ui-port', String(opts.uiPort),
    '--db-filename', path.join(dir, 'temporal.db'),
    '--namespace', opts.namespace,
    '--log-level', 'warn',
    ...Object.values(SA).flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
  ];
  const logFile = fs.openSync(path.join(dir, 'dev-server.log'), 'a');
  // Its own process group, so a Ctrl-C in the terminal reaches us first and we stop it after the worker
  // has drained. A small shell guard stops it too if this process dies without cleaning up (SIGKILL).
  const child = spawn('sh', ['-c', GUARD, 'temporal-guard', String(process.pid), opts.cliPath, ...args], {
    stdio: ['ignore', logFile, logFile],
    detached: true,
  });
  fs.closeSync(logFile);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(opts.port, host, 60_000, child);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; see ${path.join(dir, 'dev-server.log')}`);
  }
  opts.log.info({ port: opts.port, uiPort: opts.uiPort }, 'Temporal dev server started');
  return {
    address: `${host}:${opts.port}`,
    uiUrl: `http://${host}:${opts.uiPort}`,
    connectTimeoutMs: 60_000,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
