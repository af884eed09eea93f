import express from 'express';
import { requireToken } from './auth';
import type { ApiDeps } from './context';
import { errorHandler, notFoundRoute } from './errors';
import { alertRoutes } from './routes/alerts';
import { docsRoutes } from './routes/docs';
import { httpMetrics, metricsHandler } from '../platform/metrics';
import { destinationRoutes } from './routes/destinations';
import { consoleRoutes } from './routes/console';
import { healthRoutes } from './routes/health';
import { destinationObservabilityRoutes } from './routes/destination-observability';
import { buildOpenApiDocument } from './openapi';
import { jobRoutes } from './routes/jobs';
import { platformInfoRoutes } from './routes/platform-info';
import { queryRoutes } from './routes/query';
import { schemaRoutes } from './routes/schemas';
import { sourceRoutes } from './routes/sources';
import { webhookIntakeRoutes, webhookRoutes } from './routes/webhooks';

export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(httpMetrics());
  // The webhook intake reads its body raw (signatures are over the exact bytes), so it comes before the JSON parser.
  app.use(webhookIntakeRoutes(deps));
  app.use(express.json({ limit: '1mb' }));
  app.use(healthRoutes(deps));
  // Public, like /health: it describes the API and holds nothing secret.
  const openapi = buildOpenApiDocument();
  app.get('/api/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use(docsRoutes());
  // Open like /health unless TRIBUTARY_METRICS_TOKEN is set (the README's "Metrics" says why).
  const metricsToken = process.env.TRIBUTARY_METRICS_TOKEN;
  app.get('/metrics', ...(metricsToken ? [requireToken(metricsToken)] : []), metricsHandler());
  app.use('/api', requireToken(deps.apiToken), sourceRoutes(deps), webhookRoutes(deps), schemaRoutes(deps), jobRoutes(deps), queryRoutes(deps), destinationRoutes(deps), destinationObservabilityRoutes(deps), alertRoutes(deps));
  app.use('/api', requireToken(deps.apiToken), platformInfoRoutes(deps));
  app.use(consoleRoutes());
  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
