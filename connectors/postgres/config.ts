import { z } from 'zod';
import { strictObject } from '../../common/strict-object';

export const postgresConfigSchema = strictObject({
  host: z.string().trim().min(1, 'host is required'),
  port: z.coerce.number().int().min(1).max(65535).default(5432),
  dbname: z.string().trim().min(1, 'dbname is required'),
  user: z.string().trim().min(1, 'user is required'),
  password: z.string().default(''),
  schema: z.string().trim().min(1).default('public'),
  sslmode: z.enum(['disable', 'require']).default('disable'),
});

export type PostgresConfig = z.infer<typeof postgresConfigSchema>;
