import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What global-setup prepared for the test files: shared through a file, since jest runs them elsewhere. */
export interface TestState {
  databaseUrl: string;
  temporalCliPath: string;
  stripeMockPath: string;
  versitygwPath: string;
  pgDataDir?: string;
}

/** global-setup picks the file (one per test run) and exports its path to the test files. */
export function stateFile(): string {
  if (!process.env.TRIBUTARY_TEST_STATE) process.env.TRIBUTARY_TEST_STATE = path.join(os.tmpdir(), `tributary-test-state-${process.pid}.json`);
  return process.env.TRIBUTARY_TEST_STATE;
}

export function testEnv(): TestState {
  const file = process.env.TRIBUTARY_TEST_STATE;
  if (!file) throw new Error('TRIBUTARY_TEST_STATE is not set: run the tests with `npm test` (jest global setup)');
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TestState;
}
