import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { openCatalogDb } from '../catalog/db';
import { migrate } from '../catalog/migrate';

/**
 * A fresh embedded catalog is created (PGlite's initdb, then the migrations) in a short-lived child
 * process. PGlite's WebAssembly memory only grows: after an initdb in-process the platform held about
 * 690 MB of anonymous memory for good, against about 190 MB when it opens a catalog that already
 * exists (BENCHMARKS.md). The child pays the initdb and exits, giving all of it back.
 */
export function embeddedCatalogExists(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'catalog', 'PG_VERSION'));
}

export async function createEmbeddedCatalogApart(dataDir: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, dataDir], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code: number | null = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`creating the embedded catalog failed (exit code ${code})`);
}

async function createHere(dataDir: string) {
  const db = await openCatalogDb({ dataDir });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
}

if (require.main === module) {
  createHere(process.argv[2]).catch((err) => {
    process.stderr.write(`catalog init: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
