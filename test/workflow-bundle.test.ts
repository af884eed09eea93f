import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleCacheFile, bundleWorkflowsApart, sourceHash } from '../temporal/workflow-bundle';

/** The workflow bundle is built once per version of the code and read back by every later worker start. */
describe('workflow bundle cache', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-bundle-hash-'));
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('the key moves with any source file or the lock file, not with tests, the console or node_modules', () => {
    write('workflows/a.ts', 'export const a = 1;');
    write('common/types.ts', 'export type T = 1;');
    write('package-lock.json', '{}');
    const first = sourceHash(root);
    expect(sourceHash(root)).toBe(first);

    write('test/a.test.ts', 'x');
    write('console/src/app.tsx', 'x');
    write('node_modules/x/index.js', 'x');
    write('README.md', 'x');
    expect(sourceHash(root)).toBe(first);

    write('common/types.ts', 'export type T = 2;');
    const second = sourceHash(root);
    expect(second).not.toBe(first);
    write('package-lock.json', '{"v":2}');
    expect(sourceHash(root)).not.toBe(second);
    // A file moved is a different tree, even with the same bytes.
    write('common/types.ts', 'export type T = 1;');
    const before = sourceHash(root);
    fs.renameSync(path.join(root, 'common/types.ts'), path.join(root, 'common/other.ts'));
    expect(sourceHash(root)).not.toBe(before);
  });

  test('a worker start takes the bundle from the cache when the code has not changed', async () => {
    const { code } = await bundleWorkflowsApart();
    expect(code).toContain('cdcSource');
    // The bundle built (or read) is the one kept under the current code's key...
    const file = bundleCacheFile();
    expect(fs.readFileSync(file, 'utf8')).toBe(code);
    // ...and a start reads that file: a marked copy there is what the next process gets.
    const marked = `${code}\n// marked by the test`;
    fs.writeFileSync(file, marked);
    try {
      const out = await runInChild(`require('./temporal/workflow-bundle').bundleWorkflowsApart().then((b) => process.stdout.write(String(b.code.endsWith('// marked by the test'))))`);
      expect(out).toBe('true');
    } finally {
      fs.writeFileSync(file, code);
    }
  }, 120_000);
});

async function runInChild(script: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '-e', script], { cwd: path.resolve(__dirname, '..') }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
}
