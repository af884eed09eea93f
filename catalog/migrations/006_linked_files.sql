-- Linked file tables (connectors/files): the columns inferred from the files ([{name, type}]) and the types the
-- user chose over them ({name: type}); the warehouse table is re-created from these at every engine start.
ALTER TABLE schemas ADD COLUMN linked_columns jsonb;
ALTER TABLE schemas ADD COLUMN linked_type_overrides jsonb;
