/**
 * Real-kernel test fixtures. Every fixture creates its own network namespaces, bpffs root and
 * temp dirs with names unique to this process, and `cleanup()` removes all of them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import yaml from 'js-yaml';

import { ensureBpffsRoot, kernelObjectIds, lookupPinnedMap } from '../../src/kernel/index.js';

const run = promisify(execFile);

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BPFD = path.join(REPO, 'bin/bpfd');
export const OBJECTS = path.join(REPO, 'dist/bpf');

let sequence = 0;
function uniqueName(prefix: string): string {
  sequence += 1;
  return `${prefix}${process.pid % 100000}x${sequence}`;
}

/** An integer setting from the environment; `fallback` when unset, an error when not positive. */
export function positiveIntegerFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer, not "${process.env[name]}"`);
  }
  return value;
}

export async function sh(command: string, args: string[]): Promise<string> {
  const { stdout } = await run(command, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Two namespaces joined by a veth pair with link-local addresses. */
export class VethPair {
  readonly nsA = uniqueName('bgta');
  readonly nsB = uniqueName('bgtb');
  readonly ifA = uniqueName('va');
  readonly ifB = uniqueName('vb');
  readonly subnet = 1 + (sequence % 250);
  readonly addrA = `169.254.${this.subnet}.1`;
  readonly addrB = `169.254.${this.subnet}.2`;

  async create(): Promise<this> {
    await sh('ip', ['netns', 'add', this.nsA]);
    await sh('ip', ['netns', 'add', this.nsB]);
    await sh('ip', [
      '-n',
      this.nsA,
      'link',
      'add',
      this.ifA,
      'type',
      'veth',
      'peer',
      'name',
      this.ifB,
      'netns',
      this.nsB,
    ]);
    await sh('ip', ['-n', this.nsA, 'addr', 'add', `${this.addrA}/24`, 'dev', this.ifA]);
    await sh('ip', ['-n', this.nsB, 'addr', 'add', `${this.addrB}/24`, 'dev', this.ifB]);
    await sh('ip', ['-n', this.nsA, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['-n', this.nsA, 'link', 'set', this.ifA, 'up']);
    await sh('ip', ['-n', this.nsB, 'link', 'set', this.ifB, 'up']);
    return this;
  }

  /** Adds a second veth pair, `name` and `peer`, both inside namespace A (removed with it). */
  async addPairInA(name: string, peer: string): Promise<void> {
    await sh('ip', ['-n', this.nsA, 'link', 'add', name, 'type', 'veth', 'peer', 'name', peer]);
  }

  /** Pings A from B; resolves with the number of replies. */
  async pingAFromB(count: number): Promise<number> {
    try {
      const out = await sh('ip', [
        'netns',
        'exec',
        this.nsB,
        'ping',
        '-c',
        String(count),
        '-i',
        '0.05',
        '-W',
        '1',
        this.addrA,
      ]);
      return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    } catch (err) {
      const out = String((err as { stdout?: string }).stdout ?? '');
      return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    }
  }

  async cleanup(): Promise<void> {
    await run('ip', ['netns', 'del', this.nsA]).catch(() => undefined);
    await run('ip', ['netns', 'del', this.nsB]).catch(() => undefined);
  }
}

/** A manifest dir, status dir, config file and bpffs root of our own. */
export class Workspace {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-test-'));
  readonly manifests = path.join(this.dir, 'programs.d');
  readonly configFile = path.join(this.dir, 'config.yaml');
  readonly bpffsRoot = `/sys/fs/bpf/${uniqueName('bpfdtest')}`;

  metricsPort = 0;

  private constructor() {
    fs.mkdirSync(this.manifests, { mode: 0o755 });
    fs.chmodSync(this.dir, 0o755);
    ensureBpffsRoot(this.bpffsRoot);
  }

  static async create(config: Record<string, unknown> = {}): Promise<Workspace> {
    const workspace = new Workspace();
    workspace.metricsPort = await freePort();
    workspace.writeConfig(config);
    return workspace;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}`;
  }

  /** Waits until `name` in `file` reports Loaded. */
  loaded(file: string, name: string): Promise<true> {
    return eventually(`${name} Loaded`, () => this.condition(file, name)?.type === 'Loaded');
  }

  /** The command-line flags that point bpfd at this workspace. */
  flags(): string[] {
    return [
      '--config',
      this.configFile,
      '--manifests',
      this.manifests,
      '--bpffs-root',
      this.bpffsRoot,
    ];
  }

  /** `bpfd run --once` on this workspace, in `netns` when given. */
  runOnce(netns?: string, env: Record<string, string> = {}): Promise<BpfdResult> {
    return bpfd(['run', '--once', ...this.flags()], netns, env);
  }

  writeConfig(config: Record<string, unknown>): void {
    const full = {
      nodeName: 'test-node',
      stateDir: path.join(this.dir, 'state'),
      metrics: { listen: `127.0.0.1:${this.metricsPort}` },
      ...config,
    };
    fs.writeFileSync(this.configFile, yaml.dump(full));
  }

  /** Writes a manifest atomically (write to a hidden name, then rename), like git does. */
  writeManifest(name: string, documents: object[] | string): string {
    const file = path.join(this.manifests, name);
    const text =
      typeof documents === 'string' ? documents : documents.map((d) => yaml.dump(d)).join('---\n');
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(temporary, text);
    fs.renameSync(temporary, file);
    return file;
  }

  removeManifest(name: string): void {
    fs.rmSync(path.join(this.manifests, name));
  }

  statusOf(name: string): Array<Record<string, any>> {
    const sidecar = path.join(
      this.manifests,
      name.replace(/\.ya?ml$/, (ext) => `.status${ext}`),
    );
    if (!fs.existsSync(sidecar)) return [];
    return (yaml.loadAll(fs.readFileSync(sidecar, 'utf8')) as Array<Record<string, any>>).filter(
      Boolean,
    );
  }

  /** The BpfProgram document of `name` in the sidecar of `file`. */
  bpfProgram(file: string, name: string): Record<string, any> | undefined {
    return this.statusOf(file).find(
      (d) => d.kind === 'BpfProgram' && d.metadata.labels.ownedByProgram === name,
    );
  }

  /** The current (last) condition type of an object's BpfProgram. */
  condition(file: string, name: string): { type: string; message: string } | undefined {
    return this.bpfProgram(file, name)?.status.conditions.at(-1);
  }

  programIdOf(file: string, name: string): number | undefined {
    const programs = this.bpfProgram(file, name)?.spec.programs ?? {};
    const ids = Object.keys(programs);
    return ids.length === 1 ? Number(ids[0]) : undefined;
  }

  mapPinOf(file: string, name: string, map: string): string {
    const programs = this.bpfProgram(file, name)?.spec.programs ?? {};
    return (Object.values(programs)[0] as Record<string, string>)[map];
  }

  pins(): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else found.push(full);
      }
    };
    if (fs.existsSync(this.bpffsRoot)) walk(this.bpffsRoot);
    return found;
  }

  async cleanup(): Promise<void> {
    // Links go with their pins; removing the tree detaches everything this test attached.
    fs.rmSync(this.bpffsRoot, { recursive: true, force: true });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface BpfdResult {
  code: number | null;
  signal?: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `bpfd <args>` inside namespace `netns` (keeping the host's bpffs) and waits for it. */
export function bpfd(
  args: string[],
  netns?: string,
  env: Record<string, string> = {},
): Promise<BpfdResult> {
  const child = spawnBpfd(args, netns, env);
  return collect(child);
}

export function spawnBpfd(
  args: string[],
  netns?: string,
  env: Record<string, string> = {},
): ChildProcess {
  const command = netns ? 'nsenter' : process.execPath;
  const argv = netns
    ? [`--net=/run/netns/${netns}`, process.execPath, BPFD, ...args]
    : [BPFD, ...args];
  return spawn(command, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
}

function collect(child: ChildProcess): Promise<BpfdResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
}

/** `bpfd run` as a daemon; `stop()` sends SIGTERM to this process only. */
export class Daemon {
  readonly child: ChildProcess;
  readonly done: Promise<BpfdResult>;

  constructor(
    workspace: Workspace,
    netns?: string,
    extraArgs: string[] = [],
    env: Record<string, string> = {},
  ) {
    this.child = spawnBpfd(
      ['run', ...workspace.flags(), '--log-format', 'json', ...extraArgs],
      netns,
      env,
    );
    this.done = collect(this.child);
  }

  /** Stops the daemon; when the test failed, prints what it logged, to explain the failure. */
  async stopAndReport(testFailed: boolean): Promise<BpfdResult> {
    const output = await this.stop();
    if (testFailed) {
      process.stderr.write(`daemon exit ${output.code}\n${output.stdout}\n${output.stderr}\n`);
    }
    return output;
  }

  async stop(): Promise<BpfdResult> {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.done;
  }

  async kill(): Promise<BpfdResult> {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    return this.done;
  }
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => T | Promise<T>,
  timeoutMs = 20_000,
): Promise<NonNullable<Exclude<T, false | '' | 0>>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<Exclude<T, false | '' | 0>>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Packets and bytes of a counter map (`struct packet_counters` at key 0). */
export function readCounters(mapPin: string): { packets: bigint; bytes: bigint } {
  const value = lookupPinnedMap(mapPin, Buffer.alloc(4), 16)!;
  return { packets: value.readBigUInt64LE(0), bytes: value.readBigUInt64LE(8) };
}

/** A __u64 at key 0. */
export function readU64(mapPin: string): bigint {
  return lookupPinnedMap(mapPin, Buffer.alloc(4), 8)!.readBigUInt64LE(0);
}

export function programIds(): Set<number> {
  return new Set(kernelObjectIds().programs);
}

type KernelObjectIds = ReturnType<typeof kernelObjectIds>;

/**
 * The kernel objects created since `baseline` that are still alive after waiting for them to go.
 * Only the objects new at the time of the call count: other processes on the machine may load
 * and free BPF objects all along, and theirs come and go, while a leak of ours stays.
 */
export async function objectsLeftSince(baseline: KernelObjectIds): Promise<KernelObjectIds> {
  const newSince = (ids: KernelObjectIds, than: KernelObjectIds) => ({
    programs: ids.programs.filter((id) => !than.programs.includes(id)),
    maps: ids.maps.filter((id) => !than.maps.includes(id)),
    links: ids.links.filter((id) => !than.links.includes(id)),
  });
  const suspects = newSince(kernelObjectIds(), baseline);
  const stillAlive = () => {
    const now = kernelObjectIds();
    return {
      programs: suspects.programs.filter((id) => now.programs.includes(id)),
      maps: suspects.maps.filter((id) => now.maps.includes(id)),
      links: suspects.links.filter((id) => now.links.includes(id)),
    };
  };
  const count = (ids: KernelObjectIds) => ids.programs.length + ids.maps.length + ids.links.length;
  return eventually('new kernel objects freed', () => {
    const alive = stillAlive();
    return count(alive) === 0 ? alive : undefined;
  }).catch(() => stillAlive());
}

/** base64 of a little-endian 32-bit integer, as `globaldata` wants it. */
export function u32(value: number): string {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32LE(value);
  return buffer.toString('base64');
}

export function xdpProgram(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'bpfd.io/v1alpha1',
    kind: 'XdpProgram',
    metadata: { name },
    spec: { nodeselector: {}, priority: 50, ...spec },
  };
}

export function tcProgram(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'bpfd.io/v1alpha1',
    kind: 'TcProgram',
    metadata: { name },
    spec: { nodeselector: {}, priority: 50, direction: 'ingress', ...spec },
  };
}

/** The example XDP counter (xdp_counter.o, verdict pass) on `iface`; `spec` overrides fields. */
export function xdpCounter(
  name: string,
  iface: string,
  spec: Record<string, unknown> = {},
): object {
  return xdpProgram(name, {
    sectionname: 'stats',
    interfaceselector: { interface: iface },
    globaldata: { verdict: u32(2) },
    bytecode: { path: path.join(OBJECTS, 'xdp_counter.o') },
    ...spec,
  });
}

export function tracepointProgram(name: string, spec: Record<string, unknown>): object {
  return {
    apiVersion: 'bpfd.io/v1alpha1',
    kind: 'TracepointProgram',
    metadata: { name },
    spec: { nodeselector: {}, ...spec },
  };
}
