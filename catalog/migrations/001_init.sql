-- Sources, the tables ("schemas") they offer, and one job row per sync run.
CREATE TABLE sources (
  id              uuid PRIMARY KEY,
  source_type     text NOT NULL,
  prefix          text NOT NULL UNIQUE,
  config          jsonb NOT NULL DEFAULT '{}'::jsonb,      -- non-secret connection fields
  secrets         text,                                    -- AES-256-GCM envelope of the secret fields
  status          text NOT NULL DEFAULT 'Running',
  latest_error    text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE schemas (
  id                      uuid PRIMARY KEY,
  source_id               uuid NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  name                    text NOT NULL,
  should_sync             boolean NOT NULL DEFAULT false,
  sync_type               text,
  sync_frequency          text NOT NULL DEFAULT '6hour',
  incremental_field       text,
  incremental_field_type  text,
  primary_key_columns     jsonb,
  status                  text,
  last_synced_at          timestamptz,
  rows_synced             bigint,
  sync_cursor             jsonb,
  latest_error            text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  updated_at              timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source_id, name)
);

CREATE TABLE jobs (
  id                uuid PRIMARY KEY,
  schema_id         uuid NOT NULL REFERENCES schemas(id) ON DELETE CASCADE,
  source_id         uuid NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  status            text NOT NULL,
  rows_synced       bigint NOT NULL DEFAULT 0,
  started_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  latest_error      text,
  warnings          jsonb NOT NULL DEFAULT '[]'::jsonb,
  workflow_id       text,
  workflow_run_id   text
);
CREATE INDEX jobs_schema_started ON jobs (schema_id, started_at DESC);

-- Each sync run takes the next value: the `_tributary_version` of the rows it writes, so a later run always wins.
CREATE SEQUENCE sync_versions;
ALTER TABLE jobs ADD COLUMN sync_version bigint NOT NULL DEFAULT nextval('sync_versions');
