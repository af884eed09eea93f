import { ApplicationFailure, Context } from '@temporalio/activity';
import { readableChangeHorizon } from '../catalog/change-batches';
import { destinationVersion, saveDeliveryCheckpoint, saveDestinationHealth } from '../catalog/destination-delivery';
import { getDestination, type DestinationRow } from '../catalog/destinations';
import { matchChanges } from '../destinations/filter';
import { advance, charge, DEFAULT_HEALTH_PARAMS, maySend, parseHealth, type Health, type HealthParams, type HealthTransition } from '../destinations/health';
import { changeId } from '../destinations/signing';
import { buildWebhookRequest, sendRequest, type HttpOutcome } from '../destinations/http-request';
import { outgoingPolicyFromEnv } from '../destinations/outgoing-network';
import { classifyOutcome, MAX_ATTEMPTS, retryDelayMs } from '../destinations/retry';
import { changeContext, renderChange, renderErrorMessage } from '../destinations/template';
import type { DestinationSecrets } from '../destinations/types';
import { readChanges, type ChangePosition, type ChangeRow } from '../warehouse/change-log';
import { DestinationActivity, type DestinationMetric } from '../warehouse/destination-activity';
import { Heartbeats, type ActivityDeps, type DeliverySettings } from './context';

/**
 * Delivery of the change log to one destination (workflows/deliver-destination.ts runs it): a long-lived activity
 * that reads from the destination's checkpoint up to the readable horizon, keeps what the filters select, renders
 * each change's body, sends (one change per request, or `batch_size` consecutive ones), retries, charges the
 * destination's health, logs, counts, and checkpoints in the catalog.
 *
 * The guarantees:
 * - In order: changes go out strictly in the log's order, one request at a time, so a later change of a key is
 *   never sent before an earlier one has been answered.
 * - Nothing skipped: the checkpoint only moves past a change that was delivered (2xx), rejected (a 4xx other
 *   than 408/429: logged, counted `rejected`, not retried: the receiver has answered) or filtered out. A change
 *   whose attempts ran out (up to MAX_ATTEMPTS on 408/429/5xx/network errors, backing off, honouring
 *   Retry-After; one on a 3xx or a template that fails on it) is kept and tried again after the retry pause,
 *   while the failures drain the health bucket until the destination is disabled; it then waits in the log.
 * - At least once: a worker killed mid-stream resumes from the catalog's checkpoint (saved at least every
 *   SAVE_MS); what was sent since goes again with the same webhook-id.
 */

/** Changes read per query of the change log. */
const PAGE = 2_000;
/** An idle delivery looks for new changes this often (the latency target is p99 ≤ 2 s). */
const IDLE_POLL_MS = 100;
/** The checkpoint is saved at least this often while changes are delivered. */
const SAVE_MS = 250;
/** Logs and metrics are written at least this often. */
const FLUSH_MS = 1_000;
/** One activity delivers this long, then hands back to the workflow (which continues as new now and then). */
const ACTIVITY_MS = 30 * 60_000;
/** Past the last change of a batch: the whole batch is done. */
const END_OF_BATCH = 4_294_967_295;

const DEFAULT_SETTINGS: DeliverySettings = { batchLeaseMs: 600_000, cooldownMs: DEFAULT_HEALTH_PARAMS.cooldownMs, retryPauseMs: 30_000 };

export type DeliveryPlan = { action: 'gone' } | { action: 'deliver' } | { action: 'wait'; waitMs: number | null; state: string };

export interface DeliveryResult {
  /** Why the activity handed back. */
  ended: 'time' | 'disabled' | 'edited';
  delivered: number;
  checkpoint: string;
}

const after = (a: ChangePosition, b: ChangePosition) => a.batch > b.batch || (a.batch === b.batch && a.seq > b.seq);
const positionOf = (c: ChangeRow): ChangePosition => ({ batch: BigInt(c.batch), seq: Number(c.seq) });
const showPosition = (p: ChangePosition) => `${p.batch}:${p.seq}`;

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

