import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports';

/**
 * A throwaway Postgres cluster from the machine's own binaries, with wal_level=logical.
 * initdb refuses to run as root, so as root the cluster is made and run by the `postgres` user.
 */
export interface TestPostgres {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

function findPgBin(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const p = path.join(base, v, 'bin', name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install Postgres (apt-get install postgresql) or set TEST_DATABASE_URL`);
}

const asRoot = () => process.getuid?.() === 0;

function run(cmd: string, args: string[]) {
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const initdb = findPgBin('initdb');
  const pgCtl = findPgBin('pg_ctl');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-pg-'));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');
  if (asRoot()) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  try {
    run(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  } catch {
    run(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
  }
  const port = await freePort();
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    'wal_level = logical',
    'max_replication_slots = 20',
    'max_wal_senders = 20',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 200',
  ];
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), '\n' + conf.join('\n') + '\n');
  // The superuser needs no password; every other role does, so tests can see a real auth failure.
  fs.writeFileSync(
    path.join(dataDir, 'pg_hba.conf'),
    ['local all all trust', 'host all postgres 127.0.0.1/32 trust', 'host all all 127.0.0.1/32 scram-sha-256',
     'host replication postgres 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n',
  );
  run(pgCtl, ['-D', dataDir, '-l', path.join(dir, 'postgres.log'), '-w', '-t', '60', 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    async stop() {
      try {
        run(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
