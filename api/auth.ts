import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/** Bearer-token auth: a constant-time compare against the configured token. */
export function requireToken(token: string): RequestHandler {
  const expected = crypto.createHash('sha256').update(token).digest();
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = crypto.createHash('sha256').update(match?.[1]?.trim() ?? '').digest();
    if (!match || !crypto.timingSafeEqual(given, expected)) {
      return next(new ApiError(401, 'unauthorized', 'Missing or invalid API token: send "Authorization: Bearer <token>"'));
    }
    next();
  };
}
