/**
 * Traffic fixtures for dispatcher tests: a quiet veth pair (nothing but the test's own packets
 * reaches a hook, so counters can be compared exactly), a counted UDP stream from nsB to an echo
 * server in nsA, and commands run inside a test namespace with the host's bpffs still visible.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Hook, XdpMode } from '../../src/kernel/index.js';
import { REPO, sh, type VethPair } from './env.js';

const ECHO_PORT = 4000;
/** Datagrams in flight at most: far below the 256-entry ring a veth peer with XDP keeps. */
const STREAM_WINDOW = 32;

/** Runs a command in `netns` through nsenter (`ip netns exec` would hide /sys/fs/bpf). */
export function inNamespace(netns: string, command: string, args: string[]): Promise<string> {
  return sh('nsenter', [`--net=/run/netns/${netns}`, command, ...args]);
}

async function macAddress(netns: string, ifname: string): Promise<string> {
  const links = JSON.parse(await sh('ip', ['-n', netns, '-j', 'link', 'show', 'dev', ifname]));
  return links[0].address as string;
}

/**
 * Silences everything the kernel sends by itself on the pair: permanent neighbour entries (no
 * ARP) and IPv6 off on both ends (no neighbour discovery, router solicitations or MLD).
 */
export async function quietVeth(veth: VethPair): Promise<void> {
  await pinNeighbour(veth.nsB, veth.ifB, veth.addrA, await macAddress(veth.nsA, veth.ifA));
  await pinNeighbour(veth.nsA, veth.ifA, veth.addrB, await macAddress(veth.nsB, veth.ifB));
  await inNamespace(veth.nsA, 'sysctl', ['-qw', `net.ipv6.conf.${veth.ifA}.disable_ipv6=1`]);
  await inNamespace(veth.nsB, 'sysctl', ['-qw', `net.ipv6.conf.${veth.ifB}.disable_ipv6=1`]);
}

async function pinNeighbour(netns: string, ifname: string, address: string, mac: string) {
  const entry = [address, 'lladdr', mac, 'dev', ifname, 'nud', 'permanent'];
  await sh('ip', ['-n', netns, 'neigh', 'replace', ...entry]);
}

export interface XdpAttachment {
  id: number;
  mode: string;
}

/** The XDP programs attached to `ifname` in `netns`, as bpftool reports them. */
export async function xdpAttachments(netns: string, ifname: string): Promise<XdpAttachment[]> {
  const report = JSON.parse(
    await inNamespace(netns, 'bpftool', ['-j', 'net', 'show', 'dev', ifname]),
  );
  const entries = (report[0]?.xdp ?? []) as Array<{ id: number; mode: string }>;
  return entries.map(({ id, mode }) => ({ id, mode }));
}

/** Echoes each datagram to its sender; prints "listening" once bound, stops when stdin ends. */
const ECHO_SERVER = `
const dgram = require('node:dgram');
const [address, port] = process.argv.slice(1);
const socket = dgram.createSocket('udp4');
socket.on('message', (message, peer) => socket.send(message, peer.port, peer.address));
socket.bind(Number(port), address, () => process.stdout.write('listening\\n'));
process.stdin.on('end', () => socket.close()).resume();
`;

/**
 * Sends numbered datagrams, at most \`window\` unanswered at a time, until stdin ends; then waits
 * for the last echoes and prints {sent, echoed, lost} as JSON. A window silent for a second is
 * written off as lost and a fresh one is sent. Prints "flowing" at the first echo.
 */
const STREAM_SENDER = `
const dgram = require('node:dgram');
const [source, target, port, windowText] = process.argv.slice(1);
const window = Number(windowText);
const socket = dgram.createSocket('udp4');
const outstanding = new Set();
let sent = 0, echoed = 0, lost = 0, stopping = false, flowing = false, silence;
function finish() {
  clearTimeout(silence);
  process.stdout.write(JSON.stringify({ sent, echoed, lost }) + '\\n');
  socket.close();
}
function watchSilence() {
  clearTimeout(silence);
  silence = setTimeout(() => {
    lost += outstanding.size;
    outstanding.clear();
    if (stopping) finish(); else refill();
  }, 1000);
}
function refill() {
  while (!stopping && outstanding.size < window) {
    const sequence = Buffer.alloc(8);
    sequence.writeBigUInt64LE(BigInt(sent));
    outstanding.add(sent);
    sent += 1;
    socket.send(sequence, Number(port), target);
  }
  watchSilence();
}
socket.on('message', (message) => {
  if (message.length !== 8 || !outstanding.delete(Number(message.readBigUInt64LE(0)))) return;
  echoed += 1;
  if (!flowing) { flowing = true; process.stdout.write('flowing\\n'); }
  if (!stopping) return refill();
  if (outstanding.size === 0) finish(); else watchSilence();
});
socket.bind(0, source, refill);
process.stdin.on('end', () => {
  stopping = true;
  if (outstanding.size === 0) finish();
}).resume();
`;

