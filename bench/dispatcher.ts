// Usage (as root, after `npm run build`): node dist/bench/dispatcher.js
/**
 * What the dispatcher costs per packet, measured with BPF_PROG_TEST_RUN: a program run directly
 * next to chains of 1, 2, 5, 10 and 32 such programs behind a dispatcher revision, for XDP and
 * TC, with a program that only returns its pass verdict and with one that counts its runs. For
 * XDP, a plain tail-call chain of the same lengths runs alongside as a baseline.
 *
 *   BENCH_REPEAT  runs per measurement, passed to BPF_PROG_TEST_RUN (default 2000000)
 *   BENCH_ROUNDS  measurements per case, interleaved; the median is printed (default 5)
 *
 * Nothing is attached to an interface: the dispatcher revisions are loaded from the daemon's own
 * objects with the daemon's loader, their program arrays filled (with bpftool), and run
 * directly. Everything is pinned under one bpffs dir of this process, removed at the end (also
 * on error or Ctrl-C). The kernel reports whole nanoseconds per run, rounded down.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  BPF_PROG_TYPE_SCHED_CLS,
  BPF_PROG_TYPE_XDP,
  ensureBpffsRoot,
  isErrno,
  loadProgram,
  lookupPinnedMap,
  openPin,
  removePins,
  testRun,
  withFds,
} from '../src/kernel/index.js';
import { OBJECTS, positiveIntegerFromEnv } from '../test/helpers/env.js';

const CHAIN_LENGTHS = [1, 2, 5, 10, 32];
const MAX_CHAIN_LENGTH = 32;
const REPEAT = positiveIntegerFromEnv('BENCH_REPEAT', 2_000_000);
const ROUNDS = positiveIntegerFromEnv('BENCH_ROUNDS', 5);
/** The figures for a plain tail-call chain, in ns. */
const TARGET_FIRST_NS = 15;
const TARGET_FURTHER_NS = [20, 25];

interface HookSetup {
  name: 'xdp' | 'tc';
  programType: number;
  dispatcherObject: string;
  dispatcherSection: string;
  /** Verdict of a chain whose programs all return their pass code. */
  passVerdict: number;
  /** Return codes on which the chain goes on, as the dispatcher's bit mask. */
  proceedOn: number;
  programs: ProgramSetup[];
}

interface ProgramSetup {
  label: string;
  objectPath: string;
  sectionName: string;
  /** The map counting runs, for the check that every program of a chain ran. */
  hitsMap?: string;
}

const HOOKS: HookSetup[] = [
  {
    name: 'xdp',
    programType: BPF_PROG_TYPE_XDP,
    dispatcherObject: path.join(OBJECTS, 'xdp_dispatcher.o'),
    dispatcherSection: 'xdp_dispatcher',
    passVerdict: 2,
    // [pass, dispatcher_return]: bpfd's default
    proceedOn: 2 ** 2 + 2 ** 31,
    programs: [
      {
        label: 'pass only (test/xdp_pass.o)',
        objectPath: path.join(OBJECTS, 'test/xdp_pass.o'),
        sectionName: 'xdp_pass',
      },
      {
        label: 'counter (test/xdp_verdict.o)',
        objectPath: path.join(OBJECTS, 'test/xdp_verdict.o'),
        sectionName: 'xdp_verdict',
        hitsMap: 'hits',
      },
    ],
  },
  {
    name: 'tc',
    programType: BPF_PROG_TYPE_SCHED_CLS,
    dispatcherObject: path.join(OBJECTS, 'tc_dispatcher.o'),
    dispatcherSection: 'tc_dispatcher',
    passVerdict: 0,
    // [ok, pipe, dispatcher_return]: TC code c is bit c + 1
    proceedOn: 2 ** 1 + 2 ** 4 + 2 ** 31,
    programs: [
      {
        label: 'pass only (test/tc_pass.o)',
        objectPath: path.join(OBJECTS, 'test/tc_pass.o'),
        sectionName: 'tc_pass',
      },
      {
        label: 'counter (test/tc_verdict.o)',
        objectPath: path.join(OBJECTS, 'test/tc_verdict.o'),
        sectionName: 'tc_verdict',
        hitsMap: 'hits',
      },
    ],
  },
];

