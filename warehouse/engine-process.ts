/**
 * The embedded warehouse engine's own process: chDB (ClickHouse as a library) on the data dir, answering the
 * platform's queries over the IPC channel (engine.ts is the other end). Apart from the worker for the reason a
 * ClickHouse server is: the engine's memory (parts being written, caches, its allocator) is its own, and a load
 * cannot take the worker's heap with it. Data never passes through here on the hot path: a load's bytes reach
 * chDB through a named pipe or a spool file the worker writes (`INSERT … FROM INFILE`).
 *
 * Its sessions come in three lanes (engine-lanes.ts): `main` for the platform's short work, `load` for streaming
 * loads, `readonly` (readonly = 2 for their whole life) for users' queries; within a lane, a request waits only
 * when every session the lane may open is busy.
 * When the platform goes away without a word (SIGKILL), the channel closes and this process ends at once,
 * as chDB inside a killed worker would have: MergeTree parts are committed atomically, so nothing half-written
 * is ever visible, and the next engine can lock the data dir.
 */
import { createChdbConnection } from 'chdb/connection';
import { Lane, laneSizes, type Session } from './engine-lanes';
import type { EngineReply, EngineRequest } from './engine-protocol';

const dataPath = process.argv[2];
const LOCK_WAIT_MS = 30_000;

const send = (msg: EngineReply) => process.send!(msg);

/**
 * Opens a session on the data dir, waiting while a previous engine still holds its lock (its platform was just
 * killed and it is on its way out). chDB's error does not say why it could not open the dir (it prints the lock
 * message to stderr), so any failure to open is tried again until LOCK_WAIT_MS has passed.
 */
async function openSession(path: string): Promise<Session> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      return createChdbConnection({ path });
    } catch (err) {
      const cause = String((err as { cause?: unknown }).cause ?? '') + String(err);
      if (Date.now() > deadline || !/Cannot lock file|Another server instance|Failed to create connection/.test(cause)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

async function answer(session: Session, req: EngineRequest): Promise<EngineReply> {
  // The client's settings type and chDB's are the same ClickHouse settings, declared in two packages.
  const params = { query: req.query ?? '', clickhouse_settings: req.clickhouse_settings, query_params: req.query_params, query_id: req.query_id } as Parameters<
    Session['query']
  >[0];
  switch (req.op) {
    case 'query': {
      const res = await session.query(params);
      return { id: req.id, ok: true, bytes: await readAll(res.stream) };
    }
    case 'command': {
      const res = await session.command(params);
      return { id: req.id, ok: true, summary: res.summary };
    }
    case 'ping': {
      const res = await session.ping({ select: true });
      return res.success ? { id: req.id, ok: true } : { id: req.id, ok: false, message: res.error.message };
    }
  }
}

async function main() {
  // A platform killed outright: end with it (no graceful close can be owed to a dead peer).
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  let lanes: Record<EngineRequest['session'], Lane>;
  try {
    const main = await openSession(dataPath);
    // This process holds the data dir now: more sessions on it open at once.
    const more = async () => createChdbConnection({ path: dataPath });
    const readOnly = async () => {
      const session = createChdbConnection({ path: dataPath });
      await session.command({ query: 'SET readonly = 2' });
      return session;
    };
    const size = laneSizes();
    lanes = { main: new Lane(more, size.main, main), load: new Lane(more, size.load), readonly: new Lane(readOnly, size.readonly, await readOnly()) };
  } catch (err) {
    send({ type: 'failed', message: (err as Error).message + ((err as { cause?: Error }).cause ? `: ${(err as { cause: Error }).cause.message}` : '') });
    process.exit(1);
  }
  process.on('message', (req: EngineRequest | { op: 'close' }) => {
    if (req.op === 'close') {
      void Promise.all(Object.values(lanes).map((lane) => lane.close())).finally(() => process.exit(0));
      return;
    }
    const lane = lanes[req.session] as Lane | undefined;
    if (!lane) {
      send({ id: req.id, ok: false, message: `no engine session ${JSON.stringify(req.session)}` });
      return;
    }
    lane.run((session) => answer(session, req)).then(send, (err: Error & { code?: string; type?: string }) =>
      send({ id: req.id, ok: false, message: err.message, code: err.code, errorType: err.type }),
    );
  });
  send({ type: 'ready' });
}

void main();
