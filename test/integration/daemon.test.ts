import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import {
  bpfd,
  BPFD,
  Daemon,
  eventually,
  objectsLeftSince,
  OBJECTS,
  programIds,
  readCounters,
  readU64,
  sh,
  tcProgram,
  tracepointProgram,
  u32,
  VethPair,
  Workspace,
  xdpCounter,
  xdpProgram,
} from '../helpers/env.js';
import { DaemonLog } from '../helpers/daemon-log.js';
import { kernelObjectIds } from '../../src/kernel/index.js';

const XDP_PASS = 2;
const XDP_DROP = 1;

/** The example counter returning `verdict`. */
function counter(name: string, iface: string, verdict = XDP_PASS) {
  return xdpCounter(name, iface, { globaldata: { verdict: u32(verdict) } });
}

describe('bpfd run (daemon, real kernel)', function () {
  this.timeout(120_000);
  let veth: VethPair;
  let workspace: Workspace;
  let daemon: Daemon | undefined;

  beforeEach(async () => {
    veth = await new VethPair().create();
    workspace = await Workspace.create();
  });

  afterEach(async function () {
    await daemon?.stopAndReport(this.currentTest?.state === 'failed');
    daemon = undefined;
    await workspace.cleanup();
    await veth.cleanup();
  });

  const start = () => (daemon = new Daemon(workspace, veth.nsA));
  const loaded = (file: string, name: string) => workspace.loaded(file, name);

  describe('XdpProgram', () => {
    it('loads, attaches and pins a dropped-in manifest and counts the traffic', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('counter', veth.ifA)]);
      await loaded('xdp.yaml', 'counter');

      const id = workspace.programIdOf('xdp.yaml', 'counter')!;
      expect(programIds().has(id)).to.equal(true);
      const mapPin = workspace.mapPinOf('xdp.yaml', 'counter', 'xdp_stats_map');
      expect(mapPin.startsWith(workspace.bpffsRoot)).to.equal(true);

      expect(await veth.pingAFromB(5)).to.equal(5);
      expect(readCounters(mapPin).packets >= 5n).to.equal(true);
      const annotations = workspace.bpfProgram('xdp.yaml', 'counter')!.metadata.annotations;
      expect(annotations['bpfd.io/xdp-mode']).to.equal('native');
      expect(annotations['bpfd.io/attach-point']).to.equal(`xdp on ${veth.ifA}`);
      const net = await sh('nsenter', [
        `--net=/run/netns/${veth.nsA}`,
        'bpftool',
        '-j',
        'net',
        'show',
        'dev',
        veth.ifA,
      ]);
      expect(net).to.include('"xdp"');
    });

    it('applies globaldata: verdict drop stops the pings and still counts them', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('dropper', veth.ifA, XDP_DROP)]);
      await loaded('xdp.yaml', 'dropper');
      const mapPin = workspace.mapPinOf('xdp.yaml', 'dropper', 'xdp_stats_map');

      expect(await veth.pingAFromB(3)).to.equal(0);
      expect(readCounters(mapPin).packets >= 3n).to.equal(true);
    });

    it('replaces the program when the manifest changes and unloads the old one', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('edited', veth.ifA, XDP_PASS)]);
      await loaded('xdp.yaml', 'edited');
      const firstId = workspace.programIdOf('xdp.yaml', 'edited')!;

      workspace.writeManifest('xdp.yaml', [counter('edited', veth.ifA, XDP_DROP)]);
      const secondId = await eventually('a new program id', () => {
        const id = workspace.programIdOf('xdp.yaml', 'edited');
        return (
          id !== undefined &&
          id !== firstId &&
          workspace.condition('xdp.yaml', 'edited')?.type === 'Loaded' &&
          id
        );
      });
      expect(programIds().has(secondId)).to.equal(true);
      await eventually('old program freed', () => !programIds().has(firstId));
      expect(await veth.pingAFromB(2)).to.equal(0);
    });

    it('detaches and unpins everything when the manifest is removed', async () => {
      const before = kernelObjectIds();
      start();
      workspace.writeManifest('xdp.yaml', [counter('removed', veth.ifA)]);
      await loaded('xdp.yaml', 'removed');
      const id = workspace.programIdOf('xdp.yaml', 'removed')!;

      workspace.removeManifest('xdp.yaml');
      await eventually('program freed', () => !programIds().has(id));
      await eventually('pins gone', () => workspace.pins().length === 0);
      expect(await objectsLeftSince(before)).to.deep.equal({ programs: [], maps: [], links: [] });
      expect(fs.existsSync(path.join(workspace.manifests, 'xdp.status.yaml'))).to.equal(false);
    });

    it('keeps the same program ids across a daemon restart', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('kept', veth.ifA)]);
      await loaded('xdp.yaml', 'kept');
      const id = workspace.programIdOf('xdp.yaml', 'kept');
      const stopped = await daemon!.stop();
      expect(stopped.code).to.equal(0);
      expect(programIds().has(id!)).to.equal(true);

      const again = await workspace.runOnce(veth.nsA);
      expect(again.code, again.stdout + again.stderr).to.equal(0);
      expect(again.stdout).not.to.include('program loaded');
      expect(workspace.programIdOf('xdp.yaml', 'kept')).to.equal(id);
    });

    it('stops cleanly on SIGTERM during its first converge, and the next start finishes it', async () => {
      const programs = Array.from({ length: 24 }, (_, n) =>
        xdpCounter(`early${n}`, veth.ifA, { priority: n + 1 }),
      );
      workspace.writeManifest('xdp.yaml', programs);
      start();
      const log = new DaemonLog(daemon!.child);
      await log.waitFor('metrics listening', 0);
      const stopped = await daemon!.stop();

      expect(stopped.code, stopped.stdout + stopped.stderr).to.equal(0);
      expect(stopped.stdout).to.include('stopping; programs stay attached and pinned');
      expect(stopped.stdout).not.to.include('daemon ready');
      // The root lock is free again and the pin tree is one the next start can finish.
      const again = await workspace.runOnce(veth.nsA);
      expect(again.code, again.stdout + again.stderr).to.equal(0);
      for (let n = 0; n < 24; n++) {
        expect(workspace.condition('xdp.yaml', `early${n}`)?.type).to.equal('Loaded');
      }
    });

    it('survives SIGHUP sent while it starts, and reloads', async () => {
      workspace.writeManifest('xdp.yaml', [counter('reloaded', veth.ifA)]);
      start();
      // From the moment the process catches SIGHUP (before that, no code of ours runs).
      const catchesHangup = () => {
        const status = fs.readFileSync(`/proc/${daemon!.child.pid}/status`, 'utf8');
        const caught = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
        return (BigInt(`0x${caught}`) & 1n) === 1n;
      };
      const log = new DaemonLog(daemon!.child);
      while (!catchesHangup()) await new Promise((resolve) => setTimeout(resolve, 2));
      // Caught before the daemon has set anything up, not only once it serves.
      expect(log.entries().map((entry) => entry.msg)).to.deep.equal([]);
      for (const delayMs of [0, 30, 100, 200, 400]) {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        daemon!.child.kill('SIGHUP');
      }
      await loaded('xdp.yaml', 'reloaded');
      expect(daemon!.child.exitCode).to.equal(null);
      const stopped = await daemon!.stop();
      expect(stopped.code, stopped.stdout + stopped.stderr).to.equal(0);
      expect(stopped.stdout).to.include('reload reconciled');
    });

    it('leaves no process behind: Ctrl-C at its terminal, or kill -9', async () => {
      for (const ending of ['Ctrl-C', 'SIGKILL'] as const) {
        // Its own process group, as a shell gives a command in the foreground.
        const child = spawn(
          'nsenter',
          [
            `--net=/run/netns/${veth.nsA}`,
            process.execPath,
            BPFD,
            'run',
            ...workspace.flags(),
            '--log-format',
            'json',
          ],
          {
            stdio: ['ignore', 'pipe', 'pipe'],
            detached: true,
          },
        );
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          const log = new DaemonLog(child);
          await log.waitFor('daemon ready', 0);
          const helpers = descendantsOf(child.pid!);
          expect(helpers.length, 'the interface monitor runs').to.be.greaterThan(0);

          if (ending === 'Ctrl-C') process.kill(-child.pid!, 'SIGINT');
          else child.kill('SIGKILL');
          await exited;
          await eventually(`no helper left after ${ending}`, () =>
            helpers.every((pid) => !fs.existsSync(`/proc/${pid}`)),
          );
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
      }
    });

    it('adopts the pin tree of a previous version: new dispatcher code, same programs', async () => {
      workspace.writeManifest('xdp.yaml', [counter('adopted', veth.ifA)]);
      expect((await workspace.runOnce(veth.nsA)).code).to.equal(0);
      const id = workspace.programIdOf('xdp.yaml', 'adopted');
      // a revision built by an older daemon: same layout, another dispatcher version in its hash
      const revision = workspace.pins().find((p) => /\/rev_\d+_[0-9a-f]+\/prog$/.test(p))!;
      const revisionDir = path.dirname(revision);
      fs.renameSync(revisionDir, revisionDir.replace(/_[0-9a-f]+$/, '_00000000000000aa'));

      const upgraded = await workspace.runOnce(veth.nsA);
      expect(upgraded.code, upgraded.stdout + upgraded.stderr).to.equal(0);
      expect(upgraded.stdout).to.include('dispatcher chain installed');
      expect(upgraded.stdout).not.to.include('program loaded');
      expect(workspace.programIdOf('xdp.yaml', 'adopted')).to.equal(id);
      expect(
        workspace.pins().filter((p) => /\/rev_/.test(p) && p.endsWith('/prog')),
      ).to.have.length(1);
    });

    it('keeps the previous program when the file stops parsing and says why', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('stable', veth.ifA)]);
      await loaded('xdp.yaml', 'stable');
      const id = workspace.programIdOf('xdp.yaml', 'stable');

      workspace.writeManifest(
        'xdp.yaml',
        'apiVersion: bpfd.io/v1alpha1\nkind: XdpProgram\n  metadata: [broken\n',
      );
      const lastKnownGood = await eventually('LastKnownGood condition', () =>
        workspace
          .statusOf('xdp.yaml')[0]
          ?.status?.conditions?.find((c: { type: string }) => c.type === 'LastKnownGood'),
      );
      expect(lastKnownGood.message).to.include('xdp.yaml');
      expect(workspace.programIdOf('xdp.yaml', 'stable')).to.equal(id);
      expect(programIds().has(id!)).to.equal(true);
    });

    it("keeps a broken file's programs across a restart, and plan agrees", async () => {
      workspace.writeManifest('xdp.yaml', [counter('survivor', veth.ifA)]);
      expect((await workspace.runOnce(veth.nsA)).code).to.equal(0);
      const id = workspace.programIdOf('xdp.yaml', 'survivor');

      workspace.writeManifest('xdp.yaml', 'apiVersion: bpfd.io/v1alpha1\nkind: [broken\n');
      const restarted = await workspace.runOnce(veth.nsA);
      expect(restarted.stdout).not.to.include('program unloaded');
      expect(programIds().has(id!)).to.equal(true);
      expect(workspace.programIdOf('xdp.yaml', 'survivor')).to.equal(id);
      const kept = workspace.statusOf('xdp.yaml')[0].status.conditions;
      expect(kept.map((c: { type: string }) => c.type)).to.include('LastKnownGood');

      const planned = await bpfd(['plan', ...workspace.flags()], veth.nsA);
      expect(planned.code, planned.stdout).to.equal(0);
    });

    it('unloads nothing when it starts while the manifest dir is missing', async () => {
      workspace.writeManifest('xdp.yaml', [counter('waiting', veth.ifA)]);
      expect((await workspace.runOnce(veth.nsA)).code).to.equal(0);
      const id = workspace.programIdOf('xdp.yaml', 'waiting');
      const parked = `${workspace.manifests}.parked`;
      fs.renameSync(workspace.manifests, parked);
      try {
        const restarted = await workspace.runOnce(veth.nsA);
        expect(restarted.stdout).not.to.include('program unloaded');
        expect(restarted.stdout).not.to.include('dispatcher removed');
        expect(programIds().has(id!)).to.equal(true);
      } finally {
        fs.renameSync(parked, workspace.manifests);
      }
      expect(workspace.programIdOf('xdp.yaml', 'waiting')).to.equal(id);
    });

    it('reports NotSelected when the nodeselector does not match this node', async () => {
      start();
      const manifest = counter('elsewhere', veth.ifA) as { spec: Record<string, unknown> };
      manifest.spec.nodeselector = { matchLabels: { role: 'edge' } };
      workspace.writeManifest('xdp.yaml', [manifest]);
      const condition = await eventually('NotSelected', () => {
        const c = workspace.condition('xdp.yaml', 'elsewhere');
        return c?.type === 'NotSelected' && c;
      });
      expect(condition.message).to.include('role=edge');
      expect(workspace.pins()).to.deep.equal([]);
    });

    it('reports a missing interface and attaches once it appears', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('later', 'bgtlate0')]);
      const waiting = await eventually('NotLoaded', () => {
        const c = workspace.condition('xdp.yaml', 'later');
        return c?.type === 'NotLoaded' && c;
      });
      expect(waiting.message).to.include('bgtlate0');

      await veth.addPairInA('bgtlate0', 'bgtlate1');
      await sh('ip', ['-n', veth.nsA, 'link', 'set', 'bgtlate0', 'up']);
      await loaded('xdp.yaml', 'later');
    });

    it('keeps the program loaded while its interface is gone and re-attaches it when it is back', async () => {
      await veth.addPairInA('bgtflap0', 'bgtflap1');
      start();
      workspace.writeManifest('xdp.yaml', [counter('flapping', 'bgtflap0')]);
      await loaded('xdp.yaml', 'flapping');
      const id = workspace.programIdOf('xdp.yaml', 'flapping');

      await sh('ip', ['-n', veth.nsA, 'link', 'del', 'bgtflap0']);
      const gone = await eventually(
        'NotLoaded after removal',
        () => {
          const c = workspace.condition('xdp.yaml', 'flapping');
          return c?.type === 'NotLoaded' && c;
        },
        60_000,
      );
      expect(gone.message).to.include('bgtflap0');
      expect(workspace.programIdOf('xdp.yaml', 'flapping')).to.equal(id);
      expect(workspace.pins().some((p) => p.includes('/dispatchers/'))).to.equal(false);

      await veth.addPairInA('bgtflap0', 'bgtflap1');
      await loaded('xdp.yaml', 'flapping');
      expect(workspace.programIdOf('xdp.yaml', 'flapping')).to.equal(id);
    });

    it('keeps the running version when the edited bytecode is refused', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('upgraded', veth.ifA)]);
      await loaded('xdp.yaml', 'upgraded');
      const id = workspace.programIdOf('xdp.yaml', 'upgraded')!;
      const mapPin = workspace.mapPinOf('xdp.yaml', 'upgraded', 'xdp_stats_map');

      workspace.writeManifest('xdp.yaml', [
        xdpProgram('upgraded', {
          sectionname: 'reject',
          interfaceselector: { interface: veth.ifA },
          bytecode: { path: path.join(OBJECTS, 'test/verifier_reject.o') },
        }),
      ]);
      const refused = await eventually('NotLoaded', () => {
        const c = workspace.condition('xdp.yaml', 'upgraded');
        return c?.type === 'NotLoaded' && c;
      });
      expect(refused.message).to.include(`previous version (program id ${id}) keeps running`);
      expect(workspace.programIdOf('xdp.yaml', 'upgraded')).to.equal(id);
      expect(programIds().has(id)).to.equal(true);
      const before = readCounters(mapPin).packets;
      expect(await veth.pingAFromB(3)).to.equal(3);
      expect(readCounters(mapPin).packets - before >= 3n).to.equal(true);
    });

    it('does not rebuild the hook of a program that can never load on every reconcile', async () => {
      workspace.writeManifest('xdp.yaml', [
        counter('healthy', veth.ifA),
        xdpCounter('hopeless', veth.ifA, { sectionname: 'nothing-by-that-name' }),
      ]);
      start();
      await loaded('xdp.yaml', 'healthy');
      await eventually(
        'hopeless refused',
        () => workspace.condition('xdp.yaml', 'hopeless')?.type === 'BytecodeSelectorError',
      );
      const dispatcherId = () =>
        workspace.bpfProgram('xdp.yaml', 'healthy')!.metadata.annotations['bpfd.io/dispatcher-id'];
      const before = dispatcherId();

      const log = new DaemonLog(daemon!.child);
      for (let i = 0; i < 2; i++) {
        const mark = log.mark();
        daemon!.child.kill('SIGHUP');
        await log.waitFor('reload reconciled', mark);
      }
      expect(dispatcherId()).to.equal(before);
      expect(log.entries().filter((e) => e.msg === 'dispatcher chain installed')).to.deep.equal([]);
      expect(workspace.condition('xdp.yaml', 'hopeless')?.message).to.include(
        'nothing-by-that-name',
      );
    });

    it('reports NotLoaded with the verifier log when the kernel refuses the program', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [
        xdpProgram('refused', {
          sectionname: 'reject',
          interfaceselector: { interface: veth.ifA },
          bytecode: { path: path.join(OBJECTS, 'test/verifier_reject.o') },
        }),
        counter('fine', veth.ifA),
      ]);
      const refused = await eventually('NotLoaded', () => {
        const c = workspace.condition('xdp.yaml', 'refused');
        return c?.type === 'NotLoaded' && c;
      });
      expect(refused.message).to.match(/EACCES|invalid access to packet/);
      expect(refused.message).to.include('invalid access to packet');
      await loaded('xdp.yaml', 'fine');
    });
  });

  describe('bytecode.path', () => {
    it('takes a relative path from where the manifest really is, through a symlinked dir', async () => {
      const release = path.join(workspace.dir, 'releases', 'abc123');
      fs.mkdirSync(path.join(release, 'manifests'), { recursive: true });
      fs.mkdirSync(path.join(release, 'objects'));
      fs.copyFileSync(path.join(OBJECTS, 'xdp_counter.o'), path.join(release, 'objects', 'x.o'));
      fs.rmSync(workspace.manifests, { recursive: true });
      fs.symlinkSync(path.join(release, 'manifests'), workspace.manifests);
      workspace.writeManifest('xdp.yaml', [
        xdpCounter('relative', veth.ifA, { bytecode: { path: '../objects/x.o' } }),
      ]);

      const result = await workspace.runOnce(veth.nsA);
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(workspace.condition('xdp.yaml', 'relative')?.type).to.equal('Loaded');
    });
  });

  describe('bytecode that cannot be used', () => {
    it('names a missing file and a file that is not an ELF object', async () => {
      const notElf = path.join(workspace.dir, 'not-elf.o');
      fs.writeFileSync(notElf, 'this is not an object file\n');
      workspace.writeManifest('xdp.yaml', [
        xdpCounter('missing', veth.ifA, { bytecode: { path: '/nonexistent/bpfd-test.o' } }),
        xdpCounter('garbage', veth.ifA, { bytecode: { path: notElf } }),
        counter('fine', veth.ifA),
      ]);
      expect((await workspace.runOnce(veth.nsA)).code).to.equal(1);

      const missing = workspace.condition('xdp.yaml', 'missing')!;
      expect(missing.type).to.equal('BytecodeSelectorError');
      expect(missing.message).to.equal('spec.bytecode.path /nonexistent/bpfd-test.o: no such file');
      const garbage = workspace.condition('xdp.yaml', 'garbage')!;
      expect(garbage.type).to.equal('BytecodeSelectorError');
      expect(garbage.message).to.include(notElf);
      expect(garbage.message).to.include('not a valid ELF object');
      expect(workspace.condition('xdp.yaml', 'fine')?.type).to.equal('Loaded');
    });
  });

  describe('maps pinned by name', () => {
    it('keeps LIBBPF_PIN_BY_NAME maps inside the bpffs root', async () => {
      start();
      workspace.writeManifest('pinned.yaml', [
        xdpProgram('pinned', {
          sectionname: 'pinned_by_name',
          interfaceselector: { interface: veth.ifA },
          bytecode: { path: path.join(OBJECTS, 'test/pinned_by_name.o') },
        }),
      ]);
      await loaded('pinned.yaml', 'pinned');
      const mapPin = workspace.mapPinOf('pinned.yaml', 'pinned', 'bpfd_test_pinned_hits');
      expect(mapPin.startsWith(workspace.bpffsRoot)).to.equal(true);
      expect(fs.existsSync('/sys/fs/bpf/bpfd_test_pinned_hits')).to.equal(false);
      expect(await veth.pingAFromB(2)).to.equal(2);
      expect(readU64(mapPin) >= 2n).to.equal(true);
    });
  });

  describe('TcProgram', () => {
    it('attaches on ingress, counts the traffic and applies globaldata', async () => {
      start();
      workspace.writeManifest('tc.yaml', [
        tcProgram('tc-counter', {
          sectionname: 'stats',
          direction: 'INGRESS',
          interfaceselector: { interface: veth.ifA },
          bytecode: { path: path.join(OBJECTS, 'tc_counter.o') },
        }),
      ]);
      await loaded('tc.yaml', 'tc-counter');
      const mapPin = workspace.mapPinOf('tc.yaml', 'tc-counter', 'tc_stats_map');
      expect(await veth.pingAFromB(4)).to.equal(4);
      expect(readCounters(mapPin).packets >= 4n).to.equal(true);

      workspace.writeManifest('tc.yaml', [
        tcProgram('tc-counter', {
          sectionname: 'stats',
          direction: 'ingress',
          interfaceselector: { interface: veth.ifA },
          globaldata: { verdict: u32(2) /* TC_ACT_SHOT */ },
          bytecode: { path: path.join(OBJECTS, 'tc_counter.o') },
        }),
      ]);
      await eventually('shot verdict in effect', async () => (await veth.pingAFromB(1)) === 0);
    });
  });

  describe('coexistence and modes', () => {
    it('leaves a tc filter someone else added in place, while attaching and after removal', async () => {
      // TC_BPF_MNT keeps tc's own pins (tc/globals) inside this test's bpffs root.
      const inNs = (args: string[]) =>
        sh('nsenter', [
          `--net=/run/netns/${veth.nsA}`,
          'env',
          `TC_BPF_MNT=${workspace.bpffsRoot}`,
          ...args,
        ]);
      await inNs(['tc', 'qdisc', 'add', 'dev', veth.ifA, 'clsact']);
      await inNs([
        'tc',
        'filter',
        'add',
        'dev',
        veth.ifA,
        'ingress',
        'bpf',
        'da',
        'obj',
        path.join(OBJECTS, 'test/tc_verdict.o'),
        'sec',
        'classifier',
      ]);
      const foreign = () => inNs(['tc', 'filter', 'show', 'dev', veth.ifA, 'ingress']);
      const before = await foreign();
      expect(before).to.include('tc_verdict');

      start();
      workspace.writeManifest('tc.yaml', [
        tcProgram('alongside', {
          sectionname: 'stats',
          interfaceselector: { interface: veth.ifA },
          bytecode: { path: path.join(OBJECTS, 'tc_counter.o') },
        }),
      ]);
      await loaded('tc.yaml', 'alongside');
      expect(await foreign()).to.equal(before);

      workspace.removeManifest('tc.yaml');
      await eventually(
        'dispatcher removed',
        () => !workspace.pins().some((p) => p.includes('/dispatchers/')),
      );
      expect(await foreign()).to.equal(before);
    });

    it('uses the XDP mode the config sets for an interface and shows it in status', async () => {
      workspace.writeConfig({ xdpModeByInterface: { [veth.ifA]: 'skb' } });
      start();
      workspace.writeManifest('xdp.yaml', [counter('generic', veth.ifA)]);
      await loaded('xdp.yaml', 'generic');
      const annotations = workspace.bpfProgram('xdp.yaml', 'generic')!.metadata.annotations;
      expect(annotations['bpfd.io/xdp-mode']).to.equal('skb');
      const net = await sh('nsenter', [
        `--net=/run/netns/${veth.nsA}`,
        'ip',
        'link',
        'show',
        veth.ifA,
      ]);
      expect(net).to.include('xdpgeneric');
    });
  });

  describe('TracepointProgram', () => {
    it('attaches to the tracepoint and counts only the process globaldata names', async () => {
      start();
      workspace.writeManifest('tp.yaml', [
        tracepointProgram('opens', {
          sectionname: 'tracepoint_openat',
          name: 'syscalls/sys_enter_openat',
          globaldata: { match_tgid: u32(process.pid) },
          bytecode: { path: path.join(OBJECTS, 'tracepoint_counter.o') },
        }),
      ]);
      await loaded('tp.yaml', 'opens');
      const mapPin = workspace.mapPinOf('tp.yaml', 'opens', 'tracepoint_stats_map');
      const before = readU64(mapPin);
      for (let i = 0; i < 10; i++) fs.closeSync(fs.openSync('/proc/self/stat', 'r'));
      const after = readU64(mapPin);
      expect(after - before >= 10n).to.equal(true);
      // another process (the ip command) opens files too, but is not counted
      await sh('ip', ['link', 'show', 'lo']);
      expect(readU64(mapPin) - after < 5n).to.equal(true);
    });
  });

  describe('locking', () => {
    it('refuses to start a second daemon on the same bpffs root', async () => {
      start();
      workspace.writeManifest('xdp.yaml', [counter('locked', veth.ifA)]);
      await loaded('xdp.yaml', 'locked');
      const second = await bpfd(['run', ...workspace.flags()], veth.nsA);
      expect(second.code).to.equal(1);
      expect(second.stderr).to.include('another bpfd daemon already manages');
    });
  });
});

/** Every process below `pid`, children first. */
function descendantsOf(pid: number): number[] {
  const children = fs
    .readdirSync(`/proc/${pid}/task`)
    .flatMap((task) =>
      fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/),
    )
    .filter((entry) => entry !== '')
    .map(Number);
  return children.flatMap((child) => [child, ...descendantsOf(child)]);
}