const PLAIN_CHAIN: ProgramSetup = {
  label: 'plain tail-call chain (test/tail_chain.o), baseline',
  objectPath: path.join(OBJECTS, 'test/tail_chain.o'),
  sectionName: 'tail_chain',
};

function putInProgramArray(arrayPin: string, position: number, programPin: string): void {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(position);
  const keyBytes = [...key].map(String);
  execFileSync('bpftool', [
    'map',
    'update',
    'pinned',
    arrayPin,
    'key',
    ...keyBytes,
    'value',
    'pinned',
    programPin,
  ]);
}

/** One thing measured: a program on its own (chainLength 0) or a dispatcher revision. */
interface Case {
  hook: HookSetup;
  program: ProgramSetup;
  chainLength: number;
  programPin: string;
  samplesNs: number[];
}

/** The copies of a program, each loaded on its own as a chain of distinct programs would be. */
interface LoadedCopies {
  programPins: string[];
  hitsPins: string[];
}

/** An Ethernet + IPv4 + UDP frame of 64 bytes; the programs never look inside. */
function testPacket(): Buffer {
  const packet = Buffer.alloc(64);
  packet.writeUInt16BE(0x0800, 12);
  packet.writeUInt8(0x45, 14);
  packet.writeUInt16BE(50, 16);
  packet.writeUInt8(64, 22);
  packet.writeUInt8(17, 23);
  return packet;
}

function loadCopies(
  root: string,
  hook: HookSetup,
  program: ProgramSetup,
  slot: number,
): LoadedCopies {
  const programPins: string[] = [];
  const hitsPins: string[] = [];
  for (let copy = 0; copy < MAX_CHAIN_LENGTH; copy++) {
    const loaded = loadProgram({
      objectPath: program.objectPath,
      sectionName: program.sectionName,
      programType: hook.programType,
      globalData: new Map(),
      pinDir: path.join(root, 'programs', hook.name, String(slot), String(copy)),
      subject: `bench ${hook.name} ${program.sectionName} copy ${copy}`,
    });
    programPins.push(loaded.programPin);
    if (program.hitsMap) hitsPins.push(loaded.maps[program.hitsMap]);
  }
  return { programPins, hitsPins };
}

function chainConfig(length: number, proceedOn: number): Map<string, Buffer> {
  const count = Buffer.alloc(4);
  count.writeUInt32LE(length);
  const masks = Buffer.alloc(4 * MAX_CHAIN_LENGTH);
  for (let slot = 0; slot < length; slot++) masks.writeUInt32LE(proceedOn >>> 0, 4 * slot);
  return new Map([
    ['program_count', count],
    ['proceed_on', masks],
  ]);
}

/** A dispatcher revision as the daemon builds one, loaded and filled but never attached. */
function loadDispatcher(root: string, hook: HookSetup, slot: number, programPins: string[]) {
  const loaded = loadProgram({
    objectPath: hook.dispatcherObject,
    sectionName: hook.dispatcherSection,
    programType: hook.programType,
    globalData: chainConfig(programPins.length, hook.proceedOn),
    pinDir: path.join(root, 'dispatchers', hook.name, String(slot), String(programPins.length)),
    subject: `bench ${hook.name} dispatcher of ${programPins.length}`,
  });
  programPins.forEach((programPin, position) =>
    putInProgramArray(loaded.maps.chain, position, programPin),
  );
  return loaded.programPin;
}

/**
 * The baseline: an entry program that only tail-calls, then `length` programs each jumping to
 * the next through its own one-slot array, so `length` programs cost `length` tail calls, as
 * behind the dispatcher. Needs the programs' cooperation, which is why dispatchers exist.
 */
