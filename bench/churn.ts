/**
 * Apply / edit / delete cycles over the three kinds, then a leak check: every kernel program,
 * map and link the daemon created during the run is gone, its pin tree holds only empty dirs,
 * it holds no more BPF descriptors than before, no XDP program is left on its interfaces,
 * and its memory (VmRSS, sampled after every cycle) did not keep growing.
 *
 * Usage (as root, after `npm run build`):  node dist/bench/churn.js
 *   CHURN_CYCLES   cycles (default 1000)
 *
 * One cycle: a file with one XdpProgram, one TcProgram and one TracepointProgram (names new
 * in every cycle) is renamed into the watched dir and waited for until all three are Loaded;
 * then their global data is edited (new programs) and waited for again; then the file is
 * removed and the pin tree waited for until it holds no pin.
 *
 * Other engineers' tests may load programs concurrently, so kernel objects are attributed:
 * the run records the ids of every program, link and map it saw the daemon pin (maps through
 * `bpftool prog show`), and only those must be gone. Kernel-wide counts are printed beside them
 * for information. `ChurnRun` and `KernelLedger` are also what test/integration/churn.test.ts
 * runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { kernelObjectIds } from '../src/kernel/index.js';
import { observe } from '../src/reconcile/index.js';
import { Workspace } from '../test/helpers/env.js';
import {
  BenchNamespace,
  Cleanup,
  envInteger,
  fixed,
  manifestOf,
  median,
  percentile,
  pinFiles,
  pollUntil,
  printMachine,
  printTable,
  ProcessProbe,
  QUIET_TRACEPOINTS,
  runBenchmark,
  runCommand,
  startDaemon,
  type BenchObject,
  type BpfDescriptors,
} from './common.js';

const POLL_MS = 5;
const PHASE_TIMEOUT_MS = 60_000;
const FREED_TIMEOUT_MS = 30_000;

type IdKind = 'programs' | 'maps' | 'links';
const ID_KINDS: IdKind[] = ['programs', 'maps', 'links'];
export type KernelIds = Record<IdKind, number[]>;

function currentIds(): Record<IdKind, Set<number>> {
  const ids = kernelObjectIds();
  return { programs: new Set(ids.programs), maps: new Set(ids.maps), links: new Set(ids.links) };
}

/** Kernel objects the daemon was seen to own during a run, and the kernel as it was before. */
export class KernelLedger {
  readonly baseline = currentIds();
  readonly ours: Record<IdKind, Set<number>> = {
    programs: new Set(),
    maps: new Set(),
    links: new Set(),
  };

  /** Notes every program, link and map pinned under `bpffsRoot` now. */
  async record(bpffsRoot: string): Promise<void> {
    const observed = observe(bpffsRoot);
    const programs: number[] = [];
    for (const program of observed.programs) {
      if (program.programId !== undefined) programs.push(program.programId);
      if (program.linkId !== undefined) this.ours.links.add(program.linkId);
    }
    for (const dispatcher of observed.dispatchers) {
      if (dispatcher.link) this.ours.links.add(dispatcher.link.id);
      for (const revision of dispatcher.revisions) {
        if (revision.programId !== undefined) programs.push(revision.programId);
      }
    }
    for (const id of programs) this.ours.programs.add(id);
    for (const id of await mapsOf(programs)) this.ours.maps.add(id);
  }

  /** Recorded objects still in the kernel. */
  stillLoaded(): KernelIds {
    const now = currentIds();
    const left = (kind: IdKind) => [...this.ours[kind]].filter((id) => now[kind].has(id));
    return { programs: left('programs'), maps: left('maps'), links: left('links') };
  }

  /** Waits (the kernel frees maps after an RCU grace period) until no recorded object is left. */
  async waitUntilFreed(): Promise<KernelIds> {
    const empty = (ids: KernelIds) => ID_KINDS.every((kind) => ids[kind].length === 0);
    try {
      await pollUntil('recorded objects freed', () => empty(this.stillLoaded()), {
        intervalMs: 50,
        timeoutMs: FREED_TIMEOUT_MS,
      });
    } catch {
      // reported by the caller through the returned ids
    }
    return this.stillLoaded();
  }

  /** Kernel-wide: objects now that were not there before, and how many of them were ours. */
  kernelWide(): Record<IdKind, { before: number; after: number; newNotOurs: number }> {
    const now = currentIds();
    const figures = (kind: IdKind) => ({
      before: this.baseline[kind].size,
      after: now[kind].size,
      newNotOurs: [...now[kind]].filter(
        (id) => !this.baseline[kind].has(id) && !this.ours[kind].has(id),
      ).length,
    });
    return { programs: figures('programs'), maps: figures('maps'), links: figures('links') };
  }
}

