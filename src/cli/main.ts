/** The `bpfd` command: dispatches to the subcommands. Returns the process exit code. */
import yaml from 'js-yaml';

import { jsonSchemas, PROGRAM_KINDS, validatePaths } from '../api/index.js';
import { imageCommand } from '../bytecode/index.js';
import { BpfdError } from '../errors.js';
import { parseArgs, UsageError, type ParsedArgs } from './args.js';
import { inspect, planCommand } from './inspect.js';
import { run } from './run.js';

const COMMON_VALUES = ['config', 'manifests', 'status-dir', 'bpffs-root', 'node-name'];
const OUTPUT_FORMATS: Record<string, string[]> = {
  plan: ['text', 'json'],
  status: ['table', 'json', 'yaml'],
  get: ['yaml', 'json'],
  schema: ['json', 'yaml'],
};

const HELP: Record<string, string> = {
  main: `Usage: bpfd <command> [options]

Commands:
  run                 run the daemon (--once: one reconcile, then exit)
  validate PATH...    check manifest files or dirs offline
  plan                show what a reconcile would change; changes nothing
  status              objects, hooks, chains and conditions
  get KIND NAME       one object's status and BpfProgram
  schema              JSON Schema of the four kinds
  image build|push    pack an object into a bytecode image; push it to a registry

Options of run, plan, status and get:
  --config FILE       node config (default /etc/bpfd/config.yaml)
  --manifests DIR     manifest dir (config: manifestDir)
  --status-dir DIR    where status sidecars go (config: statusDir)
  --bpffs-root DIR    bpffs dir the daemon owns (config: bpffsRoot)
  --node-name NAME    this node's name (config: nodeName)

Exit codes: 0 ok; 1 error (run --once: a selected object is not loaded;
validate: an invalid document); 2 plan has changes; 64 usage error.
Run 'bpfd <command> --help' for a command's own options.
`,
  run: `Usage: bpfd run [--once] [--log-format json|human] [common options]

Runs the daemon. With --once: one reconcile, writes status, exits 1 when a
selected object is not loaded or a document is invalid, else 0.
Signals: SIGHUP reloads the config and reconciles; SIGTERM/SIGINT stop the
daemon and leave every program attached and pinned.
`,
  validate: `Usage: bpfd validate PATH...

Checks manifest files (or dirs, recursively) against the bpfd.io/v1alpha1
schemas without root and without a kernel. Prints one line per problem;
exits 1 when any document is invalid, 0 otherwise.
`,
  plan: `Usage: bpfd plan [-o text|json] [common options]

Shows the actions a reconcile would take now. Changes nothing.
Exit codes: 0 nothing to change, 2 changes pending, 1 error.
`,
  status: `Usage: bpfd status [-o table|json|yaml] [common options]

Lists every object with its current condition and program id, and every
hook with its dispatcher chain (order, priority, proceedon, program ids).
`,
  get: `Usage: bpfd get KIND NAME [-o yaml|json] [common options]

Prints the object's status document and this node's BpfProgram.
`,
  schema: `Usage: bpfd schema [-o json|yaml]

Prints the JSON Schema of XdpProgram, TcProgram, TracepointProgram and
BpfProgram (for editors and kubeconform).
`,
};

function overrides(args: ParsedArgs) {
  return {
    manifestDir: args.values.get('manifests'),
    statusDir: args.values.get('status-dir'),
    bpffsRoot: args.values.get('bpffs-root'),
    nodeName: args.values.get('node-name'),
  };
}

function print(value: unknown, format: string): void {
  process.stdout.write(
    format === 'yaml' ? yaml.dump(value, { noRefs: true }) : JSON.stringify(value, null, 2) + '\n',
  );
}

async function validate(args: ParsedArgs): Promise<number> {
  if (args.positionals.length === 0) throw new UsageError('validate needs at least one PATH');
  const { files, errorCount } = await validatePaths(args.positionals);
  for (const file of files) {
    if (file.fileError) process.stdout.write(`${file.fileError.message}\n`);
    for (const document of file.documents) {
      for (const error of document.errors) process.stdout.write(`${error.message}\n`);
    }
  }
  const documents = files.reduce((sum, file) => sum + file.documents.length, 0);
  process.stdout.write(
    `${files.length} files, ${documents} documents, ${errorCount} error${errorCount === 1 ? '' : 's'}\n`,
  );
  return errorCount > 0 ? 1 : 0;
}

async function dispatch(command: string, argv: string[]): Promise<number> {
  const args = parseArgs(argv, {
    values: [...COMMON_VALUES, 'output', 'log-format'],
    switches: ['once', 'help'],
    short: { '-o': '--output', '-h': '--help' },
  });
  if (args.switches.has('help')) {
    process.stdout.write(HELP[command] ?? HELP.main);
    return 0;
  }
  const output = args.values.get('output');
  const formats = OUTPUT_FORMATS[command];
  if (output !== undefined && formats && !formats.includes(output)) {
    throw new UsageError(`-o ${output}: ${command} prints ${formats.join(', ')}`);
  }
  const common = { configFile: args.values.get('config'), overrides: overrides(args) };

  switch (command) {
    case 'run': {
      const logFormat = (args.values.get('log-format') ?? 'auto') as 'json' | 'human' | 'auto';
      if (!['json', 'human', 'auto'].includes(logFormat))
        throw new UsageError('--log-format is json or human');
      return run({ ...common, once: args.switches.has('once'), logFormat });
    }
    case 'validate':
      return validate(args);
    case 'plan':
      return planCommand(common, output ?? 'text');
    case 'status':
      return inspect(common, { output: output ?? 'table' });
    case 'get': {
      const [kind, name] = args.positionals;
      if (!kind || !name)
        throw new UsageError('get needs KIND and NAME, e.g. bpfd get XdpProgram my-prog');
      if (!PROGRAM_KINDS.some((known) => known.toLowerCase() === kind.toLowerCase())) {
        throw new UsageError(`get: unknown kind "${kind}"; kinds: ${PROGRAM_KINDS.join(', ')}`);
      }
      return inspect(common, { output: output ?? 'yaml', kind, name });
    }
    case 'schema':
      print(jsonSchemas(), output ?? 'json');
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP.main);
    return command ? 0 : 64;
  }
  // `image` has options of its own (src/bytecode/cli.ts).
  if (command === 'image') return imageCommand(rest);
  try {
    return await dispatch(command, rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bpfd: ${err.message}\n\n${HELP[command] ?? HELP.main}`);
      return 64;
    }
    const code = err instanceof BpfdError ? ` [${err.code}]` : '';
    process.stderr.write(`bpfd: ${err instanceof Error ? err.message : String(err)}${code}\n`);
    return 1;
  }
}

export { print };
