-- Runs once, when the `postgresql` volume is first initialised (docker-entrypoint-initdb.d).
-- Temporal's auto-setup creates its own databases (temporal, temporal_visibility);
-- this adds the Tributary catalog database. Idempotent, so it also works when
-- POSTGRES_USER / POSTGRES_DB is already "tributary" (psql's \gexec runs the generated statement).
SELECT 'CREATE DATABASE tributary'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'tributary')\gexec
