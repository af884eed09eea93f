-- Each slot-lag measurement of a CDC mirror (every TRIBUTARY_CDC_LAG_CHECK_MS), kept for a day, so the lag
-- can be shown over time (GET /api/sources/:id/cdc/lag-history); cdc_mirrors keeps only the latest.
CREATE TABLE cdc_lag_samples (
  source_id   uuid NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
  at          timestamptz NOT NULL DEFAULT now(),
  lag_bytes   bigint NOT NULL
);
CREATE INDEX cdc_lag_samples_source_at ON cdc_lag_samples (source_id, at);
