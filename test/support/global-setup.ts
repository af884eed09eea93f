import fs from 'node:fs';
import { ensureTemporalCli } from '../../platform/temporal-cli';
import { stateFile, type TestState } from './env';
import { startTestPostgres, type TestPostgres } from './postgres';
import { ensureStripeMock } from './stripe-mock';
import { ensureVersitygw } from './versitygw';

declare global {
  // eslint-disable-next-line no-var
  var __tributaryPostgres: TestPostgres | undefined;
}

/** Real parts for the whole run: the Temporal CLI, stripe-mock and versitygw (built once if absent) and a logical-replication Postgres. */
export default async function globalSetup() {
  const log = (m: string) => process.stderr.write(m + '\n');
  const temporalCliPath = await ensureTemporalCli({ log });
  const stripeMockPath = await ensureStripeMock(log);
  const versitygwPath = await ensureVersitygw(log);
  let databaseUrl = process.env.TEST_DATABASE_URL;
  let pgDataDir: string | undefined;
  if (!databaseUrl) {
    const pg = await startTestPostgres();
    globalThis.__tributaryPostgres = pg;
    databaseUrl = pg.url;
    pgDataDir = pg.dataDir;
  }
  const state: TestState = { databaseUrl, temporalCliPath, stripeMockPath, versitygwPath, pgDataDir };
  fs.writeFileSync(stateFile(), JSON.stringify(state));
  process.env.TEMPORAL_CLI_PATH = temporalCliPath;
}
