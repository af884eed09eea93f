-- The change log's numbering. Every write of changes into the warehouse's change log (`_tributary_changes`) first
-- takes the next batch number here and marks it open; the rows carry it; it is closed once they are in. A reader
-- never reads past the lowest batch still open, so a batch that commits late is never skipped by a checkpoint.
CREATE SEQUENCE change_batch_numbers;

CREATE TABLE change_batches (
  batch       bigint PRIMARY KEY DEFAULT nextval('change_batch_numbers'),
  -- No foreign keys: a source deleted while its changes are retained keeps their numbering.
  source_id   uuid,
  table_name  text NOT NULL,
  state       text NOT NULL DEFAULT 'open',   -- open | done
  changes     bigint,
  opened_at   timestamptz NOT NULL DEFAULT now(),
  closed_at   timestamptz
);
CREATE INDEX change_batches_open ON change_batches (batch) WHERE state = 'open';
CREATE INDEX change_batches_opened ON change_batches (opened_at);

-- Destinations: where changes are pushed (type webhook first). `config` holds what may be shown (url, method,
-- body template, filters, batching, timeout, header names and non-secret values); `secrets` the sealed secret
-- header values and the signing secret. The checkpoint is the last change delivered (or skipped by the filters):
-- (checkpoint_batch, checkpoint_seq) in the change log's order.
CREATE TABLE destinations (
  id                uuid PRIMARY KEY,
  name              text NOT NULL,
  type              text NOT NULL,
  config            jsonb NOT NULL DEFAULT '{}'::jsonb,
  secrets           text,
  enabled           boolean NOT NULL DEFAULT true,
  -- healthy | degraded | disabled_temporarily | disabled (destinations/health.ts)
  health_state      text NOT NULL DEFAULT 'healthy',
  -- The token bucket and the times of recent temporary disables, as the delivery saw them last.
  health            jsonb NOT NULL DEFAULT '{}'::jsonb,
  disabled_until    timestamptz,
  checkpoint_batch  bigint NOT NULL DEFAULT 0,
  checkpoint_seq    bigint NOT NULL DEFAULT 0,
  latest_error      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
