import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { knownKeysOf, unknownFieldMessage } from '../common/strict-object';
import type { Logger } from '../platform/logger';

/** Every error leaves the API as `{ error, message, details }` — never a stack trace. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { field?: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export const badRequest = (message: string, details?: ApiError['details']) => new ApiError(400, 'bad_request', message, details);
export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, details?: ApiError['details']) => new ApiError(409, 'conflict', message, details);

/** Zod issue paths as dotted field names: `payload.schemas.0.sync_type`. */
export function zodDetails(err: ZodError, prefix: (string | number)[] = []) {
  return err.issues.flatMap((i) => {
    const field = (extra: PropertyKey[] = []) => [...prefix, ...i.path, ...extra].map(String).join('.') || '(body)';
    // An unknown key is named as the field itself, not as its parent object, with the known key it likely meant.
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ field: field([k]), message: unknownFieldMessage(k, knownKeysOf(i.keys)) }));
    return [{ field: field(), message: i.message }];
  });
}

export function fromZod(err: ZodError, prefix: (string | number)[] = []): ApiError {
  const details = zodDetails(err, prefix);
  return new ApiError(400, 'validation_error', details.map((d) => `${d.field}: ${d.message}`).join('; '), details);
}

export const notFoundRoute: RequestHandler = (req, _res, next) => next(new ApiError(404, 'not_found', `No route for ${req.method} ${req.path}`));

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let apiErr: ApiError;
    if (err instanceof ApiError) apiErr = err;
    else if (err instanceof ZodError) apiErr = fromZod(err);
    else if (err?.type === 'entity.parse.failed') apiErr = badRequest(`Request body is not valid JSON: ${err.message}`);
    else if (err?.type === 'entity.too.large') apiErr = new ApiError(413, 'payload_too_large', 'Request body is too large');
    else if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) apiErr = new ApiError(err.status, 'bad_request', String(err.message));
    else {
      log.error({ err, method: req.method, path: req.path }, 'unhandled API error');
      apiErr = new ApiError(500, 'internal_error', 'Internal error; see the server log');
    }
    res.status(apiErr.status).json({ error: apiErr.code, message: apiErr.message, details: apiErr.details });
  };
}
