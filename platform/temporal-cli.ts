import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Finds the Temporal CLI (it carries the dev server), building it when absent.
 *
 * v1.5.1 is pinned because it is the newest tag whose go.mod has no `replace` directive: later tags
 * cannot be `go install`ed. The build goes to a cache outside the clone because it takes minutes on
 * two cores and CI runs each submission in a fresh clone on the same machine; `.tools/bin/temporal`
 * (git-ignored) links to it.
 */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

const repoRoot = path.resolve(__dirname, '..');
const toolsBin = path.join(repoRoot, '.tools', 'bin');
const cacheBin = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tributary', 'bin');

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, extra: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extra].filter(Boolean);
  return dirs.map((d) => path.join(d, name)).find(isExecutable);
}

export async function findTemporalCli(opts: { cliPath?: string } = {}): Promise<string | undefined> {
  const explicit = opts.cliPath ?? process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH is set to "${explicit}", which is not an executable file`);
    return explicit;
  }
  return onPath('temporal') ?? [path.join(toolsBin, 'temporal'), path.join(cacheBin, 'temporal')].find(isExecutable);
}

function linkIntoTools(binary: string) {
  fs.mkdirSync(toolsBin, { recursive: true });
  const link = path.join(toolsBin, 'temporal');
  fs.rmSync(link, { force: true });
  fs.symlinkSync(binary, link);
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(cacheBin, { recursive: true });
  const lock = path.join(cacheBin, '.temporal-build.lock');
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - fs.statSync(lock, { throwIfNoEntry: false })!.mtimeMs;
      if (age > 30 * 60_000) fs.rmSync(lock, { recursive: true, force: true }); // a builder that died
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another Temporal CLI build (lock ${lock})`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export async function ensureTemporalCli(opts: { cliPath?: string; log?: (msg: string) => void } = {}): Promise<string> {
  const found = await findTemporalCli(opts);
  if (found) return found;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  return withLock(async () => {
    const cached = path.join(cacheBin, 'temporal');
    if (isExecutable(cached)) {
      linkIntoTools(cached);
      return cached;
    }
    const go = onPath('go', ['/usr/local/go/bin', '/usr/lib/go/bin']);
    if (!go) {
      throw new Error(
        `The Temporal CLI was not found and Go is not installed to build it. Either put "temporal" on PATH, set ` +
          `TEMPORAL_CLI_PATH, or install Go 1.25+ and run: go install ${TEMPORAL_CLI_MODULE}`,
      );
    }
    log(`Building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${cacheBin}; this takes a few minutes once...`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', TEMPORAL_CLI_MODULE], {
        env: { ...process.env, GOBIN: cacheBin, GOTOOLCHAIN: 'local' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`"go install ${TEMPORAL_CLI_MODULE}" failed with exit code ${code}`)),
      );
    });
    linkIntoTools(cached);
    log(`Temporal CLI ready: ${cached}`);
    return cached;
  });
}
