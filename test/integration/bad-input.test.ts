/**
 * Bad manifests against a running daemon: two files, `steady.yaml` and `breakable.yaml`, each
 * with an XDP program on the same interface. The second is broken in many ways; the programs of
 * the first, and the last good version of the second, must stay exactly as they were.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';
import yaml from 'js-yaml';

import { parseManifestText } from '../../src/api/index.js';
import { openPin, programFdById, programInfo, testRun, withFds } from '../../src/kernel/index.js';
import {
  Daemon,
  eventually,
  programIds,
  u32,
  VethPair,
  Workspace,
  xdpCounter as sharedXdpCounter,
} from '../helpers/env.js';
import { DaemonLog } from '../helpers/daemon-log.js';

const XDP_DROP = 1;
const XDP_PASS = 2;

const STEADY = 'steady.yaml';
const BREAKABLE = 'breakable.yaml';

function xdpCounter(name: string, iface: string, priority: number, verdict = XDP_PASS): object {
  return sharedXdpCounter(name, iface, { priority, globaldata: { verdict: u32(verdict) } });
}

/** A classic "billion laughs" appended to a valid document. */
function aliasBomb(validText: string): string {
  const lines = ['  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let level = 1; level < 12; level++) {
    lines.push(
      `  a${level}: &a${level} [${Array(9)
        .fill(`*a${level - 1}`)
        .join(', ')}]`,
    );
  }
  return `${validText}laughs:\n${lines.join('\n')}\n`;
}

/** Program id of every program pin of the workspace (objects and dispatcher revisions). */
function pinnedProgramIds(workspace: Workspace): Record<string, number> {
  const ids: Record<string, number> = {};
  for (const pin of workspace.pins().filter((p) => path.basename(p) === 'prog')) {
    const fd = openPin(pin);
    ids[path.relative(workspace.bpffsRoot, pin)] = withFds([fd], () => programInfo(fd).id);
  }
  return ids;
}

/** What a loaded program answers for a 64-byte packet, through BPF_PROG_TEST_RUN. */
function verdictOf(programId: number): number {
  const fd = programFdById(programId);
  return withFds([fd], () => testRun(fd, Buffer.alloc(64)).returnValue);
}

