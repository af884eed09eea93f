import { spawn } from 'node:child_process';

/**
 * The workflow code bundle, built by webpack in a short-lived child process. Bundling in the worker
 * itself loaded webpack and swc into it for good: about 100 MB more resident memory for the life of the
 * process (BENCHMARKS.md). The child prints the bundle; the worker takes it as `workflowBundle`.
 */
export async function bundleWorkflowsApart(): Promise<{ code: string }> {
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