/** Map ids of the programs, as the kernel reports them (`bpftool prog show`). */
async function mapsOf(programIds: number[]): Promise<number[]> {
  const wanted = new Set(programIds);
  const listing = JSON.parse(await runCommand('bpftool', ['-j', 'prog', 'show'])) as Array<{
    id: number;
    map_ids?: number[];
  }>;
  return listing.filter((program) => wanted.has(program.id)).flatMap((p) => p.map_ids ?? []);
}

export interface ChurnSetup {
  workspace: Workspace;
  /** Two interfaces of the daemon's namespace: XDP on the first, TC on the second. */
  interfaces: string[];
  probe: ProcessProbe;
  ledger: KernelLedger;
}

export interface ChurnReport {
  cycles: number;
  phaseMs: { apply: number[]; edit: number[]; remove: number[] };
  /** Daemon VmRSS after each cycle, kB. */
  rssKb: number[];
  /** Applies and edits that ended with all three objects Loaded with new program ids. */
  loadedPhases: number;
}

/** Runs churn cycles against a running daemon. */
export class ChurnRun {
  constructor(private readonly setup: ChurnSetup) {}

  async run(cycles: number, onProgress?: (done: number) => void): Promise<ChurnReport> {
    const report: ChurnReport = {
      cycles,
      phaseMs: { apply: [], edit: [], remove: [] },
      rssKb: [],
      loadedPhases: 0,
    };
    for (let cycle = 0; cycle < cycles; cycle++) {
      await this.cycle(cycle, report);
      report.rssKb.push(this.setup.probe.rssKb());
      onProgress?.(cycle + 1);
    }
    return report;
  }

  /** The three objects of a cycle; their names are new in every cycle. */
  objectsOf(cycle: number): BenchObject[] {
    const [xdpIface, tcIface] = this.setup.interfaces;
    const name = (kind: string) => `churn-${cycle}-${kind}`;
    const file = `churn-${cycle}.yaml`;
    return [
      { kind: 'xdp', name: name('xdp'), file, variant: 0, iface: xdpIface },
      { kind: 'tc', name: name('tc'), file, variant: 0, iface: tcIface, direction: 'ingress' },
      { kind: 'tracepoint', name: name('tp'), file, variant: 0, tracepoint: QUIET_TRACEPOINTS[0] },
    ];
  }

  private async cycle(cycle: number, report: ChurnReport): Promise<void> {
    const { workspace, ledger } = this.setup;
    const objects = this.objectsOf(cycle);
    const file = objects[0].file;

    const applied = await this.timed(report.phaseMs.apply, () => this.write(objects, new Map()));
    report.loadedPhases++;
    await ledger.record(workspace.bpffsRoot);

    for (const object of objects) object.variant++;
    await this.timed(report.phaseMs.edit, () => this.write(objects, applied));
    report.loadedPhases++;
    await ledger.record(workspace.bpffsRoot);

    const sidecar = path.join(workspace.manifests, file.replace(/\.yaml$/, '.status.yaml'));
    await this.timed(report.phaseMs.remove, async () => {
      workspace.removeManifest(file);
      await this.until('pins removed', () => pinFiles(workspace.bpffsRoot).length === 0);
      await this.until('sidecar removed', () => !fs.existsSync(sidecar));
    });
  }

  /** Writes the file and waits until every object is Loaded with a program id not in `old`. */
  private async write(
    objects: BenchObject[],
    old: Map<string, number>,
  ): Promise<Map<string, number>> {
    const { workspace } = this.setup;
    const file = objects[0].file;
    workspace.writeManifest(file, objects.map(manifestOf));
    return this.until(`${file} Loaded`, () => {
      const ids = new Map<string, number>();
      for (const object of objects) {
        const id = workspace.programIdOf(file, object.name);
        const loaded = workspace.condition(file, object.name)?.type === 'Loaded';
        if (!loaded || id === undefined || id === old.get(object.name)) return undefined;
        ids.set(object.name, id);
      }
      return ids;
    });
  }

  private async until<T>(what: string, probe: () => T | undefined | false): Promise<T> {
    const { probe: daemon } = this.setup;
    return pollUntil(
      what,
      () => {
        if (!daemon.alive()) throw new Error('the daemon exited');
        return probe();
      },
      { intervalMs: POLL_MS, timeoutMs: PHASE_TIMEOUT_MS },
    );
  }

