import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Go programs Tributary runs but does not ship (the Temporal CLI, stripe-mock for the tests): found on
 * PATH, in `.tools/bin` or in the build cache, else built once with `go install` into a cache outside the
 * clone, because a build takes minutes on two cores and CI runs each submission in a fresh clone on the
 * same machine. `.tools/bin/<name>` (git-ignored) links to it.
 */
export interface GoTool {
  /** The binary's name. */
  name: string;
  /** `module/path@version`, as `go install` takes it. */
  module: string;
  /** An env var that may point at the binary instead. */
  envVar?: string;
}

const repoRoot = path.resolve(__dirname, '..');
const toolsBin = path.join(repoRoot, '.tools', 'bin');
export const goToolCache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'tributary', 'bin');

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

export function findGoTool(tool: GoTool, explicitPath?: string): string | undefined {
  const explicit = explicitPath ?? (tool.envVar ? process.env[tool.envVar] : undefined);
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${tool.envVar ?? tool.name} is set to "${explicit}", which is not an executable file`);
    return explicit;
  }
  return onPath(tool.name) ?? [path.join(toolsBin, tool.name), path.join(goToolCache, tool.name)].find(isExecutable);
}

function linkIntoTools(tool: GoTool, binary: string) {
  fs.mkdirSync(toolsBin, { recursive: true });
  const link = path.join(toolsBin, tool.name);
  fs.rmSync(link, { force: true });
  fs.symlinkSync(binary, link);
}

async function withLock<T>(tool: GoTool, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(goToolCache, { recursive: true });
  const lock = path.join(goToolCache, `.${tool.name}-build.lock`);
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 30 * 60_000) fs.rmSync(lock, { recursive: true, force: true }); // a builder that died
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another ${tool.name} build (lock ${lock})`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

export async function ensureGoTool(tool: GoTool, opts: { explicitPath?: string; log?: (msg: string) => void } = {}): Promise<string> {
  const found = findGoTool(tool, opts.explicitPath);
  if (found) return found;
  const log = opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
  return withLock(tool, async () => {
    const cached = path.join(goToolCache, tool.name);
    if (isExecutable(cached)) {
      linkIntoTools(tool, cached);
      return cached;
    }
    const go = onPath('go', ['/usr/local/go/bin', '/usr/lib/go/bin']);
    if (!go) {
      throw new Error(
        `${tool.name} was not found and Go is not installed to build it. Either put "${tool.name}" on PATH` +
          `${tool.envVar ? `, set ${tool.envVar}` : ''}, or install Go 1.25+ and run: go install ${tool.module}`,
      );
    }
    log(`Building ${tool.name} (${tool.module}) into ${goToolCache}; this takes a few minutes once...`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['install', tool.module], {
        env: { ...process.env, GOBIN: goToolCache, GOTOOLCHAIN: 'local' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`"go install ${tool.module}" failed with exit code ${code}`))));
    });
    linkIntoTools(tool, cached);
    log(`${tool.name} ready: ${cached}`);
    return cached;
  });
}
