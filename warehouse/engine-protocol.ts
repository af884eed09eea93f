/** Messages between the platform (engine.ts) and the embedded warehouse engine's process (engine-process.ts). */
import type { ClickHouseSettings, CommandResult } from '@clickhouse/client';

export interface EngineRequest {
  id: number;
  /**
   * Which lane of sessions runs it (engine-process.ts): `main` the platform's short work (DDL, batch inserts,
   * lookups), `load` streaming loads that last as long as their source, `readonly` users' queries
   * (the user query limits, then readonly = 1, for the sessions' whole life).
   */
  session: 'main' | 'load' | 'readonly';
  op: 'query' | 'command' | 'ping';
  query?: string;
  query_id?: string;
  clickhouse_settings?: ClickHouseSettings;
  query_params?: Record<string, unknown>;
}

export interface EngineAnswer {
  id: number;
  ok: true;
  bytes?: Uint8Array;
  summary?: CommandResult['summary'];
}

export interface EngineFailure {
  id: number;
  ok: false;
  message: string;
  /** ClickHouse's error code and name, when the engine gave them. */
  code?: string;
  errorType?: string;
}

/** Sent once, when the engine has (or could not) open its data dir. */
export type EngineStatus = { type: 'ready' } | { type: 'failed'; message: string };

export type EngineReply = EngineStatus | EngineAnswer | EngineFailure;

/** The env var the engine reads its named collections' key from (engine.ts sets it, for that process only). */
export const NAMED_COLLECTIONS_KEY_ENV = 'TRIBUTARY_ENGINE_NAMED_COLLECTIONS_KEY';
