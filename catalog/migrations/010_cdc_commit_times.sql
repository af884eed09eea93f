-- The replication delay of a CDC mirror, measured rather than guessed: the source's commit time of the last
-- transaction whose changes are durable in the warehouse, and when that happened (tributary_cdc_lag_seconds).
ALTER TABLE cdc_mirrors ADD COLUMN last_commit_at timestamptz, ADD COLUMN last_applied_at timestamptz;
