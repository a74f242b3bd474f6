import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';

import yaml from 'js-yaml';
import { validate as isCronExpression } from 'node-cron';

import { validateAgainst } from '../api/index.js';
import { ManifestError } from '../errors.js';
import { goArchitecture } from '../platform.js';
import { ConfigFileSchema, NODE_NAME_PATTERN, type ConfigFile } from './schema.js';

export const DEFAULT_CONFIG_FILE = '/etc/bpfd/config.yaml';

const CONFIG_ERROR = 'BPFD_E_CONFIG';
const MAX_CONFIG_BYTES = 1024 * 1024;
const COMMAND_LINE = 'command line';

/** The daemon's settings: the config file's keys with every default filled in. */
export interface Config {
  nodeName: string;
  nodeLabels: Record<string, string>;
  manifestDir: string;
  /** Unset: status sidecars are written beside the manifests. */
  statusDir?: string;
  bpffsRoot: string;
  stateDir: string;
  secretsDir: string;
  registries: { insecure: string[]; caFiles: Record<string, string> };
  metrics: { listen: string };
  resync: string;
  xdpMode: 'native' | 'skb';
  xdpModeByInterface: Record<string, 'native' | 'skb'>;
  bytecodeRoots: string[];
  strictModes: boolean;
  logLevel: string;
  /** Absolute path of the config file that was read, if one was. */
  configFile?: string;
}

/** Command-line flags; each wins over the config file. Paths are relative to the cwd. */
export interface ConfigOverrides {
  manifestDir?: string;
  statusDir?: string;
  bpffsRoot?: string;
  nodeName?: string;
}

export interface LoadConfigOptions {
  /** A config file named explicitly must exist. */
  file?: string;
  overrides?: ConfigOverrides;
  /** The file read when none is named, and skipped when missing; DEFAULT_CONFIG_FILE. */
  defaultFile?: string;
}

/**
 * Read the config file (the default one only if it exists), check it as strictly as a
 * manifest, fill in defaults and apply the overrides. Directories in the file are resolved
 * against the file's own directory. Throws a ManifestError with code BPFD_E_CONFIG.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const explicit = options.file !== undefined;
  const file = resolve(options.file ?? options.defaultFile ?? DEFAULT_CONFIG_FILE);

  const overrides = options.overrides ?? {};
  checkOverrides(overrides);

  const fromFile = await readConfigFile(file, explicit);
  const config = withDefaults(fromFile ?? {}, dirname(file));
  if (fromFile !== undefined) config.configFile = file;
  return applyOverrides(config, overrides);
}

/**
 * The node's labels as `nodeselector` sees them: the configured ones plus
 * `kubernetes.io/hostname`, `kubernetes.io/os` and `kubernetes.io/arch`, which always win.
 */
export function builtinNodeLabels(config: Config): Record<string, string> {
  return {
    ...config.nodeLabels,
    'kubernetes.io/hostname': config.nodeName,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': goArchitecture(process.arch),
  };
}

async function readConfigFile(file: string, explicit: boolean): Promise<ConfigFile | undefined> {
  const text = await readConfigText(file, explicit);
  if (text === undefined) return undefined;

  const content = parseYaml(file, text);
  if (content === undefined || content === null) return {};

  const errors = validateAgainst(ConfigFileSchema, content, { file, code: CONFIG_ERROR });
  if (errors.length === 0) errors.push(...valueErrors(file, content as ConfigFile));
  throwIfAny(file, errors);
  return content as ConfigFile;
}

async function readConfigText(file: string, explicit: boolean): Promise<string | undefined> {
  try {
    const stats = await stat(file);
    if (!stats.isFile()) throw configError(file, 'is not a regular file');
    if (stats.size > MAX_CONFIG_BYTES) {
      throw configError(file, `is ${stats.size} bytes; a config file may have at most 1 MiB`);
    }
    return await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ManifestError) throw error;
    if (!explicit && hasCode(error, 'ENOENT')) return undefined;
    if (hasCode(error, 'ENOENT')) throw configError(file, 'does not exist');
    throw configError(file, `cannot be read: ${(error as Error).message}`);
  }
}