function loadPlainChain(root: string, hook: HookSetup, length: number): string {
  const links = Array.from({ length: length + 1 }, (_, position) =>
    loadProgram({
      objectPath: PLAIN_CHAIN.objectPath,
      sectionName: PLAIN_CHAIN.sectionName,
      programType: hook.programType,
      globalData: new Map(),
      pinDir: path.join(root, 'plain', String(length), String(position)),
      subject: `bench plain chain of ${length}, link ${position}`,
    }),
  );
  for (let position = 0; position < length; position++) {
    putInProgramArray(links[position].maps.next, 0, links[position + 1].programPin);
  }
  return links[0].programPin;
}

function prepareCases(root: string): { cases: Case[]; copies: Map<ProgramSetup, LoadedCopies> } {
  const cases: Case[] = [];
  const copies = new Map<ProgramSetup, LoadedCopies>();
  for (const hook of HOOKS) {
    hook.programs.forEach((program, slot) => {
      const loaded = loadCopies(root, hook, program, slot);
      copies.set(program, loaded);
      cases.push({
        hook,
        program,
        chainLength: 0,
        programPin: loaded.programPins[0],
        samplesNs: [],
      });
      for (const length of CHAIN_LENGTHS) {
        const dispatcherPin = loadDispatcher(root, hook, slot, loaded.programPins.slice(0, length));
        cases.push({
          hook,
          program,
          chainLength: length,
          programPin: dispatcherPin,
          samplesNs: [],
        });
      }
    });
    if (hook.name !== 'xdp') continue;
    for (const length of CHAIN_LENGTHS) {
      const entryPin = loadPlainChain(root, hook, length);
      cases.push({
        hook,
        program: PLAIN_CHAIN,
        chainLength: length,
        programPin: entryPin,
        samplesNs: [],
      });
    }
  }
  return { cases, copies };
}

function measure(item: Case, packet: Buffer): void {
  const program = openPin(item.programPin);
  const result = withFds([program], () => testRun(program, packet, REPEAT));
  if (result.returnValue !== item.hook.passVerdict) {
    throw new Error(
      `${item.hook.name} case of ${item.chainLength} programs returned ${result.returnValue}, ` +
        `expected ${item.hook.passVerdict}`,
    );
  }
  item.samplesNs.push(result.durationNs);
}

