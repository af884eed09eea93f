-- One CDC mirror per Postgres source with CDC tables: its slot, publication and the durable checkpoint.
CREATE TABLE cdc_mirrors (
  source_id         uuid PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
  slot_name         text NOT NULL,
  publication_name  text NOT NULL,
  -- Commit end LSN of the last transaction wholly in the warehouse: the slot is acknowledged up to here.
  checkpoint_lsn    text,
  status            text NOT NULL DEFAULT 'Starting',
  paused            boolean NOT NULL DEFAULT false,
  changes_synced    bigint NOT NULL DEFAULT 0,
  lag_bytes         bigint,
  lag_checked_at    timestamptz,
  latest_error      text,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- When a CDC table's snapshot completed: streamed changes apply on top of it; NULL means "snapshot needed".
ALTER TABLE schemas ADD COLUMN cdc_snapshot_at timestamptz;
