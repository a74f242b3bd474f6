/** A small argument parser: `--flag value`, `--flag=value`, boolean switches, positionals. */
import { BpfdError } from '../errors.js';

export class UsageError extends BpfdError {
  constructor(message: string) {
    super('BPFD_E_USAGE', message);
  }
}

export interface ParsedArgs {
  positionals: string[];
  values: Map<string, string>;
  switches: Set<string>;
}

export function parseArgs(
  argv: string[],
  spec: { values: string[]; switches: string[]; short?: Record<string, string> },
): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], values: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (spec.short?.[arg]) arg = spec.short[arg];
    if (!arg.startsWith('--') || arg === '--') {
      parsed.positionals.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (spec.switches.includes(name) && inline === undefined) {
      parsed.switches.add(name);
    } else if (spec.values.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      parsed.values.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return parsed;
}