function parseYaml(file: string, text: string): unknown {
  try {
    return yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (error) {
    if (!(error instanceof yaml.YAMLException)) throw error;
    const line = error.mark ? ` at line ${error.mark.line + 1}` : '';
    throw configError(file, `is not valid YAML${line}: ${error.reason}`);
  }
}

/** Rules beyond the schema: the cron expression and port numbers. */
function valueErrors(file: string, content: ConfigFile): ManifestError[] {
  const errors: ManifestError[] = [];
  if (content.resync !== undefined && !isCronExpression(content.resync)) {
    const message =
      `${JSON.stringify(content.resync)} is not a valid cron expression; ` +
      'write 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, ' +
      'e.g. "*/5 * * * *"';
    errors.push(configError(file, message, 'resync'));
  }

  const listen = content.metrics?.listen;
  if (listen !== undefined && !hasValidPort(listen)) {
    errors.push(configError(file, 'port must be between 1 and 65535', 'metrics.listen'));
  }
  content.registries?.insecure?.forEach((registry, position) => {
    if (registry.includes(':') && !hasValidPort(registry)) {
      const fieldPath = `registries.insecure[${position}]`;
      errors.push(configError(file, 'port must be between 1 and 65535', fieldPath));
    }
  });
  return errors;
}

function hasValidPort(hostPort: string): boolean {
  const port = Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Everything but the node name, which may come from a flag or the host name. */
type ConfigWithoutNode = Omit<Config, 'nodeName'> & { nodeName?: string };

function withDefaults(file: ConfigFile, baseDir: string): ConfigWithoutNode {
  const directory = (path: string) => resolve(baseDir, path);
  return {
    nodeName: file.nodeName,
    nodeLabels: { ...file.nodeLabels },
    manifestDir: directory(file.manifestDir ?? '/etc/bpfd/programs.d'),
    statusDir: file.statusDir === undefined ? undefined : directory(file.statusDir),
    bpffsRoot: directory(file.bpffsRoot ?? '/sys/fs/bpf/bpfd'),
    stateDir: directory(file.stateDir ?? '/var/lib/bpfd'),
    secretsDir: directory(file.secretsDir ?? '/etc/bpfd/secrets'),
    registries: {
      insecure: [...(file.registries?.insecure ?? [])],
      caFiles: mapValues(file.registries?.caFiles ?? {}, directory),
    },
    metrics: { listen: file.metrics?.listen ?? '127.0.0.1:9474' },
    resync: file.resync ?? '*/5 * * * *',
    xdpMode: file.xdpMode ?? 'native',
    xdpModeByInterface: { ...file.xdpModeByInterface },
    bytecodeRoots: [...(file.bytecodeRoots ?? [])],
    strictModes: file.strictModes ?? true,
    logLevel: file.logLevel ?? 'info',
  };
}

/** The host name, lower-cased as the kubelet does. */
function defaultNodeName(): string {
  const name = hostname().toLowerCase();
  if (!isNodeName(name)) {
    const message =
      `host name ${JSON.stringify(name)} is not a valid node name; ` +
      'set nodeName in the config file or pass --node-name';
    throw configError(COMMAND_LINE, message, 'nodeName');
  }
  return name;
}

function checkOverrides(overrides: ConfigOverrides): void {
  for (const flag of ['manifestDir', 'statusDir', 'bpffsRoot'] as const) {
    if (overrides[flag] === '') throw configError(COMMAND_LINE, 'must not be empty', flag);
  }
  if (overrides.nodeName !== undefined && !isNodeName(overrides.nodeName)) {
    const message = 'must be a Kubernetes node name (lower-case DNS-1123 subdomain)';
    throw configError(COMMAND_LINE, message, 'nodeName');
  }
}

/** Flags win; their paths are relative to the working directory. */
function applyOverrides(config: ConfigWithoutNode, overrides: ConfigOverrides): Config {
  const fromCwd = (path: string | undefined) => (path === undefined ? undefined : resolve(path));
  return {
    ...config,
    nodeName: overrides.nodeName ?? config.nodeName ?? defaultNodeName(),
    manifestDir: fromCwd(overrides.manifestDir) ?? config.manifestDir,
    statusDir: fromCwd(overrides.statusDir) ?? config.statusDir,
    bpffsRoot: fromCwd(overrides.bpffsRoot) ?? config.bpffsRoot,
  };
}

function isNodeName(name: string): boolean {
  return name.length <= 253 && NODE_NAME_PATTERN.test(name);
}

function throwIfAny(file: string, errors: ManifestError[]): void {
  if (errors.length === 0) return;
  if (errors.length === 1) throw errors[0];

  const lines = errors.map((error) => `  - ${error.message}`);
  throw configError(file, `has ${errors.length} problems:\n${lines.join('\n')}`);
}

function configError(file: string, message: string, fieldPath?: string): ManifestError {
  return new ManifestError(message, { file, fieldPath }, CONFIG_ERROR);
}

function mapValues<T, U>(record: Record<string, T>, change: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, change(value)]));
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}
