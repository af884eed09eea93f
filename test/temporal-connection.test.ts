import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectClient } from '../temporal/connection';
import type { DevServer } from '../temporal/dev-server';
import { startTestTemporal } from './support/temporal-dev';

/**
 * A Temporal frontend whose port is open but which answers only after `silentMs`: connections are accepted at
 * once and held, then joined to the real server (what a dev server restarted on its database does while it starts).
 */
async function slowToAnswer(target: string, silentMs: number): Promise<{ address: string; close: () => Promise<void> }> {
  const [host, port] = target.split(':');
  const answersAt = Date.now() + silentMs;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.pause();
    setTimeout(() => {
      if (client.destroyed) return;
      const upstream = net.connect(Number(port), host, () => {
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    }, Math.max(0, answersAt - Date.now()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the Temporal client connection', () => {
  let dir: string;
  let temporal: DevServer;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-temporal-connect-'));
    temporal = await startTestTemporal(dir);
  }, 120_000);

  afterAll(async () => {
    await temporal?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a server silent past the SDK default (10 s) fails a connection without a longer deadline, and passes one with it', async () => {
    // What the platform's start met: the SDK's own deadline, with a server that answers 12 s after its port opens.
    const silent = await slowToAnswer(temporal.address, 12_000);
    try {
      await expect(connectClient({ address: silent.address, namespace: 'default', tls: false })).rejects.toThrow(/Failed to connect before the deadline/);
    } finally {
      await silent.close();
    }
    // The embedded dev server's own deadline (DevServer.connectTimeoutMs, what the platform connects with): the same
    // server is waited for, and answers.
    const again = await slowToAnswer(temporal.address, 12_000);
    try {
      const client = await connectClient({ address: again.address, namespace: 'default', tls: false, connectTimeoutMs: temporal.connectTimeoutMs });
      try {
        const info = await client.connection.workflowService.getSystemInfo({});
        expect(info.serverVersion).toMatch(/\d+\.\d+/);
      } finally {
        await client.connection.close();
      }
    } finally {
      await again.close();
    }
  }, 120_000);
});
