import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { bundleWorkflowsApart } from '../temporal/workflow-bundle';
import { historyFromFileText } from './support/history-files';

/**
 * Workflows that run for months (CDC mirrors, webhook workflows), and the alert check its schedule starts every
 * minute (one is nearly always in flight at a deploy), replay their history on whatever code
 * the worker runs after a deploy: a change that schedules other commands than the recorded ones breaks
 * them (a non-determinism error, the workflow stuck). These histories were recorded from
 * test/long-lived-workflows.e2e.test.ts and test/destination-delivery.e2e.test.ts (`npm run record-histories`); each
 * must replay on today's code.
 * After an intentional, incompatible change (guarded with `patched()` for the runs in flight), re-record.
 */
const DIR = path.join(__dirname, 'histories');
Runtime.install({ logger: new DefaultLogger('WARN') }); // the replay worker's INFO lines say nothing a failure would not
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

describe('replaying recorded workflow histories', () => {
  test('the recordings cover each long-lived workflow, a continue-as-new and the mirror signals', () => {
    const text = files.map((f) => fs.readFileSync(path.join(DIR, f), 'utf8')).join('\n');
    for (const type of ['cdcSource', 'webhookEvents', 'syncSchema', 'deliverDestination', 'watchAlerts']) expect(text).toContain(`"name": "${type}"`);
    for (const signal of ['pause', 'resume', 'tablesChanged', 'eventsReceived', 'destinationChanged']) expect(text).toContain(`"signalName": "${signal}"`);
    expect(text).toContain('workflowExecutionContinuedAsNewEventAttributes');
  });

  test('every recorded history replays on the current workflow code', async () => {
    const histories = files.map((f) => {
      const history = historyFromFileText(fs.readFileSync(path.join(DIR, f), 'utf8'));
      return { workflowId: path.basename(f, '.json'), history };
    });
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await bundleWorkflowsApart() }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
