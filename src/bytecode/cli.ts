/**
 * `bpfd image build` packs a BPF object into a bytecode image (an OCI image layout folder);
 * `bpfd image push` sends such a layout to a registry.
 */
import { parseArgs } from 'node:util';
import type { Readable, Writable } from 'node:stream';

import { BpfdError } from '../errors.js';
import { buildImageLayout } from './layout.js';
import { pushImageLayout } from './push.js';

const EXIT_USAGE = 64;
const PROGRAM_TYPES = ['xdp', 'tc', 'tracepoint'];
const MAX_PASSWORD_BYTES = 64 * 1024;

const HELP = `Usage: bpfd image <command>

Commands:
  build --object FILE --out DIR --type xdp|tc|tracepoint
        [--program-name NAME] [--section-name SECTION] [--arch ARCH]
      Pack a BPF object file into a bytecode image: an OCI image layout in DIR (new or
      empty) with one layer holding the object and the io.ebpf.* labels bpfd reads.
      Push DIR with skopeo, oras, buildah or 'bpfd image push'.

  push DIR REFERENCE [--insecure] [--ca-file PEM]
       [--username USER --password-stdin]
      Push the layout in DIR to REFERENCE (e.g. registry.example:5000/bytecode/xdp:v1).
      --insecure uses plain HTTP; --password-stdin reads the password from standard input.

Both print the image digest on success.
`;

export interface CommandStreams {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

class UsageError extends Error {}

/** Runs `bpfd image ...`; `argv` is what follows `image`. Returns the exit code. */
export async function imageCommand(
  argv: string[],
  streams: CommandStreams = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  },
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || ['--help', '-h', 'help'].includes(command)) {
      streams.stdout.write(HELP);
      return command === undefined ? EXIT_USAGE : 0;
    }
    if (command === 'build') return await buildCommand(rest, streams);
    if (command === 'push') return await pushCommand(rest, streams);
    throw new UsageError(`unknown command "image ${command}"`);
  } catch (error) {
    return report(error, streams);
  }
}

async function buildCommand(argv: string[], streams: CommandStreams): Promise<number> {
  const { values } = parse(argv, {
    object: { type: 'string' },
    out: { type: 'string' },
    type: { type: 'string' },
    'program-name': { type: 'string' },
    'section-name': { type: 'string' },
    arch: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return help(streams);

  const objectPath = required(values.object, '--object');
  const outDir = required(values.out, '--out');
  const programType = required(values.type, '--type');
  if (!PROGRAM_TYPES.includes(programType)) {
    throw new UsageError(`--type must be one of ${PROGRAM_TYPES.join(', ')}`);
  }

  const { manifestDigest } = await buildImageLayout({
    objectPath,
    outDir,
    programType,
    programName: values['program-name'] as string | undefined,
    sectionName: values['section-name'] as string | undefined,
    arch: values.arch as string | undefined,
  });
  streams.stdout.write(`${manifestDigest}\n`);
  return 0;
}

async function pushCommand(argv: string[], streams: CommandStreams): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      insecure: { type: 'boolean' },
      'ca-file': { type: 'string' },
      username: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return help(streams);
  if (positionals.length !== 2) throw new UsageError('push needs DIR and REFERENCE');
  if (values['password-stdin'] && values.username === undefined) {
    throw new UsageError('--password-stdin needs --username');
  }

  const username = values.username as string | undefined;
  const password = values['password-stdin'] ? await readPassword(streams.stdin) : undefined;
  const [layoutDir, url] = positionals;
  const { manifestDigest } = await pushImageLayout(layoutDir, url, {
    insecure: values.insecure === true,
    caFile: values['ca-file'] as string | undefined,
    username,
    password,
  });
  streams.stdout.write(`${manifestDigest}\n`);
  return 0;
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parse(argv: string[], options: OptionSpec, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function required(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** The whole of standard input, less one trailing newline. */
async function readPassword(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stdin) {
    const bytes = Buffer.from(chunk as Buffer);
    total += bytes.length;
    if (total > MAX_PASSWORD_BYTES) throw new UsageError('the password on stdin is too long');
    chunks.push(bytes);
  }
  const text = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (text === '') throw new UsageError('--password-stdin got an empty password');
  return text;
}

function help(streams: CommandStreams): number {
  streams.stdout.write(HELP);
  return 0;
}

function report(error: unknown, streams: CommandStreams): number {
  if (error instanceof UsageError) {
    streams.stderr.write(`bpfd image: ${error.message}\n\n${HELP}`);
    return EXIT_USAGE;
  }
  if (error instanceof BpfdError) {
    streams.stderr.write(`bpfd image: ${error.message} (${error.code})\n`);
    return 1;
  }
  throw error;
}
