import type { ConnectorSpec } from '../types';

export const spec: ConnectorSpec = {
  name: 'Files',
  label: 'Files (S3, GCS, R2, S3-compatible, local folder)',
  caption:
    'CSV, TSV, Parquet and JSON lines files in your own bucket or a folder, linked: the warehouse reads them on every query, ' +
    'so a file added shows on the next query. Each table is a path or glob (*, **, {a,b}, {1..9}); hive folders (dt=2024-01-01/) become columns.',
  featured: false,
  unreleasedSource: false,
  fields: [
    {
      name: 'provider',
      label: 'Storage',
      type: 'select',
      required: true,
      options: [
        { label: 'AWS S3', value: 'aws' },
        { label: 'Google Cloud Storage (HMAC keys)', value: 'gcs' },
        { label: 'Cloudflare R2', value: 'r2' },
        { label: 'Other S3-compatible endpoint', value: 's3_compatible' },
        { label: 'Local folder (under TRIBUTARY_FILES_ROOT)', value: 'local' },
      ],
    },
    { name: 'region', label: 'AWS region', type: 'input', required: false, placeholder: 'us-east-1' },
    { name: 'account_id', label: 'Cloudflare account id (R2)', type: 'input', required: false },
    { name: 'endpoint', label: 'Endpoint URL (S3-compatible)', type: 'input', required: false, placeholder: 'https://minio.example.com:9000' },
    { name: 'bucket', label: 'Bucket', type: 'input', required: false },
    { name: 'access_key_id', label: 'Access key id (GCS: HMAC access id; R2: token access key id)', type: 'input', required: false },
    { name: 'secret_access_key', label: 'Secret access key', type: 'password', required: false, secret: true },
    // A list of { name, path, format, compression, delimiter } (connectors/files/config.ts).
    { name: 'tables', label: 'Tables (name, path or glob, format, compression, CSV delimiter)', type: 'input', required: true },
  ],
};