describe('bad manifests (daemon, real kernel)', function () {
  this.timeout(180_000);
  let veth: VethPair;
  let workspace: Workspace;
  let daemon: Daemon | undefined;
  let log: DaemonLog;
  let staging: string;

  // The kernel state once both files are loaded: no bad input may change any of it.
  let baseline: Record<string, number>;
  let steadyId: number;
  let breakableId: number;

  const breakableText = (priority = 20, verdict = XDP_PASS) =>
    yaml.dump(xdpCounter('breakable', veth.ifA, priority, verdict));
  const manifestPath = (name: string) => path.join(workspace.manifests, name);

  beforeEach(async () => {
    veth = await new VethPair().create();
    workspace = await Workspace.create({ logLevel: 'debug' });
    staging = path.join(workspace.dir, 'staging');
    fs.mkdirSync(staging, { mode: 0o755 });

    workspace.writeManifest(STEADY, [xdpCounter('steady', veth.ifA, 10)]);
    workspace.writeManifest(BREAKABLE, breakableText());
    daemon = new Daemon(workspace, veth.nsA);
    log = new DaemonLog(daemon.child);
    await loaded(STEADY, 'steady');
    await loaded(BREAKABLE, 'breakable');

    steadyId = workspace.programIdOf(STEADY, 'steady')!;
    breakableId = workspace.programIdOf(BREAKABLE, 'breakable')!;
    baseline = pinnedProgramIds(workspace);
  });

  afterEach(async function () {
    const output = await daemon?.stop();
    if (this.currentTest?.state !== 'passed' && output) {
      process.stderr.write(`daemon exit ${output.code}\n${output.stdout}\n${output.stderr}\n`);
    }
    daemon = undefined;
    await workspace.cleanup();
    await veth.cleanup();
  });

  function loaded(file: string, name: string) {
    return eventually(`${name} Loaded`, () => workspace.condition(file, name)?.type === 'Loaded');
  }

  /** The LastKnownGood condition of the `breakable` object, once its message matches. */
  function keptBecause(reason: RegExp) {
    return eventually(`LastKnownGood on ${BREAKABLE} matching ${reason}`, () => {
      const status = workspace.statusOf(BREAKABLE).find((d) => d.metadata?.name === 'breakable');
      const condition = status?.status?.conditions?.find(
        (c: { type: string }) => c.type === 'LastKnownGood',
      );
      return reason.test(condition?.message ?? '') && condition;
    });
  }

  /** Nothing the daemon owns in the kernel changed, and both objects report Loaded. */
  function expectNothingChanged(): void {
    expect(pinnedProgramIds(workspace)).to.deep.equal(baseline);
    expect(workspace.condition(STEADY, 'steady')?.type).to.equal('Loaded');
    expect(workspace.condition(BREAKABLE, 'breakable')?.type).to.equal('Loaded');
    expect(workspace.programIdOf(BREAKABLE, 'breakable')).to.equal(breakableId);
  }

  /** `breakable` runs its new version (verdict drop); `steady` was never touched. */
  async function expectRepairedWithDrop(): Promise<void> {
    const newId = await eventually('a new breakable program', () => {
      const id = workspace.programIdOf(BREAKABLE, 'breakable');
      const current = workspace.condition(BREAKABLE, 'breakable')?.type === 'Loaded';
      return current && id !== undefined && id !== breakableId && id;
    });
    expect(verdictOf(newId)).to.equal(XDP_DROP);
    const status = workspace.statusOf(BREAKABLE).find((d) => d.metadata?.name === 'breakable');
    const types = status?.status?.conditions?.map((c: { type: string }) => c.type);
    expect(types).to.not.include('LastKnownGood');
    expectSteadyUntouched();
    await eventually('the old breakable program freed', () => !programIds().has(breakableId));
  }

  function expectSteadyUntouched(): void {
    expect(workspace.programIdOf(STEADY, 'steady')).to.equal(steadyId);
    expect(workspace.condition(STEADY, 'steady')?.type).to.equal('Loaded');
    expect(programIds().has(steadyId)).to.equal(true);
  }

  /** Writes `content` to `breakable.yaml` the way a git checkout does: complete, then renamed. */
  function replaceBreakable(content: string | Buffer): void {
    const file = path.join(staging, BREAKABLE);
    fs.writeFileSync(file, content);
    fs.renameSync(file, manifestPath(BREAKABLE));
  }

  it('keeps every program when a file grows past 1 MiB', async () => {
    replaceBreakable(`${breakableText(20, XDP_DROP)}# ${'x'.repeat(2 * 1024 * 1024)}\n`);

    const kept = await keptBecause(/1 MiB/);

    expect(kept.message).to.include(BREAKABLE);
    expectNothingChanged();
    replaceBreakable(breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();
  });

  it('keeps every program when a file nests thousands of levels deep', async () => {
    const deep = `extra: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`;
    replaceBreakable(`${breakableText(20, XDP_DROP)}${deep}`);

    await keptBecause(/nest/);

    expectNothingChanged();
    replaceBreakable(breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();
  });

  it('keeps every program when a file is a YAML alias bomb', async () => {
    replaceBreakable(aliasBomb(breakableText(20, XDP_DROP)));

    const kept = await keptBecause(/more than 100000 values/);

    expect(kept.message).to.include(`${BREAKABLE}: document 0`);
    expectNothingChanged();
    replaceBreakable(breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();
  });

  it('keeps every program when a file is overwritten with binary garbage', async () => {
    replaceBreakable(Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), randomBytes(16 * 1024)]));

    await keptBecause(/not UTF-8|not text/);

    expectNothingChanged();
    replaceBreakable(breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();
  });

  it('keeps the last good version while a file is half written, then applies the whole', async () => {
    const text = breakableText(20, XDP_DROP);
    const half = text.slice(0, Math.floor(text.length / 2));
    const halfParsed = parseManifestText(BREAKABLE, half);
    const halfProblems = halfParsed.fileError
      ? 1
      : halfParsed.documents.flatMap((document) => document.errors).length;
    expect(halfProblems, 'the first half alone is invalid').to.be.above(0);

    const fd = fs.openSync(manifestPath(BREAKABLE), 'w');
    try {
      fs.writeSync(fd, half);
      fs.fsyncSync(fd);
      await keptBecause(/breakable\.yaml/);
      expectNothingChanged();

      fs.writeSync(fd, text.slice(half.length));
    } finally {
      fs.closeSync(fd);
    }

    await expectRepairedWithDrop();
    expect(fs.readFileSync(manifestPath(BREAKABLE), 'utf8')).to.equal(text);
  });

  it('applies files renamed into place, broken or whole, one at a time', async () => {
    replaceBreakable('apiVersion: bpfd.io/v1alpha1\nkind: XdpProgram\nmetadata: [oops\n');
    await keptBecause(/not valid YAML at line \d+/);
    expectNothingChanged();

    replaceBreakable(breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();

    const newcomer = path.join(staging, 'newcomer.yaml');
    fs.writeFileSync(newcomer, yaml.dump(xdpCounter('newcomer', veth.ifA, 30)));
    fs.renameSync(newcomer, manifestPath('newcomer.yaml'));
    await loaded('newcomer.yaml', 'newcomer');
    expectSteadyUntouched();
  });

  it('keeps the program of a manifest renamed within the dir', async () => {
    fs.renameSync(manifestPath(BREAKABLE), manifestPath('renamed.yaml'));

    await loaded('renamed.yaml', 'breakable');

    expect(workspace.programIdOf('renamed.yaml', 'breakable')).to.equal(breakableId);
    expect(pinnedProgramIds(workspace)).to.deep.equal(baseline);
    await eventually('the old sidecar removed', () => workspace.statusOf(BREAKABLE).length === 0);
    expectSteadyUntouched();
  });

  it('follows symlinked manifests: retargeted, broken, edited in place, dangling', async () => {
    const repo = path.join(workspace.dir, 'repo');
    fs.mkdirSync(repo, { mode: 0o755 });
    const target = path.join(repo, BREAKABLE);
    const broken = path.join(repo, 'broken.yaml');
    fs.writeFileSync(target, breakableText(25));
    fs.writeFileSync(broken, 'apiVersion: bpfd.io/v1alpha1\nkind: [XdpProgram\n');
    const pointLinkAt = (destination: string) => {
      const link = path.join(workspace.manifests, `.${BREAKABLE}.link`);
      fs.symlinkSync(destination, link);
      fs.renameSync(link, manifestPath(BREAKABLE));
    };

    // Same program, new priority: the program stays, its place in the chain follows.
    pointLinkAt(target);
    await eventually('priority 25 applied', () => {
      const annotations = workspace.bpfProgram(BREAKABLE, 'breakable')?.metadata.annotations;
      return annotations?.['bpfd.io/priority'] === '25';
    });
    expect(workspace.programIdOf(BREAKABLE, 'breakable')).to.equal(breakableId);
    expectSteadyUntouched();

    pointLinkAt(broken);
    await keptBecause(/not valid YAML/);
    expect(workspace.programIdOf(BREAKABLE, 'breakable')).to.equal(breakableId);
    expectSteadyUntouched();

    pointLinkAt(target);
    await loaded(BREAKABLE, 'breakable');
    fs.writeFileSync(target, breakableText(25, XDP_DROP));
    await expectRepairedWithDrop();
    const droppingId = workspace.programIdOf(BREAKABLE, 'breakable')!;

    fs.rmSync(target);
    await keptBecause(/cannot be read/);
    expect(workspace.programIdOf(BREAKABLE, 'breakable')).to.equal(droppingId);
    expect(programIds().has(droppingId)).to.equal(true);
    expectSteadyUntouched();
  });

  it('keeps every program while the manifest dir is gone, and picks it up when it is back', async () => {
    const away = `${workspace.manifests}.away`;

    const beforeMove = log.mark();
    fs.renameSync(workspace.manifests, away);
    const missing = await log.waitFor('manifest dir missing', beforeMove);
    // The change of view triggers a reconcile; a SIGHUP forces another one on top.
    await log.waitFor(
      'reconcile done',
      missing.after,
      (e) => !!e.reasons?.includes('manifests changed'),
    );
    daemon!.child.kill('SIGHUP');
    await log.waitFor('reconcile done', missing.after, (e) => !!e.reasons?.includes('SIGHUP'));
    expect(pinnedProgramIds(workspace)).to.deep.equal(baseline);
    expect(log.since(beforeMove).filter((entry) => entry.msg === 'program unloaded')).to.deep.equal(
      [],
    );

    const beforeReturn = log.mark();
    fs.renameSync(away, workspace.manifests);
    await log.waitFor('manifest dir is back', beforeReturn);
    await loaded(STEADY, 'steady');
    await loaded(BREAKABLE, 'breakable');
    expectNothingChanged();

    // Watching works again: a change made now is applied.
    workspace.writeManifest(BREAKABLE, breakableText(20, XDP_DROP));
    await expectRepairedWithDrop();
  });
});
