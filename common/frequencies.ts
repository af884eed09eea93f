/** Sync frequencies, as PostHog offers them. `never` keeps the schedule paused: only "sync now" runs it. */
export const SYNC_FREQUENCIES = ['never', '1min', '5min', '15min', '30min', '1hour', '6hour', '12hour', '24hour', '7day', '30day'] as const;
export type SyncFrequency = (typeof SYNC_FREQUENCIES)[number];
export const DEFAULT_SYNC_FREQUENCY: SyncFrequency = '6hour';

const MINUTE = 60_000;
const FREQUENCY_MS: Record<Exclude<SyncFrequency, 'never'>, number> = {
  '1min': MINUTE,
  '5min': 5 * MINUTE,
  '15min': 15 * MINUTE,
  '30min': 30 * MINUTE,
  '1hour': 60 * MINUTE,
  '6hour': 6 * 60 * MINUTE,
  '12hour': 12 * 60 * MINUTE,
  '24hour': 24 * 60 * MINUTE,
  '7day': 7 * 24 * 60 * MINUTE,
  '30day': 30 * 24 * 60 * MINUTE,
};

export function frequencyMs(f: SyncFrequency): number | undefined {
  return f === 'never' ? undefined : FREQUENCY_MS[f];
}

export const ONE_MINUTE_ONLY_FOR_CDC =
  'A 1-minute sync frequency is only available for CDC schemas. The fastest frequency for other sync types is 5 minutes.';
