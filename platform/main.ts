import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, type NativeConnection } from '@temporalio/worker';
import { createApp } from '../api/app';
import type { ApiDeps } from '../api/context';
import { openCatalog, type Catalog } from '../catalog';
import { listSyncingSchemas } from '../catalog/schemas';
import { getSource } from '../catalog/sources';
import { connectClient, connectWorker, ensureSearchAttributes } from '../temporal/connection';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { getCdcMirror } from '../catalog/cdc';
import { ensureCdcMirror } from '../temporal/cdc-mirrors';
import { upsertSchedule } from '../temporal/schedules';
import { createWorker, type Workers } from '../temporal/worker';
import { bundleWorkflowsApart } from '../temporal/workflow-bundle';
import { ensureChangeLog } from '../warehouse/change-log';
import { ensureDestinationActivity } from '../warehouse/destination-activity';
import { ensureAlertsTable } from '../warehouse/alerts-stream';
import { ensureAlertSchedule } from '../temporal/alert-schedule';
import { listDestinations } from '../catalog/destinations';
import { ensureDelivery } from '../temporal/destination-workflows';
import { failOrphanedChangeBatches, pruneChangeBatches } from '../catalog/change-batches';
import { openWarehouse, type Warehouse } from '../warehouse/client';
import { filesDirectHosts, linkedStartupStatements } from '../api/linked-tables';
import { createEmbeddedCatalogApart, embeddedCatalogExists } from './catalog-init';
import { loadConfig, type Config } from './config';
import { ensureDir, persistentSecret, randomHex } from './data-dir';
import { createLogger, type Logger } from './logger';
import { bindMetricsCatalog, startWorkerMetrics } from './metrics';
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
    if (source && schema.sync_type !== 'linked') await upsertSchedule(temporal, taskQueue, source, schema);
  }
  // Mirrors too: a Temporal that lost its state (a new cluster) gets each source's mirror back; a running
  // one is left alone (signalling it would restart its stream on every deploy).
  const cdcSources = new Set(schemas.filter((s) => s.sync_type === 'cdc').map((s) => s.source_id));
  for (const id of cdcSources) {
    const source = await getSource(catalog.db, id);
    if (source) await ensureCdcMirror(temporal, taskQueue, source, { paused: (await getCdcMirror(catalog.db, id))?.paused });
  }
  // And each destination's delivery (a disabled one waits in its workflow until it is enabled).
  const destinations = await listDestinations(catalog.db);
  for (const d of destinations) await ensureDelivery(temporal, taskQueue, d);
  log.info({ schedules: schemas.length, cdcMirrors: cdcSources.size, deliveries: destinations.length }, 'schedules match the catalog');
}

/**
 * A stop (SIGTERM, SIGINT, a failed start) ends within this long whatever the engine or a sync is doing: what does
 * not finish in time is abandoned, as a crash would leave it (Temporal retries the runs on the next start).
 */
const SHUTDOWN_DEADLINE_MS = 25_000;
/** In-flight API requests (a user query) get this long to answer once the server stops taking new ones. */
const HTTP_DRAIN_MS = 2_000;
/** The engine gets this long to close its sessions before it is killed (a running query would hold it). */
const ENGINE_CLOSE_MS = 3_000;

type Stop = { name: string; maxMs: number; stop: () => Promise<void> };

