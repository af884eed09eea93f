import { z } from 'zod';
import { strictObject } from '../../common/strict-object';

/**
 * A `Files` source: files in a bucket (AWS S3, GCS through its S3 interoperability API with HMAC keys,
 * Cloudflare R2, any S3-compatible store) or in a folder under TRIBUTARY_FILES_ROOT, read by the engine itself.
 * The tables are part of the connection: each is a path or glob plus how to parse what it matches.
 */
export const FILE_PROVIDERS = ['aws', 'gcs', 'r2', 's3_compatible', 'local'] as const;
export type FileProvider = (typeof FILE_PROVIDERS)[number];

/** The formats offered, and the engine's name for each. */
export const FILE_FORMATS = {
  csv_with_header: 'CSVWithNames',
  csv: 'CSV',
  tsv: 'TabSeparatedWithNames',
  parquet: 'Parquet',
  jsonl: 'JSONEachRow',
} as const;
export type FileFormat = keyof typeof FILE_FORMATS;

/** `auto`: from each file's extension (.gz, .zst, …), the engine's own rule. */
export const FILE_COMPRESSIONS = ['auto', 'none', 'gzip', 'zstd', 'bz2', 'xz', 'lz4', 'deflate', 'brotli', 'snappy'] as const;
export type FileCompression = (typeof FILE_COMPRESSIONS)[number];

/** A table name as it lands: `{prefix}_{name}`. */
const TABLE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

export const filesTableSchema = strictObject({
  name: z.string('name is required: the table name (lowercase letters, digits, _)').regex(TABLE_NAME, 'name must be lowercase letters, digits and _, starting with a letter (at most 63)'),
  path: z
    .string('path is required: a path or glob inside the bucket or folder, e.g. "events/**/*.parquet"')
    .min(1, 'path must not be empty')
    .max(1024, 'path must be at most 1024 characters')
    .refine((p) => !p.includes('\0'), 'path must not contain NUL'),
  format: z.enum(Object.keys(FILE_FORMATS) as [FileFormat, ...FileFormat[]], `format must be one of ${Object.keys(FILE_FORMATS).join(', ')}`),
  compression: z.enum(FILE_COMPRESSIONS, `compression must be one of ${FILE_COMPRESSIONS.join(', ')}`).default('auto'),
  /** CSV only: one character (default `,`). */
  delimiter: z.string().length(1, 'delimiter must be exactly one character').optional(),
});
export type FilesTable = z.infer<typeof filesTableSchema>;

export const filesConfigSchema = strictObject({
  provider: z.enum(FILE_PROVIDERS, `provider must be one of ${FILE_PROVIDERS.join(', ')}`),
  /** AWS only (e.g. us-east-1). */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'region must be an AWS region such as us-east-1').optional(),
  /** R2 only: the Cloudflare account id (32 hex characters). */
  account_id: z.string().regex(/^[0-9a-f]{32}$/, 'account_id must be the 32 hex characters of your Cloudflare account id').optional(),
  /** s3_compatible only: http(s)://host[:port], path-style. */
  endpoint: z.url('endpoint must be an http(s) URL such as https://minio.example.com:9000').optional(),
  /** Every provider but local. */
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/, 'bucket must be a bucket name: 3 to 63 lowercase letters, digits, ., - or _').optional(),
  access_key_id: z.string().trim().min(1, 'access_key_id must not be empty').optional(),
  secret_access_key: z.string().min(1, 'secret_access_key must not be empty').optional(),
  tables: z.array(filesTableSchema, 'tables is required: a list of { name, path, format }').min(1, 'tables must list at least one table'),
}).superRefine((c, ctx) => {
  const need = (field: keyof typeof c, why: string) => {
    if (c[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `${field} is required ${why}` });
  };
  const refuse = (field: keyof typeof c, why: string) => {
    if (c[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `${field} does not apply ${why}` });
  };
  if (c.provider === 'aws') need('region', 'for AWS S3 (e.g. us-east-1)');
  else refuse('region', `to provider ${c.provider} (AWS only)`);
  if (c.provider === 'r2') need('account_id', 'for Cloudflare R2');
  else refuse('account_id', `to provider ${c.provider} (R2 only)`);
  if (c.provider === 's3_compatible') need('endpoint', 'for an S3-compatible store');
  else refuse('endpoint', `to provider ${c.provider} (s3_compatible only)`);
  if (c.provider === 'local') {
    for (const f of ['bucket', 'access_key_id', 'secret_access_key'] as const) refuse(f, 'to a local folder');
  } else {
    need('bucket', 'for object storage');
    need('access_key_id', 'for object storage (GCS: an HMAC key; R2: an API token\'s access key id)');
    need('secret_access_key', 'for object storage');
  }
  const seen = new Set<string>();
  c.tables.forEach((t, i) => {
    if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tables', i, 'name'], message: `table "${t.name}" is listed twice` });
    seen.add(t.name);
    if (t.delimiter !== undefined && t.format !== 'csv' && t.format !== 'csv_with_header') {
      ctx.addIssue({ code: 'custom', path: ['tables', i, 'delimiter'], message: `delimiter applies to CSV only, not ${t.format}` });
    }
  });
});
export type FilesConfig = z.infer<typeof filesConfigSchema>;
