import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The workflow code bundle, built by webpack in a short-lived child process. Bundling in the worker
 * itself loaded webpack and swc into it for good: about 100 MB more resident memory for the life of the
 * process (BENCHMARKS.md). The child prints the bundle; the worker takes it as `workflowBundle`.
 *
 * Building it takes ~4 s of CPU (8 s on a busy machine) at every worker start, for a bundle that only changes
 * with the code. So it is kept in node_modules/.cache (where webpack and babel keep theirs), named by a hash of
 * the project's source and lock file: a start with unchanged code reads it, any edit builds a new one.
 */
const ROOT = path.resolve(__dirname, '..');
const CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'tributary-workflow-bundle');
/** What the bundle cannot depend on: tests, the console, scripts, data. Everything else is hashed. */
const NOT_HASHED = new Set(['node_modules', 'test', 'console', 'scripts', 'docker', 'dist', 'coverage', '.git', '.data', '.tools', '.scratch']);

let building: Promise<{ code: string }> | undefined;

/** The bundle for this code: from the cache, else built (once per process, however often asked). */
export function bundleWorkflowsApart(): Promise<{ code: string }> {
  building ??= cachedOrBuilt().catch((err) => {
    building = undefined;
    throw err;
  });
  return building;
}

/** The hash of every source file the workflows could import, of the lock file (dependency versions) and of Node's version. */
export function sourceHash(root = ROOT): string {
  const hash = createHash('sha256').update(process.version);
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!(dir === root && NOT_HASHED.has(entry.name))) walk(full);
      } else if (/\.(ts|js|json)$/.test(entry.name)) {
        hash.update(path.relative(root, full)).update('\0').update(fs.readFileSync(full)).update('\0');
      }
    }
  };
  walk(root);
  return hash.digest('hex').slice(0, 32);
}

/** Where the bundle of the code as it is now is kept. */
export const bundleCacheFile = () => path.join(CACHE_DIR, `workflows-${sourceHash()}.js`);

async function cachedOrBuilt(): Promise<{ code: string }> {
  const file = bundleCacheFile();
  try {
    const code = await fs.promises.readFile(file, 'utf8');
    // Marked as used, so the pruning below keeps it.
    await fs.promises.utimes(file, new Date(), new Date()).catch(() => {});
    return { code };
  } catch {
    // Not built for this code yet.
  }
  const built = await buildInChild();
  try {
    await fs.promises.mkdir(CACHE_DIR, { recursive: true });
    // Written aside and renamed: another worker starting at the same moment reads a whole bundle or none.
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, built.code);
    await fs.promises.rename(tmp, file);
    await pruneUnused(file);
  } catch {
    // A read-only install still runs: it builds at every start, as it did before the cache.
  }
  return built;
}

/** Bundles of earlier versions of the code that no start has read for a day: one per edit adds up while developing. */
async function pruneUnused(keep: string) {
  const dayAgo = Date.now() - 24 * 3600_000;
  for (const name of await fs.promises.readdir(CACHE_DIR)) {
    const full = path.join(CACHE_DIR, name);
    if (full === keep) continue;
    const stat = await fs.promises.stat(full).catch(() => undefined);
    if (stat && stat.mtimeMs < dayAgo) await fs.promises.rm(full, { force: true });
  }
}

async function buildInChild(): Promise<{ code: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  const code: number | null = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`bundling the workflow code failed (exit code ${code})`);
  return { code: Buffer.concat(chunks).toString('utf8') };
}

async function bundleHere() {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => process.stderr.write(`${m}\n`) };
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quiet as never });
  process.stdout.write(code);
}

if (require.main === module) {
  bundleHere().catch((err) => {
    process.stderr.write(`workflow bundle: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
