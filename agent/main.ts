#!/usr/bin/env node
// hozo-agent: the backup box's side of Hōzō. `serve` is the SSH forced command of the controllers' keys
// (command="hozo-agent serve --config /etc/hozo-agent/config.json",restrict); `idle-check` runs from a timer on the box.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HozoError } from '../src/errors.js';
import { shownName } from '../src/config/shown.js';
import type { AgentConfig } from './config.js';
import { checkAgentPathsInUse, DEFAULT_AGENT_CONFIG_PATH, loadAgentConfigCached } from './config-cache.js';
import { AgentExit, createContext } from './context.js';
import { CONTROLLER_NAME, scopedConfig } from './scope.js';
import { PROTOCOL } from './command.js';
import { AGENT_VERSION, serve } from './serve.js';

export const USAGE = `usage: hozo-agent <command> [--config FILE] [--controller NAME]

commands:
  serve          the SSH forced command: runs the request in $SSH_ORIGINAL_COMMAND
  idle-check     power the box off if no controller has used it for idlePoweroffMinutes (run by a timer)
  prune [--dry-run]  the box's retention over all its roots (run by a timer; also for appendOnly keys' boxes)
  check-config   validate the config and print it with defaults filled in
  --version      print the version

--config FILE    default ${DEFAULT_AGENT_CONFIG_PATH}
--controller NAME  serve: the key's own section of the config (controllers.NAME: its roots, leases, limits)

requests accepted by serve (SSH_ORIGINAL_COMMAND):
${Object.values(PROTOCOL)
  .map((l) => `  ${l}`)
  .join('\n')}
`;

interface Args {
  readonly command: string | undefined;
  readonly config: string;
  /** serve: the per-controller section of the key (agent/scope.ts). */
  readonly controller?: string;
  /** prune: --dry-run */
  readonly dryRun?: boolean;
  /** `<command> --help` */
  readonly help?: boolean;
}

/** `hozo-agent <command> --help`. */
export const COMMAND_HELP: Record<string, string> = {
  serve:
    'usage: hozo-agent serve [--config FILE] [--controller NAME]\n\nThe SSH forced command of a controller\'s key (command="hozo-agent serve …",restrict): runs the one request in\n$SSH_ORIGINAL_COMMAND (see hozo-agent --help for the requests), confined to the roots of the config (or of the\nkey\'s --controller section), and logs it. Exit 0 done, 1 failed, 2 refused, 3 not now (shutting down, busy).\n',
  'idle-check':
    'usage: hozo-agent idle-check [--config FILE]\n\nRun by a timer on the box: powers it off when no controller has used it for idlePoweroffMinutes and nothing\nholds it (leases, receives, a scrub).\n',
  prune:
    "usage: hozo-agent prune [--dry-run] [--config FILE]\n\nThe box's own retention over every root of every section, by the time the box received each snapshot (never\nthe newest, never a held base). Run by the box's timer; --dry-run lists what would go.\n",
  'check-config':
    'usage: hozo-agent check-config [--config FILE]\n\nValidates the config and prints it with defaults filled in; exit 1 with every problem listed.\n',
};

function parseArgs(argv: readonly string[]): Args | string {
  let command: string | undefined;
  let config = DEFAULT_AGENT_CONFIG_PATH;
  let controller: string | undefined;
  let dryRun = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      if (command === undefined) command = '--help';
      else help = true;
    } else if (a === '--dry-run') {
      dryRun = true;
    } else if (a === '--controller') {
      const v = argv[++i];
      if (v === undefined || !CONTROLLER_NAME.test(v)) return '--controller needs a name (1-32 of a-z 0-9 _ - starting with a letter)';
      controller = v;
    } else if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) return '--config needs a file';
      config = v;
    } else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else if (command === undefined) command = a;
    else return `unexpected argument ${shownName(a)}`;
  }
  return { command, config, ...(controller !== undefined ? { controller } : {}), ...(dryRun ? { dryRun } : {}), ...(help ? { help } : {}) };
}

