import fs from 'node:fs';
import pg from 'pg';
import { startTestPostgres } from '../test/support/postgres';
import { makeDataDir, startPlatform, type RunningPlatform } from '../test/support/platform';

/** Creates a Postgres source over the bench's throwaway Postgres (`pgUrl`) with these schemas; the create answer. */
export async function createPostgresSource(platform: RunningPlatform, pgUrl: string, prefix: string, schemas: Record<string, unknown>[]): Promise<any> {
  const url = new URL(pgUrl);
  const created = await platform.api('POST', '/api/sources', {
    source_type: 'Postgres',
    prefix,
    payload: { host: url.hostname, port: url.port, dbname: 'postgres', user: 'postgres', password: '', schema: 'public', schemas },
  });
  if (created.status !== 201) throw new Error(`create source ${prefix}: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body;
}

/**
 * What the platform benches share: a throwaway Postgres (wal_level=logical) and the real platform on a fresh data
 * dir, each undone at the end in reverse order whatever happened, and a process that exits non-zero on failure.
 */
export class BenchParts {
  private readonly undo: (() => Promise<unknown>)[] = [];

  constructor(private readonly log: (m: string) => void) {}

  /** Runs the bench, then undoes every part it started (also when it failed); exits 1 on failure. */
  static run(log: (m: string) => void, fn: (parts: BenchParts) => Promise<void>): void {
    const parts = new BenchParts(log);
    fn(parts)
      .finally(() => parts.close())
      .catch((err) => {
        process.stderr.write(`${(err as Error).stack ?? err}\n`);
        process.exit(1);
      });
  }

  onClose(fn: () => Promise<unknown>) {
    this.undo.push(fn);
  }

  async postgres(): Promise<{ url: string; db: pg.Client }> {
    this.log('starting a throwaway Postgres cluster (wal_level=logical)');
    const server = await startTestPostgres();
    this.onClose(() => server.stop());
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    this.onClose(() => db.end());
    return { url: server.url, db };
  }

  async platform(name: string, env: Record<string, string> = {}): Promise<RunningPlatform> {
    const dataDir = makeDataDir(name);
    this.onClose(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
    const platform = await startPlatform({ dataDir, env: { LOG_LEVEL: 'warn', ...env } });
    this.onClose(() => platform.stop());
    return platform;
  }

  private async close() {
    for (const c of this.undo.reverse()) await Promise.resolve(c()).catch((err) => this.log(`cleanup: ${(err as Error).message}`));
  }
}
