-- The files an imported files table (sync_type "append": by new files) has loaded, each with the version it was
-- loaded at (its ETag, else size and modification time): a run loads only the files missing here or whose version
-- changed (a rewritten file). A file's row is written only once its rows are in the warehouse (activities/files-import.ts).
CREATE TABLE imported_files (
  schema_id   uuid NOT NULL REFERENCES schemas(id) ON DELETE CASCADE,
  path        text NOT NULL,
  version     text NOT NULL,
  size        bigint NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_id, path)
);
