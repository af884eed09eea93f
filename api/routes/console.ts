import fs from 'node:fs';
import path from 'node:path';
import express, { Router } from 'express';
import { ApiError } from '../errors';

/** Where `npm start` / `npm test` build the console (scripts/build-console.ts). */
export const CONSOLE_DIR = path.resolve(__dirname, '..', '..', 'dist', 'console');

/**
 * The web console: static files only (it routes by URL hash, so `/` is its one page). It holds no data and
 * no token — it signs in with the API token and calls the same /api routes as everyone.
 */
export function consoleRoutes(dir = CONSOLE_DIR): Router {
  const r = Router();
  r.get('/', (_req, res, next) => {
    if (!fs.existsSync(path.join(dir, 'index.html'))) {
      return next(new ApiError(503, 'console_not_built', 'The console is not built: run `npm start` (or `npx tsx scripts/build-console.ts`)'));
    }
    // index.html names the hashed assets: always revalidated, so a new build is picked up at once.
    res.set('cache-control', 'no-cache');
    res.sendFile(path.join(dir, 'index.html'));
  });
  // Hashed file names: cacheable for good.
  r.use('/assets', express.static(path.join(dir, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: true }));
  return r;
}
