import fs from 'node:fs';
import path from 'node:path';
import type { CatalogDb } from './db';

const MIGRATIONS_DIR = path.join(__dirname, 'migrations');

/** Applies every migrations/*.sql not yet recorded, in file-name order, each in its own transaction. */
export async function migrate(db: CatalogDb): Promise<string[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS tributary_migrations (
    name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
  const done = new Set(
    (await db.query<{ name: string }>('SELECT name FROM tributary_migrations')).rows.map((r) => r.name),
  );
  const files = fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  for (const file of files) {
    if (done.has(file)) continue;
    const sql = fs.readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8');
    await db.transaction(async (tx) => {
      // Multi-statement files: split on semicolons at line ends (our migrations keep one statement per block).
      for (const stmt of sql.split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) {
        await tx.query(stmt);
      }
      await tx.query('INSERT INTO tributary_migrations (name) VALUES ($1)', [file]);
    });
    applied.push(file);
  }
  return applied;
}