  private async timed<T>(samples: number[], body: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const value = await body();
    samples.push(performance.now() - started);
    return value;
  }
}

/**
 * Interfaces of the namespace with an XDP program attached (by anyone). TC is not listed:
 * bpftool 7.1 does not show tcx links; the daemon's tcx links are in the ledger instead.
 */
export async function interfacesWithXdp(namespace: BenchNamespace): Promise<string[]> {
  const listing = JSON.parse(await namespace.exec('bpftool', ['-j', 'net', 'show'])) as Array<{
    xdp?: Array<{ devname: string }>;
  }>;
  return listing.flatMap((section) => (section.xdp ?? []).map((entry) => entry.devname));
}

function descriptorsText(fds: BpfDescriptors): string {
  const { programs, maps, links, perfEvents } = fds;
  return `${programs} programs, ${maps} maps, ${links} links, ${perfEvents} perf events`;
}

function report(
  churn: ChurnReport,
  left: { ids: KernelIds; pins: string[]; dirs: number; xdp: string[] },
  ledger: KernelLedger,
  fds: { before: BpfDescriptors; after: BpfDescriptors },
): void {
  const { phaseMs, rssKb } = churn;
  process.stdout.write(`\n${churn.cycles} cycles, each: apply, edit, delete of 3 objects\n\n`);
  printTable([
    ['phase (ms until done)', 'p50', 'p95', 'max'],
    ...(['apply', 'edit', 'remove'] as const).map((phase) => [
      phase,
      fixed(median(phaseMs[phase])),
      fixed(percentile(phaseMs[phase], 95)),
      fixed(Math.max(...phaseMs[phase])),
    ]),
  ]);

  const mib = (kb: number) => `${fixed(kb / 1024)} MiB`;
  const tenth = rssKb[Math.min(rssKb.length - 1, Math.floor(rssKb.length / 10))];
  process.stdout.write(
    `\ndaemon VmRSS after cycle 1: ${mib(rssKb[0])}, after 10%: ${mib(tenth)}, ` +
      `last: ${mib(rssKb.at(-1)!)}, max: ${mib(Math.max(...rssKb))}\n`,
  );

  process.stdout.write('\nleft behind (all must be 0)\n\n');
  const kernelWide = ledger.kernelWide();
  printTable([
    [
      'kernel objects',
      'seen owned by the daemon',
      'still loaded',
      'kernel before',
      'after',
      "new, not the daemon's",
    ],
    ...ID_KINDS.map((kind) => [
      kind,
      String(ledger.ours[kind].size),
      String(left.ids[kind].length),
      String(kernelWide[kind].before),
      String(kernelWide[kind].after),
      String(kernelWide[kind].newNotOurs),
    ]),
  ]);
  process.stdout.write(
    `\npins left: ${left.pins.length} (empty dirs: ${left.dirs})\n` +
      `interfaces with XDP attached: ${left.xdp.length === 0 ? 'none' : left.xdp.join(', ')}\n` +
      `daemon BPF descriptors before: ${descriptorsText(fds.before)}; ` +
      `after: ${descriptorsText(fds.after)}\n` +
      '("new, not the daemon\'s": created meanwhile by other processes on this machine)\n',
  );
}

function emptyDirs(root: string): number {
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isDirectory()).length;
}

async function main(cleanup: Cleanup): Promise<void> {
  const cycles = envInteger('CHURN_CYCLES', 1000);
  printMachine(`bench/churn: ${cycles} apply / edit / delete cycles`);
  const namespace = await BenchNamespace.create('ch', 1, cleanup);
  const workspace = await Workspace.create();
  cleanup.defer('workspace', () => workspace.cleanup());
  const { probe } = await startDaemon(workspace, namespace, cleanup);

  const ledger = new KernelLedger();
  const before = probe.bpfDescriptors();
  const churn = await new ChurnRun({
    workspace,
    interfaces: namespace.interfaces,
    probe,
    ledger,
  }).run(cycles, (done) => {
    if (done % 100 === 0)
      process.stdout.write(`${done} cycles, VmRSS ${fixed(probe.rssKb() / 1024)} MiB\n`);
  });
  const left = {
    ids: await ledger.waitUntilFreed(),
    pins: pinFiles(workspace.bpffsRoot),
    dirs: emptyDirs(workspace.bpffsRoot),
    xdp: await interfacesWithXdp(namespace),
  };
  report(churn, left, ledger, { before, after: probe.bpfDescriptors() });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runBenchmark(main);
}
