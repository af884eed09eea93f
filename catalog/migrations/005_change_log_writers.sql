-- Where each batch-synced table's change recording stands: the engine time (`_tributary_synced_at`) up to which
-- the rows written into the live table by incremental, append and webhook-refresh runs are in the change log. A
-- run that failed after writing rows leaves it behind them, so the next run records them (activities/sync.ts).
ALTER TABLE schemas ADD COLUMN changes_recorded_to text;
