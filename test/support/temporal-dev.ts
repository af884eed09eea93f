import { startDevServer } from '../../temporal/dev-server';
import { createLogger } from '../../platform/logger';
import { testEnv } from './env';
import { freePort } from './ports';

/** A Temporal dev server of a test's own (outside the platform, so the platform can be killed and restarted against it). */
export async function startTestTemporal(dataDir: string) {
  return startDevServer({ cliPath: testEnv().temporalCliPath, dataDir, port: await freePort(), uiPort: await freePort(), namespace: 'default', log: createLogger('warn') });
}
