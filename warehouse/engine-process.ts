/**
 * The embedded warehouse engine's own process: chDB (ClickHouse as a library) on the data dir, answering the
 * platform's queries over the IPC channel (engine.ts is the other end). Apart from the worker for the reason a
 * ClickHouse server is: the engine's memory (parts being written, caches, its allocator) is its own, and a load
 * cannot take the worker's heap with it. Data never passes through here on the hot path: a load's bytes reach
 * chDB through a named pipe or a spool file the worker writes (`INSERT … FROM INFILE`).
 *
 * Its sessions come in three lanes (engine-lanes.ts): `main` for the platform's short work, `load` for streaming
 * loads, `readonly` (users' limits, then readonly = 1, for their whole life) for users' queries; within a lane, a
 * request waits only when every session the lane may open is busy.
 * When the platform goes away without a word (SIGKILL), the channel closes and this process ends at once,
 * as chDB inside a killed worker would have: MergeTree parts are committed atomically, so nothing half-written
 * is ever visible, and the next engine can lock the data dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Session as ChdbSession } from 'chdb';
import { createChdbConnection } from 'chdb/connection';
import { Lane, laneSizes, type Session } from './engine-lanes';
import { NAMED_COLLECTIONS_KEY_ENV, type EngineReply, type EngineRequest } from './engine-protocol';

type Settings = NonNullable<Parameters<Session['query']>[0]['clickhouse_settings']>;

const dataPath = process.argv[2];
/** From the platform (engine.ts): the read-only session's settings, and how long to wait for the data dir. */
const startup = JSON.parse(process.argv[3] ?? '{}') as { readOnlySettings?: Settings; lockWaitMs?: number; egressProxy?: string; egressDirect?: string[] };


/**
 * Named collections (the keys of linked file sources) are written to the data dir encrypted (AES-128-CTR), under
 * a key this process was given in its environment — never in a file. They are a copy of the catalog's sealed
 * secrets, re-created at every engine start (the platform's startup statements), so a fresh key each start
 * costs nothing and none can go wrong: the folder an earlier engine wrote is removed before opening, since
 * ClickHouse refuses to start on collections it cannot decrypt.
 *
 * With `egressProxy` (warehouse/egress-proxy.ts), the engine's http and https requests — S3 reads and listings of
 * linked and imported files — go through the platform's proxy (a forward request, or a CONNECT tunnel for https),
 * which resolves and judges each connection's address, except those to the `direct` hosts (`<no_proxy>`): hosts
 * whose address no user can move, an IPv4 literal judged at link time or a provider preset's storage host
 * (connectors/files/sql.ts directHost). The engine connects to those itself, over its pooled connections:
 * proxied, it opens a new connection for every request. ClickHouse matches a no_proxy entry as that host and its
 * subdomains, so `evil.10.0.0.5` goes direct as well as `10.0.0.5`: no name like that can be an endpoint (the URL
 * parser refuses it) nor come from the user's SQL, and the engine follows no S3 redirects (`s3_max_redirects` 0),
 * which a store at a direct address could otherwise send to one. The set is fixed for the engine's life (chDB has
 * no SYSTEM RELOAD CONFIG). Returns the engine's extra command-line.
 */
function engineConfig(dir: string, egressProxy?: string, direct: string[] = []): string[] {
  if (!process.env[NAMED_COLLECTIONS_KEY_ENV] && !egressProxy) return [];
  const parts: string[] = [];
  if (process.env[NAMED_COLLECTIONS_KEY_ENV]) {
    fs.rmSync(path.join(dir, 'named_collections'), { recursive: true, force: true });
    parts.push(
      '<named_collections_storage><type>local_encrypted</type><algorithm>aes_128_ctr</algorithm>' +
        `<key_hex from_env="${NAMED_COLLECTIONS_KEY_ENV}"/></named_collections_storage>`,
    );
  }
  if (egressProxy) {
    if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(egressProxy)) throw new Error(`the egress proxy must be http://127.0.0.1:PORT, got ${egressProxy}`);
    for (const host of direct) if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(host)) throw new Error(`not a host to connect to directly: ${JSON.stringify(host)}`);
    const noProxy = direct.length ? `<no_proxy>${direct.join(',')}</no_proxy>` : '';
    parts.push(`<s3_max_redirects>0</s3_max_redirects><proxy>${noProxy}<http><uri>${egressProxy}</uri></http><https><uri>${egressProxy}</uri></https></proxy>`);
  }
  const config = path.join(dir, 'tributary-engine.xml');
  fs.writeFileSync(config, `<clickhouse>${parts.join('')}</clickhouse>\n`);
  return [`--config-file=${config}`];
}