async function main(role: Role) {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  checkRole(role, config);
  ensureDir(config.dataDir);
  // The workflow bundle (cached, or built in a child process) gets ready while the catalog and the engine start.
  if (role !== 'api') bundleWorkflowsApart().catch(() => {});

  const stops: Stop[] = [];
  let warehouse: Warehouse | undefined;
  /** Each part in reverse order of start, each within its own bound and all within the deadline. */
  const stopAll = async (deadline: number) => {
    for (const { name, maxMs, stop } of stops.splice(0).reverse()) {
      const waitMs = Math.max(0, Math.min(maxMs, deadline - Date.now()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)));
      const outcome = await Promise.race([stop().then(() => 'done' as const, (err) => log.error({ err, part: name }, 'error during shutdown')), late]);
      clearTimeout(timer);
      if (outcome === 'late') log.warn({ part: name, waitMs }, 'did not stop in time: left behind');
    }
  };
  let stopping = false;
  /** Stops everything and exits; a hard timer makes sure of the exit, taking the engine with it. */
  const exitAfterStopping = async (code: number) => {
    stopping = true;
    const deadline = Date.now() + SHUTDOWN_DEADLINE_MS;
    const hard = setTimeout(() => {
      log.error('shutdown did not finish in time: exiting');
      killEngine(warehouse);
      process.exit(code || 1);
    }, SHUTDOWN_DEADLINE_MS + 2_000);
    hard.unref();
    await stopAll(deadline);
    // Whatever was left behind (a part that did not stop in time) goes with this process.
    killEngine(warehouse);
    return code;
  };
  const onSignal = (signal: string) => {
    if (stopping) {
      // A second Ctrl-C: no more waiting.
      log.warn({ signal }, 'stopping at once');
      killEngine(warehouse);
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    void exitAfterStopping(0).then((code) => {
      log.info('stopped');
      process.exit(code);
    });
  };
  // From the start: a signal while starting stops what has started so far.
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

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
      stops.push({ name: 'Temporal dev server', maxMs: 12_000, stop: () => devServer!.stop() });
    }
    const target = { ...config.temporal, address: config.temporal.address ?? devServer!.address, connectTimeoutMs: devServer?.connectTimeoutMs };

    if (!config.catalog.databaseUrl && !embeddedCatalogExists(config.dataDir)) await createEmbeddedCatalogApart(config.dataDir);
    const catalog = await openCatalog({ ...config.catalog, dataDir: config.dataDir, secretKey: config.secretKey });
    bindMetricsCatalog(catalog.db);
    stops.push({ name: 'catalog', maxMs: 3_000, stop: () => catalog.db.close() });
    if (catalog.db.mode === 'embedded') {
      // No other process can have this catalog open: a change batch still open was left by a platform that was
      // killed writing it, and would hold every destination back for the lease (TRIBUTARY_CHANGE_BATCH_LEASE_MS).
      const orphaned = await failOrphanedChangeBatches(catalog.db);
      if (orphaned) log.warn({ batches: orphaned }, 'change batches left open by a stopped platform closed');
    }
    warehouse = await openWarehouse({
      ...config.clickhouse,
      dataDir: config.dataDir,
      log,
      userQueryLimits: config.queryLimits,
      engineLockWaitMs: config.clickhouse.engineLockWaitMs,
      startupStatements: () => linkedStartupStatements(catalog, config.clickhouse.database, log),
      // The engine's S3 connections through a proxy that judges each address (DNS rebinding of a custom endpoint).
      egressPolicy: config.filesEgressProxy ? config.filesNetwork : undefined,
      // Except to the hosts no user can rebind (IPv4 literals, the providers' storage hosts): the engine's own pooled connections.
      egressDirect: () => filesDirectHosts(catalog, config.filesNetwork, log),
    });
    const wh = warehouse;
    await ensureChangeLog(wh, config.changeLog.retentionDays);
    await ensureDestinationActivity(wh, config.destinations.activityRetentionDays);
    await ensureAlertsTable(wh);
    // The change log's rows expire by their TTL; the catalog's numbering of them goes at start and hourly after.
    const pruneBatches = () =>
      pruneChangeBatches(catalog.db, new Date(Date.now() - config.changeLog.retentionDays * 86_400_000)).then(
        (n) => n && log.info({ batches: n }, 'change batches past the retention forgotten'),
        (err) => log.warn({ err }, 'pruning change batches failed'),
      );
    await pruneBatches();
    const pruneTimer = setInterval(() => void pruneBatches(), 3_600_000);
    pruneTimer.unref();
    stops.push({ name: 'change batch pruning', maxMs: 100, stop: async () => clearInterval(pruneTimer) });
    stops.push({ name: 'warehouse', maxMs: ENGINE_CLOSE_MS + 2_000, stop: () => wh.close({ engineWaitMs: ENGINE_CLOSE_MS }) });
    const temporal = await connectClient(target);
    stops.push({ name: 'Temporal client', maxMs: 2_000, stop: () => temporal.connection.close() });
    if (config.temporal.address) await ensureSearchAttributes(temporal, target.namespace, log);

    // The SDK's own logs go through our logger, warnings and up (its INFO includes the whole webpack report).
    Runtime.install({
      // The SDK's own metrics (task slots, polls, schedule-to-start latencies…) in Prometheus format on their own address.
      ...(config.metrics.temporalAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: config.metrics.temporalAddress } } } } : {}),
      logger: new DefaultLogger('WARN', (entry) =>
        log[entry.level === 'ERROR' ? 'error' : 'warn']({ ...entry.meta, sdk: true }, entry.message),
      ),
    });
    let worker: Workers | undefined;
    let workerConnection: NativeConnection | undefined;
    if (role !== 'api') {
      workerConnection = await connectWorker(target);
      worker = await createWorker({
        connection: workerConnection,
        namespace: target.namespace,
        taskQueue: config.temporal.taskQueue,
        deps: {
          catalog,
          warehouse,
          log,
          batchBytes: config.batchBytes,
          insertsInFlight: config.insertsInFlight,
          heartbeatTimeoutMs: config.heartbeatTimeoutMs,
          delivery: { batchLeaseMs: config.changeLog.batchLeaseMs, cooldownMs: config.destinations.cooldownMs, retryPauseMs: config.destinations.retryPauseMs },
        },
        heartbeatThrottleMs: config.heartbeatThrottleMs,
        streamSlots: config.streamSlots,
      });
      if (role === 'worker') {
        const served = await startWorkerMetrics(config.api.host, config.metrics.workerPort);
        if (served) {
          stops.push({ name: 'metrics', maxMs: 1_000, stop: () => new Promise((r) => served.server.close(() => r())) });
          log.info({ host: config.api.host, port: served.port }, 'worker metrics at /metrics');
        } else log.info('worker metrics off (set TRIBUTARY_METRICS_PORT to serve them)');
      }
      const running = worker.run();
      running.catch((err) => {
        if (stopping) return; // a shutdown past the worker's grace time ends it this way
        log.fatal({ err }, 'worker stopped unexpectedly');
        process.kill(process.pid, 'SIGTERM');
      });
      // Bounded by the worker's own grace and force times (temporal/worker.ts).
      stops.push({
        name: 'worker',
        maxMs: 12_000,
        stop: async () => {
          if (worker!.getState() === 'RUNNING') worker!.shutdown();
          await running.catch(() => undefined);
          await workerConnection!.close();
        },
      });
    }

    if (role !== 'worker') {
      await reconcileSchedules(catalog, temporal, config.temporal.taskQueue, log);
      await ensureAlertSchedule(temporal, config.temporal.taskQueue, config.alerts.checkEveryMs);
      const apiToken = config.api.token ?? persistentSecret(config.dataDir, 'api-token', randomHex(24));
      const deps: ApiDeps = {
        catalog,
        warehouse,
        temporal,
        taskQueue: config.temporal.taskQueue,
        apiToken,
        publicUrl: config.api.publicUrl ?? `http://${config.api.host}:${config.api.port}`,
        log,
        outgoingNetwork: config.outgoingNetwork,
        temporalUi: { url: devServer?.uiUrl ?? process.env.TEMPORAL_UI_URL ?? null, namespace: config.temporal.namespace },
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
      stops.push({ name: 'API server', maxMs: HTTP_DRAIN_MS + 1_000, stop: () => closeServer(server) });
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
    if (stopping) return new Promise<never>(() => undefined); // a signal is already stopping everything
    // Everything started so far is stopped before the failure is reported (main's caller exits non-zero).
    await exitAfterStopping(1);
    throw err;
  }
}

/** Stops taking requests; those in flight get HTTP_DRAIN_MS to answer, then their connections are closed. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), HTTP_DRAIN_MS).unref();
  });
}

/** The engine must not outlive the platform, whatever state its close was left in. */
function killEngine(warehouse: Warehouse | undefined) {
  const pid = warehouse?.enginePid;
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
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
