import { spawn, type ChildProcess } from 'node:child_process';
import { STRIPE_MOCK_MODULE } from '../../connectors/stripe/versions';
import { ensureGoTool } from '../../platform/go-tools';
import { freePort } from './ports';

/** stripe-mock, Stripe's own API mock (stripe-node's test suite runs against it): built once, started per test file. */
export const STRIPE_MOCK = { name: 'stripe-mock', module: STRIPE_MOCK_MODULE, envVar: 'STRIPE_MOCK_PATH' };

export const ensureStripeMock = (log?: (m: string) => void) => ensureGoTool(STRIPE_MOCK, { log });

export interface StripeMock {
  url: string;
  stop(): Promise<void>;
}

export async function startStripeMock(binary: string): Promise<StripeMock> {
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ['-http-addr', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`stripe-mock exited with ${child.exitCode}:\n${out}`);
    try {
      const res = await fetch(`${url}/v1/customers`, { headers: { authorization: 'Bearer sk_test_123' } });
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`stripe-mock did not answer in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
