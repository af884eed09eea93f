import fs from 'node:fs';
import { stateFile } from './env';

export default async function globalTeardown() {
  await globalThis.__tributaryPostgres?.stop();
  fs.rmSync(stateFile(), { force: true });
}
