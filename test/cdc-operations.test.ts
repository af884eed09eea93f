import { cdcFlushWaitMs } from '../activities/cdc';
import { lagStatus, presentCdc } from '../api/cdc-control';
import type { CdcMirrorRow } from '../catalog/cdc';
import type { SourceRow } from '../catalog/sources';
import { replicationClientConfig } from '../connectors/postgres/cdc-stream';

/** CDC operating rules that need no running stream: flush waits, lag thresholds, the replication session. */
describe('CDC operations', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test('a change waits at most the flush interval, capped by the fastest CDC table frequency', () => {
    expect(cdcFlushWaitMs([{ sync_frequency: '1min' }, { sync_frequency: '1hour' }], 500)).toBe(500);
    expect(cdcFlushWaitMs([{ sync_frequency: '1min' }, { sync_frequency: '1hour' }], 5 * 60_000)).toBe(60_000);
    expect(cdcFlushWaitMs([{ sync_frequency: '15min' }], 60 * 60_000)).toBe(15 * 60_000);
    expect(cdcFlushWaitMs([{ sync_frequency: 'never' }], 2_000)).toBe(2_000);
    process.env.TRIBUTARY_CDC_FLUSH_MS = '90000';
    expect(cdcFlushWaitMs([{ sync_frequency: '1min' }])).toBe(60_000);
  });

  test('slot lag: ok below 1 GB, warning from 1 GB, critical from 10 GB; thresholds configurable; shown as warnings', () => {
    expect(lagStatus(null)).toBe('unknown');
    expect(lagStatus(1024 ** 3 - 1)).toBe('ok');
    expect(lagStatus(1024 ** 3)).toBe('warning');
    expect(lagStatus(10 * 1024 ** 3)).toBe('critical');
    process.env.TRIBUTARY_CDC_LAG_WARNING_BYTES = '1000';
    process.env.TRIBUTARY_CDC_LAG_CRITICAL_BYTES = '5000';
    expect([999, 1000, 4999, 5000].map(lagStatus)).toEqual(['ok', 'warning', 'warning', 'critical']);
    const mirror = { slot_name: 's', publication_name: 'p', checkpoint_lsn: null, status: 'Streaming', paused: false, changes_synced: 0, lag_checked_at: null, latest_error: null } as unknown as CdcMirrorRow;
    const source = { id: '00000000-0000-4000-8000-000000000001' } as SourceRow;
    expect(presentCdc(source, { ...mirror, lag_bytes: 2500 }).warnings).toEqual(['the slot holds back 2500 bytes of WAL (warning above 1000)']);
    expect(presentCdc(source, { ...mirror, lag_bytes: 7000 })).toMatchObject({ lag_status: 'critical', warnings: ['the slot holds back 7000 bytes of WAL (critical above 5000)'] });
    expect(presentCdc(source, { ...mirror, lag_bytes: 7000, paused: true }).warnings[0]).toMatch(/slot keeps every WAL segment/);
  });

  test('the replication session keeps the batch settings and takes a wal_sender_timeout when configured', () => {
    const config = { host: 'db', port: 5432, dbname: 'app', user: 'u', password: 'p', schema: 'public', sslmode: 'disable' as const };
    expect(replicationClientConfig(config).options).toBe('-c DateStyle=ISO,YMD -c TimeZone=UTC -c extra_float_digits=1 -c IntervalStyle=iso_8601');
    process.env.TRIBUTARY_CDC_WAL_SENDER_TIMEOUT_MS = '10000';
    expect(replicationClientConfig(config)).toMatchObject({ application_name: 'tributary-cdc', options: expect.stringMatching(/ -c wal_sender_timeout=10000$/) });
  });
});
