import { ensureTemporalCli } from '../platform/temporal-cli';

ensureTemporalCli()
  .then((p) => process.stdout.write(`Temporal CLI: ${p}\n`))
  .catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
