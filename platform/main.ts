import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import { createApp } from '../api/app';
import type { ApiDeps } from '../api/context';
import { openCatalog, type Catalog } from '../catalog';
import { listSyncingSchemas } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import { connectClient, connectWorker, ensureSearchAttributes } from '../temporal/connection';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { getCdcMirror } from '../catalog/cdc';
import { signalCdc } from '../temporal/cdc-mirrors';
import { upsertSchedule } from '../temporal/schedules';
import { createWorker } from '../temporal/worker';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { createEmbeddedCatalogApart, embeddedCatalogExists } from './catalog-init';
import { loadConfig, type Config } from './config';
import { ensureDir, persistentSecret, randomHex } from './data-dir';
import { createLogger, type Logger } from './logger';
import { ensureTemporalCli } from './temporal-cli';

type Role = 'all' | 'api' | 'worker';

/** Separate api/worker processes cannot share in-process stores: they need the servers. */
function checkRole(role: Role, config: Config) {
  if (role === 'all') return;
  const missing = [
    !config.temporal.address && 'TEMPORAL_ADDRESS',
    !config.clickhouse.url && 'CLICKHOUSE_URL',
    !config.catalog.databaseUrl && 'DATABASE_URL',
  ].filter(Boolean);
  if (missing.length) {
    throw new Error(
      `"npm run ${role}" runs one half of the scaled deployment and needs ${missing.join(', ')}; ` +
        'use "npm start" to run everything in one process on embedded defaults',
    );
  }
}

/** After a restart, every enabled schema has its schedule: created if lost, never duplicated. */
async function reconcileSchedules(catalog: Catalog, temporal: Client, taskQueue: string, log: Logger) {
  const schemas = await listSyncingSchemas(catalog.db);
  for (const schema of schemas) {
    const source = await getSource(catalog.db, schema.source_id);
    if (source) await upsertSchedule(temporal, taskQueue, source, schema);
  }
  // Mirrors too: a Temporal that lost its state (a new cluster) gets each source's mirror back.
  const cdcSources = new Set(schemas.filter((s) => s.sync_type === 'cdc').map((s) => s.source_id));
  for (const id of cdcSources) {
    const source = await getSource(catalog.db, id);
    if (source) await signalCdc(temporal, taskQueue, source, 'tablesChanged', { paused: (await getCdcMirror(catalog.db, id))?.paused });
  }
  log.info({ schedules: schemas.length, cdcMirrors: cdcSources.size }, 'schedules match the catalog');
}

async function main(role: Role) {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  checkRole(role, config);
  ensureDir(config.dataDir);

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err) => log.error({ err }, 'error during shutdown'));
  };
  try {
    let devServer: DevServer | undefined;
    if (!config.temporal.address) {
      const cliPath = await ensureTemporalCli({ cliPath: config.temporal.cliPath, log: (m) => log.info(m) });
      devServer = await startDevServer({
        cliPath,
        dataDir: config.dataDir,
        port: config.temporal.devServerPort,
        uiPort: config.temporal.devServerUiPort,
        namespace: config.temporal.namespace,
        log,
      });
      stops.push(() => devServer!.stop());
    }
    const target = { ...config.temporal, address: config.temporal.address ?? devServer!.address };

    if (!config.catalog.databaseUrl && !embeddedCatalogExists(config.dataDir)) await createEmbeddedCatalogApart(config.dataDir);
    const catalog = await openCatalog({ ...config.catalog, dataDir: config.dataDir, secretKey: config.secretKey });
    stops.push(() => catalog.db.close());
    const warehouse: Warehouse = await openWarehouse({ ...config.clickhouse, dataDir: config.dataDir, log });
    stops.push(() => warehouse.close());
    const temporal = await connectClient(target);
    stops.push(() => temporal.connection.close());
    if (config.temporal.address) await ensureSearchAttributes(temporal, target.namespace, log);

    // The SDK's own logs go through our logger, warnings and up (its INFO includes the whole webpack report).
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) =>
        log[entry.level === 'ERROR' ? 'error' : 'warn']({ ...entry.meta, sdk: true }, entry.message),
      ),
    });
    let worker: Worker | undefined;
    let workerConnection: NativeConnection | undefined;
    if (role !== 'api') {
      workerConnection = await connectWorker(target);
      worker = await createWorker({
        connection: workerConnection,
        namespace: target.namespace,
        taskQueue: config.temporal.taskQueue,
        deps: { catalog, warehouse, log, batchBytes: config.batchBytes, heartbeatTimeoutMs: config.heartbeatTimeoutMs },
        heartbeatThrottleMs: config.heartbeatThrottleMs,
      });
      const running = worker.run();
      running.catch((err) => {
        log.fatal({ err }, 'worker stopped unexpectedly');
        process.kill(process.pid, 'SIGTERM');
      });
      stops.push(async () => {
        if (worker!.getState() === 'RUNNING') worker!.shutdown();
        await running.catch(() => undefined);
        await workerConnection!.close();
      });
    }

    if (role !== 'worker') {
      await reconcileSchedules(catalog, temporal, config.temporal.taskQueue, log);
      const apiToken = config.api.token ?? persistentSecret(config.dataDir, 'api-token', randomHex(24));
      const deps: ApiDeps = {
        catalog,
        warehouse,
        temporal,
        taskQueue: config.temporal.taskQueue,
        apiToken,
        publicUrl: config.api.publicUrl ?? `http://${config.api.host}:${config.api.port}`,
        log,
        modes: {
          temporal: config.temporal.address ? 'remote' : 'embedded',
          warehouse: warehouse.mode,
          catalog: catalog.db.mode,
        },
      };
      const app = createApp(deps);
      const server: Server = await new Promise((resolve, reject) => {
        const s = app.listen(config.api.port, config.api.host, () => resolve(s));
        s.once('error', reject);
      });
      stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.api.port;
      if (!config.api.publicUrl) deps.publicUrl = `http://${config.api.host}:${port}`; // the port the OS gave, for port 0
      const lines = [
        'Tributary is running',
        `  API:         http://${config.api.host}:${port}`,
        `  API token:   ${apiToken}`,
        `  Temporal UI: ${devServer?.uiUrl ?? process.env.TEMPORAL_UI_URL ?? `(the UI of ${target.address})`}`,
        `  Data dir:    ${config.dataDir}`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    } else {
      process.stdout.write(`Tributary worker is polling task queue "${config.temporal.taskQueue}" on ${target.address}\n`);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await stopAll();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

const role = (process.argv[2] ?? 'all') as Role;
if (!['all', 'api', 'worker'].includes(role)) {
  process.stderr.write(`usage: node --import tsx platform/main.ts [all|api|worker]\n`);
  process.exit(2);
}
main(role).catch((err) => {
  process.stderr.write(`Tributary failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