/** The config (from the validated-config cache when the file is unchanged; `full`: always validated now). */
async function load(path: string, err: (t: string) => void, full = false): Promise<AgentConfig | undefined> {
  try {
    const config = full ? (await import('./config.js')).loadAgentConfig(path) : (await loadAgentConfigCached(path)).config;
    // Also for a config taken from the cache: the file system may have changed since (a symlink, a FIFO).
    checkAgentPathsInUse(config, path);
    return config;
  } catch (e) {
    const h = e instanceof HozoError && e.hint !== undefined ? `\nhint: ${e.hint}` : '';
    err(`hozo-agent: ${(e as Error).message}${h}\n`);
    return undefined;
  }
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const err = (t: string) => void process.stderr.write(t);
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    err(`hozo-agent: ${args}\n(hozo-agent --help for usage)\n`);
    return AgentExit.REFUSED;
  }
  if (args.help === true) {
    const c = args.command!;
    // Own keys only: `constructor --help` is not Object's constructor.
    const request = Object.hasOwn(PROTOCOL, c) ? PROTOCOL[c] : undefined;
    if (Object.hasOwn(COMMAND_HELP, c)) process.stdout.write(COMMAND_HELP[c]!);
    else if (request !== undefined)
      process.stdout.write(`${c} is a request to hozo-agent serve (sent over SSH by the controller, never run by hand):\n  ${request}\n`);
    else {
      err(`hozo-agent: unknown command ${shownName(c)}\n(hozo-agent --help for usage)\n`);
      return AgentExit.REFUSED;
    }
    return AgentExit.OK;
  }
  switch (args.command) {
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`hozo-agent ${AGENT_VERSION}\n`);
      return AgentExit.OK;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return AgentExit.OK;
    case 'serve': {
      // Unset (an interactive login, or run by hand) is refused by serve like any bad request, and logged.
      const config = await load(args.config, err);
      if (config === undefined) return AgentExit.FAILED;
      const scoped = scopedConfig(config, args.controller);
      if (typeof scoped === 'string') {
        // Nothing is done for a key whose section is missing (or missing from its command=): refused and logged.
        const ctx = createContext(config);
        ctx.log.write(`refused ${JSON.stringify((env['SSH_ORIGINAL_COMMAND'] ?? '(no command)').slice(0, 200))}: ${scoped}`);
        err(`hozo-agent: refused: ${scoped}\n`);
        return AgentExit.REFUSED;
      }
      return serve(createContext(scoped, args.controller !== undefined ? { controller: args.controller } : {}), env['SSH_ORIGINAL_COMMAND']);
    }
    case 'idle-check': {
      const config = await load(args.config, err);
      if (config === undefined) return AgentExit.FAILED;
      return (await import('./lifecycle.js')).idleCheck(createContext(config));
    }
    case 'prune': {
      // The box's own timer: its retention over every root of every section, whatever a key may ask for itself
      // (appendOnly keys may not prune). The same request path as over SSH, so it is parsed and logged alike.
      const config = await load(args.config, err);
      if (config === undefined) return AgentExit.FAILED;
      const box = { ...config, appendOnly: false, controllers: {} };
      return serve(createContext(box), args.dryRun ? 'prune --dry-run' : 'prune');
    }
    case 'check-config': {
      const config = await load(args.config, err, true);
      if (config === undefined) return AgentExit.FAILED;
      process.stdout.write(JSON.stringify(config, null, 2) + '\n');
      return AgentExit.OK;
    }
    default:
      err(`hozo-agent: ${args.command === undefined ? 'no command given' : `unknown command ${shownName(args.command)}`}\n(hozo-agent --help for usage)\n`);
      return AgentExit.REFUSED;
  }
}

// Run when executed (also through the npm bin symlink), not when imported by tests.
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`hozo-agent: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = AgentExit.FAILED;
    },
  );
}
