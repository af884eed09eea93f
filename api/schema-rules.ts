import { ONE_MINUTE_ONLY_FOR_CDC } from '../common/frequencies';
import type { DiscoveredTable } from '../connectors/types';
import { ApiError } from './errors';

/**
 * Seed 001's schemas[] rules and seed 000's frequency rule, for one table's sync settings. The same
 * checks serve POST /api/sources (every entry) and PATCH /api/schemas/:id (the settings after the change).
 */

export interface SchemaSettingsInput {
  name: string;
  should_sync: boolean;
  sync_type?: string | null;
  sync_frequency?: string | null;
  incremental_field?: string | null;
  incremental_field_type?: string | null;
  primary_key_columns?: string[] | null;
}

export type Detail = { field: string; message: string };

const CURSOR_TYPES = new Set(['incremental', 'append']);

export function frequencyViolation(s: Pick<SchemaSettingsInput, 'name' | 'sync_type' | 'sync_frequency'>, field: string): Detail[] {
  return s.sync_frequency === '1min' && s.sync_type !== 'cdc' ? [{ field, message: ONE_MINUTE_ONLY_FOR_CDC }] : [];
}

function availability(s: SchemaSettingsInput, t: DiscoveredTable): string | undefined {
  // Files tables are read where they are, or copied in by the engine (imports): whole, or by new files.
  if (t.linked_available && s.sync_type && !['linked', 'full_refresh', 'append'].includes(s.sync_type)) {
    return `schema "${s.name}": a Files table is linked (sync_type "linked": read from storage on every query) or imported (full_refresh, or append: by new files); ${s.sync_type} is not available for it`;
  }
  const ok: Record<string, boolean> = {
    full_refresh: true,
    incremental: t.incremental_available,
    append: t.append_available,
    cdc: t.cdc_available === true,
    webhook: t.supports_webhooks,
    linked: t.linked_available === true,
  };
  if (!s.sync_type || ok[s.sync_type]) return undefined;
  if (s.sync_type === 'cdc') return `schema "${s.name}": cdc is not available for this table (check POST /api/sources/check-cdc-prerequisites)`;
  if (s.sync_type === 'webhook') return `schema "${s.name}": this source does not support webhooks`;
  if (s.sync_type === 'linked') return `schema "${s.name}": linked applies to Files sources only (their tables are read from storage on every query)`;
  return `schema "${s.name}": ${s.sync_type} needs a column of a cursor type (integer, numeric, date, timestamp), and this table has none`;
}

/** The primary key a schema syncs with: the one given, else the one discovered. */
export function effectivePrimaryKey(s: SchemaSettingsInput, t: DiscoveredTable | undefined): string[] | null {
  if (s.primary_key_columns?.length) return s.primary_key_columns;
  return t?.detected_primary_keys.length ? t.detected_primary_keys : null;
}

/** Violations of the rules that need the table as discovered (fields named relative to `at`). */
export function tableRuleViolations(s: SchemaSettingsInput, t: DiscoveredTable, at: (f: string) => string): Detail[] {
  const details: Detail[] = [];
  const unavailable = availability(s, t);
  if (unavailable) details.push({ field: at('sync_type'), message: unavailable });
  // A Files table's append is by new files: the files are the cursor, there is no column to name.
  const byFiles = s.sync_type === 'append' && t.files !== undefined;
  if (byFiles && (s.incremental_field || s.incremental_field_type)) {
    details.push({
      field: at(s.incremental_field ? 'incremental_field' : 'incremental_field_type'),
      message: `schema "${s.name}": a Files table's append is by new files (a file not loaded yet, or rewritten, is loaded): it takes no incremental_field`,
    });
  }
  if (s.sync_type && CURSOR_TYPES.has(s.sync_type) && !unavailable && !byFiles) {
    const field = t.incremental_fields.find((f) => f.field === s.incremental_field);
    if (!field) {
      const choices = t.incremental_fields.map((f) => f.field).join(', ');
      details.push({ field: at('incremental_field'), message: `schema "${s.name}": ${s.sync_type} needs incremental_field, one of: ${choices}` });
    } else if (s.incremental_field_type !== field.type) {
      details.push({
        field: at('incremental_field_type'),
        message: `schema "${s.name}": incremental_field_type must be "${field.type}" for ${field.field}`,
      });
    }
  }
  if (s.primary_key_columns?.length) {
    const columns = new Set(t.available_columns.map((c) => c.field));
    const unknown = s.primary_key_columns.filter((c) => !columns.has(c));
    if (unknown.length) {
      details.push({ field: at('primary_key_columns'), message: `schema "${s.name}": no such column: ${unknown.join(', ')}` });
    }
    if (new Set(s.primary_key_columns).size !== s.primary_key_columns.length) {
      details.push({ field: at('primary_key_columns'), message: `schema "${s.name}": primary_key_columns lists a column twice` });
    }
  } else if (s.sync_type === 'cdc') {
    details.push({ field: at('primary_key_columns'), message: `schema "${s.name}": cdc needs primary_key_columns (detected: ${t.detected_primary_keys.join(', ') || 'none'})` });
  } else if (s.sync_type === 'incremental' && !t.detected_primary_keys.length) {
    details.push({
      field: at('primary_key_columns'),
      message: `schema "${s.name}": the table has no primary key or id column, so incremental needs primary_key_columns to deduplicate rows`,
    });
  }
  return details;
}