/** Every copy ran once per run of each case it belongs to: proof the chains really ran. */
function checkRunCounts(cases: Case[], copies: Map<ProgramSetup, LoadedCopies>): void {
  for (const [program, loaded] of copies) {
    loaded.hitsPins.forEach((hitsPin, copy) => {
      const memberships = cases.filter(
        (item) =>
          item.program === program &&
          (item.chainLength > copy || (item.chainLength === 0 && copy === 0)),
      ).length;
      const expected = BigInt(memberships * ROUNDS) * BigInt(REPEAT);
      const actual = lookupPinnedMap(hitsPin, Buffer.alloc(4), 8)!.readBigUInt64LE(0);
      if (actual !== expected) {
        throw new Error(`${program.label} copy ${copy} ran ${actual} times, expected ${expected}`);
      }
    });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function machineDescription(): string[] {
  const cpu =
    /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const readOr = (file: string) => {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch {
      return 'unknown';
    }
  };
  return [
    `cpu: ${cpu} (${os.cpus().length} cpus)`,
    `kernel: ${os.release()}`,
    `spectre_v2: ${readOr('/sys/devices/system/cpu/vulnerabilities/spectre_v2')}`,
    `bpf_jit_enable: ${readOr('/proc/sys/net/core/bpf_jit_enable')}`,
    `load average at start: ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
  ];
}

const pad = (text: string | number, width: number) => String(text).padStart(width);
const fixed = (value: number) => value.toFixed(1);
const signed = (value: number) => (value < 0 ? '' : '+') + fixed(value);

function printSeries(title: string, rows: Case[], directNs: number): void {
  const single = median(rows.find((item) => item.chainLength === 1)!.samplesNs);
  console.log(`\n${title}`);
  const header = ['ns/packet', 'over direct', 'per further'];
  console.log(
    `  ${'chain'.padEnd(12)}${pad(header[0], 11)}${pad(header[1], 13)}${pad(header[2], 13)}`,
  );
  if (rows[0].chainLength !== 0)
    console.log(`  ${'(direct)'.padEnd(12)}${pad(fixed(directNs), 11)}`);
  for (const item of rows) {
    const perPacket = median(item.samplesNs);
    const plural = item.chainLength > 1 ? 's' : '';
    const label = item.chainLength === 0 ? 'direct' : `${item.chainLength} program${plural}`;
    const over = item.chainLength === 0 ? '-' : signed(perPacket - directNs);
    const further =
      item.chainLength > 1 ? fixed((perPacket - single) / (item.chainLength - 1)) : '-';
    console.log(
      `  ${label.padEnd(12)}${pad(fixed(perPacket), 11)}${pad(over, 13)}${pad(further, 13)}`,
    );
  }
}

/** First program: a chain of 1 over direct; each further: the slope from 1 to the longest. */
function chainCosts(rows: Case[], directNs: number): { first: number; further: number } {
  const single = median(rows.find((item) => item.chainLength === 1)!.samplesNs);
  const longest = rows[rows.length - 1];
  const further = (median(longest.samplesNs) - single) / (longest.chainLength - 1);
  return { first: single - directNs, further };
}

function report(cases: Case[]): void {
  for (const hook of HOOKS) {
    const passOnly = hook.programs[0];
    const directNs = median(
      cases.find((c) => c.program === passOnly && c.chainLength === 0)!.samplesNs,
    );
    for (const program of [...hook.programs, PLAIN_CHAIN]) {
      const rows = cases.filter((item) => item.hook === hook && item.program === program);
      if (rows.length === 0) continue;
      const reference = rows[0].chainLength === 0 ? median(rows[0].samplesNs) : directNs;
      printSeries(`${hook.name}, ${program.label}`, rows, reference);
    }

    const costs = (program: ProgramSetup) =>
      chainCosts(
        cases.filter((c) => c.hook === hook && c.program === program && c.chainLength > 0),
        directNs,
      );
    const dispatcher = costs(passOnly);
    console.log(
      `\n${hook.name} target: first program ~${TARGET_FIRST_NS} ns, each further ` +
        `${TARGET_FURTHER_NS.join('-')} ns; dispatcher measured ${fixed(dispatcher.first)} and ` +
        `${fixed(dispatcher.further)} ns`,
    );
    if (cases.some((c) => c.hook === hook && c.program === PLAIN_CHAIN)) {
      const plain = costs(PLAIN_CHAIN);
      console.log(
        `${hook.name} plain tail-call chain on this machine: ${fixed(plain.first)} and ` +
          `${fixed(plain.further)} ns`,
      );
    }
  }
}

/** Runs every case ROUNDS times, interleaved; false when Ctrl-C stopped it. */
async function runRounds(cases: Case[], interrupted: () => boolean): Promise<boolean> {
  const packet = testPacket();
  for (let round = 0; round < ROUNDS; round++) {
    for (const item of cases) {
      try {
        measure(item, packet);
      } catch (err) {
        // A signal ends a running BPF_PROG_TEST_RUN with EINTR.
        if (isErrno(err, 'EINTR')) return false;
        throw err;
      }
      // Lets a Ctrl-C reach its handler between measurements.
      await new Promise((resolve) => setImmediate(resolve));
      if (interrupted()) return false;
    }
  }
  return true;
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('bench/dispatcher: run as root (it loads BPF programs)');
    return 1;
  }
  let interrupted = false;
  process.on('SIGINT', () => (interrupted = true));
  const root = `/sys/fs/bpf/bpfd-bench-${process.pid}`;
  ensureBpffsRoot(root);
  try {
    const { cases, copies } = prepareCases(root);
    console.log(machineDescription().join('\n'));
    console.log(`${REPEAT} runs per measurement, median of ${ROUNDS} interleaved rounds`);
    if (!(await runRounds(cases, () => interrupted))) {
      console.error('interrupted');
      return 130;
    }
    checkRunCounts(cases, copies);
    report(cases);
    console.log('\ncheck: every program of every chain ran once per run');
    return 0;
  } finally {
    removePins(root);
  }
}

process.exitCode = await main();
