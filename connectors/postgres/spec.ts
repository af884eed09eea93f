import type { ConnectorSpec } from '../types';

export const spec: ConnectorSpec = {
  name: 'Postgres',
  label: 'Postgres',
  caption: 'Sync tables from a PostgreSQL database (10 or newer). Full refresh, incremental and append; CDC needs wal_level=logical.',
  featured: true,
  unreleasedSource: false,
  fields: [
    { name: 'host', label: 'Host', type: 'input', required: true, placeholder: 'db.example.com' },
    { name: 'port', label: 'Port', type: 'input', required: true, placeholder: '5432' },
    { name: 'dbname', label: 'Database', type: 'input', required: true, placeholder: 'postgres' },
    { name: 'user', label: 'User', type: 'input', required: true, placeholder: 'postgres' },
    { name: 'password', label: 'Password', type: 'password', required: false, secret: true },
    { name: 'schema', label: 'Schema', type: 'input', required: true, placeholder: 'public' },
    {
      name: 'sslmode',
      label: 'SSL mode',
      type: 'select',
      required: false,
      options: [
        { label: 'Disable', value: 'disable' },
        { label: 'Require', value: 'require' },
      ],
    },
  ],
};
