import express from 'express';
import { requireToken } from './auth';
import type { ApiDeps } from './context';
import { errorHandler, notFoundRoute } from './errors';
import { healthRoutes } from './routes/health';
import { jobRoutes } from './routes/jobs';
import { queryRoutes } from './routes/query';
import { sourceRoutes } from './routes/sources';

export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.use(healthRoutes(deps));
  app.use('/api', requireToken(deps.apiToken), sourceRoutes(deps), jobRoutes(deps), queryRoutes(deps));
  app.use(notFoundRoute);
  app.use(errorHandler(deps.log));
  return app;
}
