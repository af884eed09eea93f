import { ensureGoTool, type GoTool } from './go-tools';

/**
 * The Temporal CLI (it carries the dev server). v1.5.1 is pinned because it is the newest tag whose
 * go.mod has no `replace` directive: later tags cannot be `go install`ed.
 */
const TEMPORAL_CLI: GoTool = { name: 'temporal', module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1', envVar: 'TEMPORAL_CLI_PATH' };

export function ensureTemporalCli(opts: { cliPath?: string; log?: (msg: string) => void } = {}): Promise<string> {
  return ensureGoTool(TEMPORAL_CLI, { explicitPath: opts.cliPath, log: opts.log });
}