const NOT_FOR_LINKED = ['sync_frequency', 'incremental_field', 'incremental_field_type', 'primary_key_columns'] as const;

/** A linked table is read from storage on every query: no schedule, no cursor, no key. Saying one is a mistake. */
export function linkedViolations(sent: Partial<Record<(typeof NOT_FOR_LINKED)[number], unknown>>, name: string, at: (f: string) => string): Detail[] {
  return NOT_FOR_LINKED.filter((f) => sent[f] !== undefined && sent[f] !== null).map((f) => ({
    field: at(f),
    message: `schema "${name}": ${f} does not apply to a linked table (it is read from storage on every query: nothing is scheduled or synced)`,
  }));
}

/** Violations that need only the settings themselves. */
export function settingsRuleViolations(s: SchemaSettingsInput, at: (f: string) => string): Detail[] {
  const details: Detail[] = [];
  if (s.should_sync && !s.sync_type) {
    details.push({ field: at('sync_type'), message: `schema "${s.name}": sync_type is required when should_sync is true` });
  }
  details.push(...frequencyViolation(s, at('sync_frequency')).map((d) => ({ ...d, message: `schema "${s.name}": ${d.message}` })));
  return details;
}

/** Seed 000's warnings: a nullable cursor skips rows; a nullable key deduplicates badly. */
export function schemaWarnings(s: SchemaSettingsInput, t: DiscoveredTable): string[] {
  const warnings: string[] = [];
  if (!s.sync_type) return warnings;
  if (CURSOR_TYPES.has(s.sync_type)) {
    const cursor = t.incremental_fields.find((f) => f.field === s.incremental_field);
    if (cursor?.nullable) {
      warnings.push(`schema "${s.name}": incremental_field "${cursor.field}" is nullable: rows where it is null are skipped`);
    }
  }
  if (s.sync_type === 'incremental' || s.sync_type === 'cdc') {
    const key = effectivePrimaryKey(s, t) ?? [];
    const nullable = t.available_columns.filter((c) => key.includes(c.field) && c.nullable).map((c) => c.field);
    if (nullable.length) {
      warnings.push(`schema "${s.name}": primary key column${nullable.length > 1 ? 's' : ''} ${nullable.join(', ')} ${nullable.length > 1 ? 'are' : 'is'} nullable: null values can cause deduplication issues`);
    }
  }
  return warnings;
}

export function throwIfAny(details: Detail[]): void {
  if (details.length) throw new ApiError(400, 'validation_error', details.map((d) => d.message).join('; '), details);
}

/**
 * Every rule for a create's schemas[]: each discovered table listed exactly once and no other, then
 * each entry's rules. Returns the warnings.
 */
export function validateSchemaEntries(entries: SchemaSettingsInput[], tables: DiscoveredTable[]): string[] {
  const known = new Map(tables.map((t) => [t.table, t]));
  const details: Detail[] = [];
  const seen = new Set<string>();
  const warnings: string[] = [];
  entries.forEach((e, i) => {
    const at = (f: string) => `payload.schemas.${i}.${f}`;
    const table = known.get(e.name);
    if (!table) details.push({ field: at('name'), message: `schema "${e.name}": no such table in the source` });
    if (seen.has(e.name)) details.push({ field: at('name'), message: `schema "${e.name}" is listed twice` });
    seen.add(e.name);
    details.push(...settingsRuleViolations(e, at));
    if (e.sync_type === 'linked') details.push(...linkedViolations(e, e.name, at));
    if (table) {
      details.push(...tableRuleViolations(e, table, at));
      warnings.push(...schemaWarnings(e, table));
    }
  });
  const missing = tables.filter((t) => !seen.has(t.table)).map((t) => t.table);
  if (missing.length) {
    details.push({
      field: 'payload.schemas',
      message: `every table the source has must be listed (should_sync: false to skip one); missing: ${missing.map((m) => `"${m}"`).join(', ')}`,
    });
  }
  throwIfAny(details);
  return warnings;
}
