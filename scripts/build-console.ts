/**
 * Builds the web console (console/ → dist/console) with Vite, unless the build is newer than every
 * source file of the console and the lock file: `npm start` and `npm test` run it, and a second run
 * costs one directory walk, not a build.
 */
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..');
const src = path.join(root, 'console');
const out = path.join(root, 'dist', 'console');
const stamp = path.join(out, '.built');

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

export function consoleIsBuilt(): boolean {
  if (!fs.existsSync(stamp) || !fs.existsSync(path.join(out, 'index.html'))) return false;
  const built = fs.statSync(stamp).mtimeMs;
  return built >= newest(src) && built >= fs.statSync(path.join(root, 'package-lock.json')).mtimeMs;
}

async function main() {
  if (consoleIsBuilt() && !process.argv.includes('--force')) return;
  process.stderr.write('Building the console...\n');
  // vite is ESM-only; this file is CommonJS under node16 resolution.
  const { build } = await import('vite');
  await build({
    root: src,
    base: '/',
    logLevel: 'warn',
    configFile: false,
    // Preact's automatic JSX runtime, so components need no `h` import.
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: { outDir: out, emptyOutDir: true, sourcemap: false, target: 'es2022' },
  });
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`console build failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
