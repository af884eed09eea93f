import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureGoTool, type GoTool } from '../../platform/go-tools';
import { freePort } from './ports';

/** versitygw, a real S3-compatible server over a folder (each subfolder is a bucket): built once, started per test file. */
export const VERSITYGW: GoTool = { name: 'versitygw', module: 'github.com/versity/versitygw/cmd/versitygw@v1.8.0', envVar: 'VERSITYGW_PATH' };

export const ensureVersitygw = (log?: (m: string) => void) => ensureGoTool(VERSITYGW, { log });

export interface Versitygw {
  /** `http://127.0.0.1:PORT`, path-style: `${endpoint}/${bucket}/${key}`. */
  endpoint: string;
  /** The served folder; `${dir}/${bucket}/…` are the objects. */
  dir: string;
  stop(): Promise<void>;
}

export async function startVersitygw(
  binary: string,
  opts: { access: string; secret: string; dir?: string; buckets?: string[] },
): Promise<Versitygw> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-s3-'));
  for (const b of opts.buckets ?? []) fs.mkdirSync(path.join(dir, b), { recursive: true });
  const port = await freePort();
  // --quiet: without it every request is logged to stdout, and a pipe nobody drains blocks the server.
  const child: ChildProcess = spawn(
    binary,
    ['--quiet', '--port', `127.0.0.1:${port}`, '--access', opts.access, '--secret', opts.secret, 'posix', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`versitygw exited with ${child.exitCode}:\n${out}`);
    try {
      // Any HTTP answer (an unsigned request gets 403) means it is serving.
      await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`versitygw did not answer in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    dir,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