export interface StreamCount {
  /** Datagrams that left the sender. */
  sent: number;
  /** Of those, how many came back from the echo server. */
  echoed: number;
  /** Written off after a second without an echo. */
  lost: number;
}

class NodeChild {
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
  private stdout = '';
  private stderr = '';

  constructor(netns: string, argv: string[]) {
    this.process = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.process.stdout!.on('data', (chunk) => (this.stdout += chunk));
    this.process.stderr!.on('data', (chunk) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.process.on('close', (code) =>
        resolve({ code, stdout: this.stdout, stderr: this.stderr }),
      ),
    );
  }

  /** Resolves when stdout holds `line`; rejects if the process ends first. */
  printed(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const look = () => {
        if (this.stdout.split('\n').includes(line)) resolve();
      };
      this.process.stdout!.on('data', look);
      look();
      this.exited.then(({ code, stderr }) =>
        reject(new Error(`child exited (${code}) before printing "${line}": ${stderr}`)),
      );
    });
  }

  kill(): void {
    if (this.process.exitCode === null) this.process.kill('SIGKILL');
  }
}

/** A windowed UDP stream from B to an echo server on A: every datagram crosses A's ingress. */
export class UdpStream {
  private constructor(
    private readonly server: NodeChild,
    private readonly sender: NodeChild,
  ) {}

  /** Starts both ends; resolves once the first datagram has come back. */
  static async start(veth: VethPair): Promise<UdpStream> {
    const server = new NodeChild(veth.nsA, ['-e', ECHO_SERVER, veth.addrA, String(ECHO_PORT)]);
    await server.printed('listening');
    const sender = new NodeChild(veth.nsB, [
      '-e',
      STREAM_SENDER,
      veth.addrB,
      veth.addrA,
      String(ECHO_PORT),
      String(STREAM_WINDOW),
    ]);
    const stream = new UdpStream(server, sender);
    try {
      await sender.printed('flowing');
    } catch (err) {
      stream.kill();
      throw err;
    }
    return stream;
  }

  /** Stops sending, waits for the last echoes, and returns the sender's counts. */
  async stop(): Promise<StreamCount> {
    this.sender.process.stdin!.end();
    const { code, stdout, stderr } = await this.sender.exited;
    this.server.process.stdin!.end();
    await this.server.exited;
    if (code !== 0) throw new Error(`UDP sender exited with ${code}: ${stderr}`);
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as StreamCount;
  }

  kill(): void {
    this.sender.kill();
    this.server.kill();
  }
}

export interface ReorderRequest {
  bpffsRoot: string;
  hook: Hook;
  /** Chains to install in turn, each a list of program pins in slot order. */
  chains: string[][];
  proceedOn: number;
  xdpMode: XdpMode;
  count: number;
}

/**
 * Installs `count` chains, cycling through `request.chains`, with the kernel layer's
 * `installChain` in a child process inside `netns` (a hook's ifindex only means something in
 * its own namespace). Resolves with the id of the last dispatcher installed.
 */
export async function reorderChains(netns: string, request: ReorderRequest): Promise<number> {
  const kernel = pathToFileURL(path.join(REPO, 'dist/src/kernel/index.js')).href;
  const script = `
const { installChain } = await import(${JSON.stringify(kernel)});
const request = JSON.parse(process.argv[1]);
let installed;
for (let n = 0; n < request.count; n++) {
  const pins = request.chains[n % request.chains.length];
  const entries = pins.map((programPin) => ({ programPin, proceedOn: request.proceedOn }));
  const hash = (n % request.chains.length).toString(16);
  installed = await installChain(request.bpffsRoot, request.hook, entries, hash, request.xdpMode);
}
process.stdout.write(JSON.stringify({ dispatcherId: installed?.dispatcherId }) + '\\n');
`;
  const child = new NodeChild(netns, [
    '--input-type=module',
    '-e',
    script,
    JSON.stringify(request),
  ]);
  child.process.stdin!.end();
  const { code, stdout, stderr } = await child.exited;
  if (code !== 0) throw new Error(`installChain loop exited with ${code}: ${stderr}`);
  return JSON.parse(stdout.trim()).dispatcherId as number;
}
