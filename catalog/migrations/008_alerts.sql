-- Alerts: one row per incident. `subject_key` names what the incident is about (kind + the ids it concerns, and
-- the severity where one condition has two levels), so the partial unique index lets at most one incident of a
-- kind be open per subject: a check that finds the same condition again raises nothing new.
CREATE TABLE alerts (
  id           uuid PRIMARY KEY,
  kind         text NOT NULL,            -- sync_failed | schema_stale | cdc_lag | cdc_slot_lost | destination_disabled
  severity     text NOT NULL,            -- warning | critical
  subject_key  text NOT NULL,
  subject      jsonb NOT NULL DEFAULT '{}'::jsonb,
  message      text NOT NULL,
  raised_at    timestamptz NOT NULL DEFAULT now(),
  cleared_at   timestamptz
);
CREATE UNIQUE INDEX alerts_one_open_per_subject ON alerts (subject_key) WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised ON alerts (raised_at DESC);