function outcomeSummary(o: HttpOutcome): { status: number | null; error: string | null; response: string | null } {
  if (o.kind === 'response') return { status: o.status, error: null, response: o.body };
  return { status: null, error: o.error, response: null };
}

export function createDeliveryActivities(deps: ActivityDeps) {
  const { catalog, warehouse, log } = deps;
  const settings: DeliverySettings = { ...DEFAULT_SETTINGS, ...deps.delivery };
  const params: HealthParams = { ...DEFAULT_HEALTH_PARAMS, cooldownMs: settings.cooldownMs };

  /** A change of health state: logged on the platform and in the destination's log, counted, stored. False: the row was edited meanwhile. */
  async function recordTransition(
    d: Pick<DestinationRow, 'id' | 'name'>,
    version: string,
    health: Health,
    t: HealthTransition,
    activity: DestinationActivity,
    latestError?: string | null,
  ): Promise<boolean> {
    const level = t.to === 'disabled' || t.to === 'disabled_temporarily' ? 'error' : t.to === 'degraded' ? 'warn' : 'info';
    const message = `health ${t.from} → ${t.to}: ${t.reason}`;
    log[level]({ destinationId: d.id, destination: d.name, from: t.from, to: t.to, disabledUntil: health.disabledUntil }, `destination ${message}`);
    activity.log({ level, message });
    if (t.to === 'disabled' || t.to === 'disabled_temporarily') activity.count('disabled');
    return saveDestinationHealth(catalog.db, d.id, version, health, latestError);
  }

  return {
    /** What the workflow does next: deliver, wait (disabled, or cooling down: for how long), or end (deleted). */
    async planDelivery(destinationId: string): Promise<DeliveryPlan> {
      const version = await destinationVersion(catalog.db, destinationId);
      const d = await getDestination(catalog.db, destinationId);
      if (!d || version === undefined) return { action: 'gone' };
      if (!d.enabled) return { action: 'wait', waitMs: null, state: 'disabled by the user' };
      const now = Date.now();
      const step = advance(parseHealth(d.health, d.health_state, d.disabled_until, now, params), now, params);
      if (step.transition) {
        const activity = new DestinationActivity(warehouse, d.id);
        await recordTransition(d, version, step.health, step.transition, activity);
        await activity.flush().catch((err) => log.warn({ err, destinationId }, 'destination log not written'));
      }
      const h = step.health;
      if (h.state === 'disabled') return { action: 'wait', waitMs: null, state: h.state };
      if (h.state === 'disabled_temporarily') return { action: 'wait', waitMs: Math.max(1, (h.disabledUntil ?? now) - now), state: h.state };
      return { action: 'deliver' };
    },

    /**
     * Delivers until cancelled (the destination changed), disabled by its health, or ACTIVITY_MS is up. Heartbeats
     * carry the checkpoint; the catalog holds it for the next attempt.
     */
    async deliverChanges(destinationId: string): Promise<DeliveryResult> {
      const act = Context.current();
      // Stops on a cancellation (the destination changed), or when a write finds the row edited meanwhile.
      const halt = new AbortController();
      const cancelled = act.cancellationSignal;
      if (cancelled.aborted) halt.abort();
      else cancelled.addEventListener('abort', () => halt.abort(), { once: true });
      const stop = halt.signal;
      let edited = false;
      const noticeEdit = (ok: boolean) => {
        if (ok) return;
        edited = true;
        halt.abort();
      };
      // The version first: an edit after it makes the first write fail (and the delivery start over).
      const version = await destinationVersion(catalog.db, destinationId);
      const d = await getDestination(catalog.db, destinationId);
      if (!d || version === undefined) throw ApplicationFailure.nonRetryable(`Destination ${destinationId} no longer exists`, 'NotFound');
      const config = d.config;
      const secrets: DestinationSecrets = d.secrets ? catalog.secrets.open<DestinationSecrets>(d.secrets) : { headers: {}, signing_secret: '' };
      const policy = outgoingPolicyFromEnv(process.env);
      const activity = new DestinationActivity(warehouse, d.id);
      const batchSize = Math.max(1, config.batch_size || 1);
      const endAt = Date.now() + ACTIVITY_MS;

      let health = parseHealth(d.health, d.health_state, d.disabled_until, Date.now(), params);
      let healthDirty = false;
      let pos: ChangePosition = { batch: BigInt(d.checkpoint_batch), seq: Number(d.checkpoint_seq) };
      let saved = pos;
      let lastSave = Date.now();
      let lastFlush = Date.now();
      const progress = { checkpoint: showPosition(pos), delivered: 0, health: health.state as string };
      const hb = new Heartbeats(act);
      hb.beat(progress);

      const saveCheckpoint = async (force = false) => {
        if (!force && Date.now() - lastSave < SAVE_MS) return;
        if (edited) return;
        if (after(pos, saved)) {
          const ok = await saveDeliveryCheckpoint(catalog.db, d.id, version, pos.batch, pos.seq);
          noticeEdit(ok);
          if (ok) saved = pos;
        }
        if (healthDirty && !edited) {
          noticeEdit(await saveDestinationHealth(catalog.db, d.id, version, health));
          healthDirty = false;
        }
        lastSave = Date.now();
        progress.checkpoint = showPosition(saved);
        progress.health = health.state;
        hb.beat(progress);
      };
      const flush = async (force = false) => {
        if (!force && Date.now() - lastFlush < FLUSH_MS && activity.pending < 5_000) return;
        lastFlush = Date.now();
        await activity.flush().catch((err) => log.warn({ err, destinationId }, 'destination logs and metrics not written yet'));
      };

      /** Charges one attempt; a change of state is recorded at once. */
      const chargeAttempt = async (failed: boolean, durationMs: number, latestError: string | null) => {
        const step = charge(health, { failed, durationMs }, Date.now(), params);
        health = step.health;
        healthDirty = true;
        if (step.transition) {
          noticeEdit(await recordTransition(d, version, health, step.transition, activity, latestError));
          healthDirty = false;
        }
      };
      const count = (metric: DestinationMetric, n: number) => activity.count(metric, n);

      /**
       * Sends one request's changes until they are delivered or rejected ('done'), or delivery must stop
       * ('stop': cancelled, or the health disabled the destination). Never gives up on them otherwise.
       */
      const deliverGroup = async (group: ChangeRow[]): Promise<'done' | 'stop'> => {
        for (;;) {
          let items: { id: string; body: unknown }[] | undefined;
          let renderError: string | undefined;
          try {
            items = group.map((c) => {
              const ctx = changeContext(c);
              return { id: ctx.id, body: renderChange(config.body, ctx) };
            });
          } catch (err) {
            renderError = renderErrorMessage(err);
          }
          const ids = group.map((c) => changeId(c));
          let attempt = 0;
          let lastError = '';
          while (items && attempt < MAX_ATTEMPTS) {
            if (stop.aborted) return 'stop';
            attempt++;
            const req = buildWebhookRequest(config, secrets, items, Math.floor(Date.now() / 1000));
            const webhookId = req.headers['webhook-id'] ?? '';
            const o = await sendRequest(req, { timeoutMs: config.timeout_ms, policy });
            const kind = classifyOutcome(o);
            const summary = outcomeSummary(o);
            const base = { ...summary, duration_ms: o.durationMs, webhook_id: webhookId, change_ids: ids, attempt };
            if (kind === 'success') {
              activity.log({ ...base, level: 'info', message: `delivered ${ids.length} change${ids.length === 1 ? '' : 's'}` });
              count('succeeded', ids.length);
              await chargeAttempt(false, o.durationMs, null);
              return 'done';
            }
            if (kind === 'rejected') {
              // The receiver answered: not retried, not poor performance, passed (counted and logged).
              activity.log({ ...base, level: 'warn', message: `rejected with ${summary.status}: not retried` });
              count('rejected', ids.length);
              await chargeAttempt(false, 0, null); // however long it took: an answer is not poor performance
              return 'done';
            }
            lastError = summary.status !== null ? `HTTP ${summary.status}` : (summary.error ?? 'request failed');
            const retrying = kind === 'retry' && attempt < MAX_ATTEMPTS;
            activity.log({ ...base, level: retrying ? 'warn' : 'error', message: `attempt ${attempt} failed (${lastError})${retrying ? ': retrying' : ''}` });
            await chargeAttempt(true, o.durationMs, lastError);
            if (!maySend(health)) {
              count('failed', ids.length);
              return 'stop';
            }
            if (!retrying) break; // a 3xx is not retried at once
            count('retried', ids.length);
            await sleep(retryDelayMs(attempt, o, Math.random), stop);
          }
          if (renderError) {
            lastError = `the body template failed: ${renderError}`;
            activity.log({ level: 'error', message: lastError, change_ids: ids, error: renderError });
            await chargeAttempt(true, 0, lastError);
            if (!maySend(health)) {
              count('failed', ids.length);
              return 'stop';
            }
          }
          count('failed', ids.length);
          activity.log({
            level: 'error',
            message: `not delivered (${lastError}): kept, tried again in ${Math.round(settings.retryPauseMs / 1000)} s`,
            change_ids: ids,
            error: lastError,
          });
          // What is before this request is done: save it, then wait (an edit of the destination cancels the wait).
          await saveCheckpoint(true);
          await flush(true);
          await sleep(settings.retryPauseMs, stop);
          if (stop.aborted) return 'stop';
        }
      };

      let ended: DeliveryResult['ended'] = 'time';
      try {
        // A destination disabled meanwhile (or cooling down) does not send: the workflow waits.
        const start = advance(health, Date.now(), params);
        health = start.health;
        if (start.transition) noticeEdit(await recordTransition(d, version, health, start.transition, activity));
        if (!maySend(health) || !d.enabled) ended = 'disabled';

        outer: while (ended !== 'disabled' && !stop.aborted && Date.now() < endAt) {
          const horizon = await readableChangeHorizon(catalog.db, pos.batch, { leaseMs: settings.batchLeaseMs });
          if (horizon === pos.batch && pos.seq === END_OF_BATCH) {
            // Idle: time alone may make a degraded destination healthy again.
            const idle = advance(health, Date.now(), params);
            health = idle.health;
            if (idle.transition) noticeEdit(await recordTransition(d, version, health, idle.transition, activity));
            await saveCheckpoint(true);
            await flush();
            await sleep(IDLE_POLL_MS, stop);
            continue;
          }
          const page = await readChanges(warehouse, { after: pos, upTo: horizon, limit: PAGE, tables: config.filters?.tables, ops: config.filters?.operations });
          const matched = page.length ? await matchChanges(warehouse, config.filters, page) : [];
          let i = 0;
          while (i < page.length) {
            if (stop.aborted) break outer;
            if (!matched[i]) {
              count('filtered', 1);
              pos = positionOf(page[i]);
              i++;
              continue;
            }
            // Up to batch_size consecutive changes the filters keep (those they skip in between go with them).
            const group: ChangeRow[] = [];
            let j = i;
            let skipped = 0;
            while (j < page.length && group.length < batchSize) {
              if (matched[j]) group.push(page[j]);
              else skipped++;
              j++;
            }
            const r = await deliverGroup(group);
            if (r === 'stop') {
              if (!stop.aborted) ended = 'disabled';
              break outer;
            }
            count('filtered', skipped);
            pos = positionOf(page[j - 1]);
            progress.delivered += group.length;
            i = j;
            await saveCheckpoint();
            await flush();
          }
          // All of the readable log was read: the checkpoint passes the horizon's batches (filtered by table or operation).
          if (page.length < PAGE) {
            const end = { batch: horizon, seq: END_OF_BATCH };
            if (after(end, pos)) pos = end;
          }
          await saveCheckpoint();
          await flush();
        }
      } finally {
        try {
          await saveCheckpoint(true);
        } finally {
          await flush(true);
          hb.stop();
        }
      }
      cancelled.throwIfAborted();
      if (edited) ended = 'edited';
      return { ended, delivered: progress.delivered, checkpoint: showPosition(saved) };
    },
  };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