const send = (msg: EngineReply) => process.send!(msg);

/**
 * The process holding the lock ClickHouse takes on the data dir (an flock on its `status` file), from
 * /proc/locks; undefined when nobody holds it.
 */
function lockHolder(dir: string): number | undefined {
  let inode: number;
  let locks: string;
  try {
    inode = fs.statSync(path.join(dir, 'status')).ino;
    locks = fs.readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of locks.split('\n')) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m && Number(m[2]) === inode) return Number(m[1]);
  }
  return undefined;
}

/**
 * Opens a session on the data dir, waiting while another process holds its lock (a previous engine, its platform
 * just killed, on its way out) for up to lockWaitMs. Any other failure is final at once: retrying it cannot help,
 * and a first attempt that failed after taking the lock holds it for this process's life, so every retry would
 * only meet its own lock. chDB's error does not say why it failed; it prints that to stderr (engine.ts shows it).
 */
let configured: ChdbSession | undefined;

async function openSession(dir: string, lockWaitMs: number): Promise<Session> {
  const deadline = Date.now() + lockWaitMs;
  let triedUnlocked = false;
  const args = engineConfig(dir, startup.egressProxy, startup.egressDirect);
  for (;;) {
    try {
      // The engine's configuration is given once, by the first session on the data dir; the connections opened
      // on it afterwards share that engine. The session is kept for the process's life.
      if (args.length) configured ??= new ChdbSession(dir, { connectionArgs: args });
      return createChdbConnection({ path: dir });
    } catch (err) {
      const holder = lockHolder(dir);
      if (holder === process.pid) throw new Error(`${describe(err)} (this engine's own first attempt holds the data dir's lock)`);
      if (holder === undefined) {
        // Once more at once, in case the holder let go between the attempt and the look; not again.
        if (triedUnlocked) throw err;
        triedUnlocked = true;
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the data dir is locked by process ${holder}, another warehouse engine (waited ${lockWaitMs} ms)`);
      triedUnlocked = false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const describe = (err: unknown) => (err as Error).message + ((err as { cause?: Error }).cause ? `: ${(err as { cause: Error }).cause.message}` : '');

/**
 * The session users' queries run on: their limits and output settings, then `readonly = 1`, under which no
 * query can change a setting (a SETTINGS clause or SET fails with READONLY), nor write.
 */
async function openReadOnlySession(dir: string, settings: Settings): Promise<Session> {
  const session = createChdbConnection({ path: dir });
  const entries = Object.entries(settings).filter(([, v]) => v !== undefined);
  for (const [k] of entries) if (!/^[a-z_][a-z0-9_]*$/i.test(k)) throw new Error(`invalid setting name ${k}`);
  const literal = (v: unknown) => (typeof v === 'number' || typeof v === 'boolean' || /^-?\d+(\.\d+)?$/.test(String(v)) ? String(Number(v)) : `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  if (entries.length) await session.command({ query: `SET ${entries.map(([k, v]) => `${k} = ${literal(v)}`).join(', ')}` });
  await session.command({ query: 'SET readonly = 1' });
  return session;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * chDB leaves the output a query had written before it failed (a limit reached mid-way: the JSON head) in its
 * session, and gives it to the session's next query ahead of its own: a throwaway query takes it.
 */
const drainAfter = (session: Session) => async (err: unknown): Promise<never> => {
  await session.command({ query: 'SELECT 1' }).catch(() => undefined);
  throw err;
};

async function answer(session: Session, req: EngineRequest): Promise<EngineReply> {
  // The client's settings type and chDB's are the same ClickHouse settings, declared in two packages.
  const params = { query: req.query ?? '', clickhouse_settings: req.clickhouse_settings, query_params: req.query_params, query_id: req.query_id } as Parameters<
    Session['query']
  >[0];
  switch (req.op) {
    case 'query': {
      const res = await session.query(params).catch(drainAfter(session));
      return { id: req.id, ok: true, bytes: await readAll(res.stream) };
    }
    case 'command': {
      const res = await session.command(params).catch(drainAfter(session));
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
    const main = await openSession(dataPath, startup.lockWaitMs ?? 30_000);
    // This process holds the data dir now: more sessions on it open at once.
    const more = async () => createChdbConnection({ path: dataPath });
    const readOnly = () => openReadOnlySession(dataPath, startup.readOnlySettings ?? {});
    const size = laneSizes();
    lanes = { main: new Lane(more, size.main, main), load: new Lane(more, size.load), readonly: new Lane(readOnly, size.readonly, await readOnly()) };
  } catch (err) {
    send({ type: 'failed', message: describe(err) });
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
