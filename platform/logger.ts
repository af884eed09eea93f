import pino from 'pino';

/**
 * Structured JSON logs. Anything that looks like a credential is redacted at the logger,
 * so a careless `log.info({ config })` can never print a password.
 */
const SECRET_KEYS = [
  'password',
  'secret',
  'token',
  'api_key',
  'apiKey',
  'stripe_secret_key',
  'signing_secret',
  'authorization',
  'secrets',
];
const redactPaths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

export type Logger = pino.Logger;

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'tributary' },
    redact: { paths: redactPaths, censor: '********' },
  });
}

export const log = createLogger();
