import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import { BpfdError } from '../../../src/errors.js';
import {
  CONDITION,
  newCondition,
  readSidecar,
  StatusWriter,
  type ObjectStatus,
} from '../../../src/status/index.js';

const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const RFC3339_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

type Document = {
  apiVersion: string;
  kind?: string;
  metadata: {
    name?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: { node: string; type: string; programs: Record<string, Record<string, string>> };
  status: { conditions: Array<Record<string, unknown>> };
};

/** A clock the test moves by hand. */
function manualClock(start: string) {
  let current = new Date(start);
  return {
    now: () => current,
    set: (time: string) => {
      current = new Date(time);
    },
  };
}

function loadedXdp(message = 'loaded as program 42 on eth0'): ObjectStatus {
  return {
    index: 0,
    kind: 'XdpProgram',
    name: 'xdp-pass',
    generation: 3,
    objectConditions: [newCondition(CONDITION.reconcileSuccess, `xdp-pass: ${message}`)],
    bpfProgram: {
      type: 'xdp',
      programs: { '42': { xdp_stats_map: '/sys/fs/bpf/bpfd/progs/42/maps/xdp_stats_map' } },
      annotations: { 'bpfd.io/attach-point': 'eth0', 'bpfd.io/xdp-mode': 'native' },
      conditions: [newCondition(CONDITION.loaded, message)],
    },
  };
}

function failedXdp(): ObjectStatus {
  const failure = 'load failed: EACCES, verifier: R2 invalid mem access';
  return {
    ...loadedXdp(),
    objectConditions: [newCondition(CONDITION.reconcileError, failure)],
    bpfProgram: {
      type: 'xdp',
      programs: {},
      conditions: [newCondition(CONDITION.notLoaded, failure)],
    },
  };
}

async function documentsOf(sidecar: string): Promise<Document[]> {
  return (await readSidecar(sidecar)) as Document[];
}

describe('StatusWriter', () => {
  let root: string;
  let manifestDir: string;
  let manifest: string;
  let sidecar: string;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bpfd-status-'));
    manifestDir = path.join(root, 'programs.d');
    await fs.mkdir(manifestDir);
    manifest = path.join(manifestDir, 'edge.yaml');
    sidecar = path.join(manifestDir, 'edge.status.yaml');
    await fs.writeFile(manifest, '# manifest under test\n');
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  describe('content', () => {
    it('writes a status document and a BpfProgram document per valid object', async () => {
      const clock = manualClock('2024-05-01T10:00:00.123Z');
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a', now: clock.now });

      expect(await writer.write(manifest, [loadedXdp()])).to.equal(true);

      const [program, bpfProgram] = await documentsOf(sidecar);
      expect(program).to.deep.equal({
        apiVersion: 'bpfd.io/v1alpha1',
        kind: 'XdpProgram',
        metadata: { name: 'xdp-pass', generation: 3 },
        status: {
          conditions: [
            {
              type: 'ReconcileSuccess',
              status: 'True',
              observedGeneration: 3,
              lastTransitionTime: '2024-05-01T10:00:00Z',
              reason: 'ReconcileSuccess',
              message: 'xdp-pass: loaded as program 42 on eth0',
            },
          ],
        },
      });
      expect(bpfProgram).to.deep.equal({
        apiVersion: 'bpfd.io/v1alpha1',
        kind: 'BpfProgram',
        metadata: {
          name: 'xdp-pass-node-a',
          labels: { ownedByProgram: 'xdp-pass', 'kubernetes.io/hostname': 'node-a' },
          annotations: { 'bpfd.io/attach-point': 'eth0', 'bpfd.io/xdp-mode': 'native' },
        },
        spec: {
          node: 'node-a',
          type: 'xdp',
          programs: { '42': { xdp_stats_map: '/sys/fs/bpf/bpfd/progs/42/maps/xdp_stats_map' } },
        },
        status: {
          conditions: [
            {
              type: 'Loaded',
              status: 'True',
              lastTransitionTime: '2024-05-01T10:00:00Z',
              reason: 'bpfdLoaded',
              message: 'loaded as program 42 on eth0',
            },
          ],
        },
      });
    });

    it('keeps document order and marks an unnamed invalid document by its index', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      const invalidUnnamed: ObjectStatus = {
        index: 1,
        kind: 'TcProgram',
        objectConditions: [newCondition(CONDITION.invalid, 'metadata.name: required')],
      };
      const invalidNamed: ObjectStatus = {
        index: 2,
        kind: 'TracepointProgram',
        name: 'open-trace',
        objectConditions: [newCondition(CONDITION.invalid, 'spec.name: must be group/event')],
      };
      const notSelected: ObjectStatus = {
        index: 3,
        kind: 'TcProgram',
        name: 'tc-gpu',
        objectConditions: [newCondition(CONDITION.reconcileSuccess, 'nothing to load here')],
        bpfProgram: {
          type: 'tc',
          programs: {},
          conditions: [newCondition(CONDITION.notSelected, 'node-a does not match gpu')],
        },
      };

      await writer.write(manifest, [loadedXdp(), invalidUnnamed, invalidNamed, notSelected]);

      const documents = await documentsOf(sidecar);
      expect(documents.map((document) => [document.kind, document.metadata.name])).to.deep.equal([
        ['XdpProgram', 'xdp-pass'],
        ['BpfProgram', 'xdp-pass-node-a'],
        ['TcProgram', undefined],
        ['TracepointProgram', 'open-trace'],
        ['TcProgram', 'tc-gpu'],
        ['BpfProgram', 'tc-gpu-node-a'],
      ]);
      expect(documents[2]!.metadata.annotations).to.deep.equal({ 'bpfd.io/document-index': '1' });
      expect(documents[3]!.metadata.annotations).to.equal(undefined);
      expect(documents[5]!.spec).to.deep.equal({ node: 'node-a', type: 'tc', programs: {} });

      const conditions = documents.flatMap((document) => document.status.conditions);
      for (const condition of conditions) {
        expect(condition.reason).to.match(REASON_PATTERN);
        expect(condition.lastTransitionTime).to.match(RFC3339_SECONDS);
        expect(condition.message).to.be.a('string').and.not.equal('');
      }
    });

    it('spells every condition type and reason as metav1.Condition allows', () => {
      for (const kind of Object.values(CONDITION)) expect(kind.reason).to.match(REASON_PATTERN);
      expect(CONDITION.notUnloaded).to.deep.equal({
        type: 'NotUnLoaded',
        reason: 'bpfdNotUnloaded',
      });
      expect(CONDITION.notYetLoaded.reason).to.equal('ProgramsNotYetLoaded');
    });

    it('refuses a status that would not validate, before touching the file', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      const badReason = { ...loadedXdp(), objectConditions: [] };
      badReason.bpfProgram!.conditions = [
        { type: 'Loaded', status: 'True', reason: 'bpfd loaded', message: 'x' },
      ];
      const noMessage = { ...loadedXdp(), objectConditions: [newCondition(CONDITION.loaded, '')] };
      const twice = {
        ...loadedXdp(),
        objectConditions: [
          newCondition(CONDITION.reconcileError, 'first'),
          newCondition(CONDITION.reconcileError, 'second'),
        ],
      };
      const unnamedBpfProgram = { ...loadedXdp(), name: undefined };

      for (const objects of [[badReason], [noMessage], [twice], [unnamedBpfProgram]]) {
        const error = await writer.write(manifest, objects).then(
          () => expect.fail('write should have been refused'),
          (reason: unknown) => reason,
        );
        expect(error).to.be.instanceOf(BpfdError).with.property('code', 'BPFD_E_STATUS');
      }
      expect(await fs.readdir(manifestDir)).to.deep.equal(['edge.yaml']);
    });

    it('cuts a huge message to the schema limit, keeping both ends', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      const log = 'START ' + 'x'.repeat(40000) + ' END';
      const object = { ...loadedXdp(), objectConditions: [newCondition(CONDITION.notLoaded, log)] };

      await writer.write(manifest, [object]);

      const message = String((await documentsOf(sidecar))[0]!.status.conditions[0]!.message);
      expect(message.length).to.be.at.most(32768);
      expect(message.startsWith('START ')).to.equal(true);
      expect(message.endsWith(' END')).to.equal(true);
    });
  });

  describe('lastTransitionTime', () => {
    it('stays when only the message changes', async () => {
      const clock = manualClock('2024-05-01T10:00:00Z');
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a', now: clock.now });
      await writer.write(manifest, [loadedXdp('program 42')]);

      clock.set('2024-05-01T11:00:00Z');
      expect(await writer.write(manifest, [loadedXdp('program 42, now at position 1')])).to.equal(
        true,
      );

      const [program, bpfProgram] = await documentsOf(sidecar);
      expect(program!.status.conditions[0]!.lastTransitionTime).to.equal('2024-05-01T10:00:00Z');
      expect(bpfProgram!.status.conditions[0]!.lastTransitionTime).to.equal('2024-05-01T10:00:00Z');
      expect(bpfProgram!.status.conditions[0]!.message).to.equal('program 42, now at position 1');
    });

    it('survives a restart: a new writer reads it from the sidecar', async () => {
      const first = new StatusWriter({
        manifestDir,
        nodeName: 'node-a',
        now: () => new Date('2024-05-01T10:00:00Z'),
      });
      await first.write(manifest, [loadedXdp('before restart')]);

      const restarted = new StatusWriter({
        manifestDir,
        nodeName: 'node-a',
        now: () => new Date('2024-05-02T08:30:00Z'),
      });
      await restarted.write(manifest, [loadedXdp('after restart')]);

      const [program] = await documentsOf(sidecar);
      expect(program!.status.conditions[0]!.lastTransitionTime).to.equal('2024-05-01T10:00:00Z');
    });

    it('moves when the condition changes type, status or reason', async () => {
      const clock = manualClock('2024-05-01T10:00:00Z');
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a', now: clock.now });
      await writer.write(manifest, [loadedXdp()]);

      clock.set('2024-05-01T12:00:00Z');
      await writer.write(manifest, [failedXdp()]);
      const [, afterFailure] = await documentsOf(sidecar);
      expect(afterFailure!.status.conditions[0]).to.include({
        type: 'NotLoaded',
        lastTransitionTime: '2024-05-01T12:00:00Z',
      });

      clock.set('2024-05-01T13:00:00Z');
      const flipped = loadedXdp();
      flipped.bpfProgram!.conditions = [newCondition(CONDITION.notLoaded, 'cleared', 'False')];
      await writer.write(manifest, [flipped]);
      const [, afterFlip] = await documentsOf(sidecar);
      expect(afterFlip!.status.conditions[0]).to.include({
        status: 'False',
        lastTransitionTime: '2024-05-01T13:00:00Z',
      });

      clock.set('2024-05-01T14:00:00Z');
      flipped.bpfProgram!.conditions = [
        { ...newCondition(CONDITION.notLoaded, 'cleared', 'False'), reason: 'otherReason' },
      ];
      await writer.write(manifest, [flipped]);
      const [, afterReason] = await documentsOf(sidecar);
      expect(afterReason!.status.conditions[0]!.lastTransitionTime).to.equal(
        '2024-05-01T14:00:00Z',
      );
    });
  });

  describe('writing', () => {
    it('does not rewrite a sidecar whose content is unchanged', async () => {
      const clock = manualClock('2024-05-01T10:00:00Z');
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a', now: clock.now });
      await writer.write(manifest, [loadedXdp()]);
      const before = await fs.stat(sidecar);

      clock.set('2024-05-01T10:05:00Z');
      const restarted = new StatusWriter({ manifestDir, nodeName: 'node-a', now: clock.now });
      expect(await writer.write(manifest, [loadedXdp()])).to.equal(false);
      expect(await restarted.write(manifest, [loadedXdp()])).to.equal(false);

      const after = await fs.stat(sidecar);
      expect(after.ino).to.equal(before.ino);
      expect(after.mtimeMs).to.equal(before.mtimeMs);
    });

    it('leaves no temp files and writes mode 0644 whatever the umask', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      const previousUmask = process.umask(0o077);
      try {
        await writer.write(manifest, [loadedXdp()]);
        await writer.write(manifest, [failedXdp()]);
      } finally {
        process.umask(previousUmask);
      }

      expect((await fs.readdir(manifestDir)).sort()).to.deep.equal([
        'edge.status.yaml',
        'edge.yaml',
      ]);
      expect((await fs.stat(sidecar)).mode & 0o777).to.equal(0o644);
    });

    it('replaces a symlink planted at the sidecar path instead of writing through it', async () => {
      const victim = path.join(root, 'victim.conf');
      await fs.writeFile(victim, 'precious\n');
      await fs.symlink(victim, sidecar);
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });

      expect(await writer.write(manifest, [loadedXdp()])).to.equal(true);

      expect(await fs.readFile(victim, 'utf8')).to.equal('precious\n');
      expect((await fs.lstat(sidecar)).isFile()).to.equal(true);
      expect((await documentsOf(sidecar))[0]!.kind).to.equal('XdpProgram');
    });

    it('creates nothing at the target of a dangling symlink at the sidecar path', async () => {
      const target = path.join(root, 'created-by-symlink');
      await fs.symlink(target, sidecar);
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });

      await writer.write(manifest, [loadedXdp()]);

      await fs.access(target).then(
        () => expect.fail('the symlink target must not be created'),
        (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
      );
      expect((await fs.lstat(sidecar)).isFile()).to.equal(true);
    });

    it('writes under the status dir, creating nested folders, and leaves the manifest dir alone', async () => {
      const statusDir = path.join(root, 'status');
      const nestedManifest = path.join(manifestDir, 'site', 'rack-7', 'tc.yml');
      await fs.mkdir(path.dirname(nestedManifest), { recursive: true });
      await fs.writeFile(nestedManifest, '# nested\n');
      const writer = new StatusWriter({ manifestDir, statusDir, nodeName: 'node-a' });

      await writer.write(nestedManifest, [loadedXdp()]);

      const expected = path.join(statusDir, 'site', 'rack-7', 'tc.status.yml');
      expect((await documentsOf(expected))[1]!.kind).to.equal('BpfProgram');
      expect(await fs.readdir(path.dirname(nestedManifest))).to.deep.equal(['tc.yml']);
      expect(await fs.readFile(expected, 'utf8')).to.match(/^# Status of site\/rack-7\/tc.yml /);
    });

    it('removes the sidecar instead of writing when the manifest is gone', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      await writer.write(manifest, [loadedXdp()]);
      await fs.rm(manifest);

      expect(await writer.write(manifest, [loadedXdp('late result')])).to.equal(false);
      expect(await fs.readdir(manifestDir)).to.deep.equal([]);
    });

    it('applies concurrent writes and removals of one file in call order', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });

      await Promise.all([
        writer.write(manifest, [loadedXdp('first')]),
        writer.write(manifest, [failedXdp()]),
        writer.write(manifest, [loadedXdp('last')]),
      ]);
      const [, bpfProgram] = await documentsOf(sidecar);
      expect(bpfProgram!.status.conditions[0]!.message).to.equal('last');

      await Promise.all([writer.remove(manifest), writer.write(manifest, [loadedXdp()])]);
      expect((await fs.readdir(manifestDir)).sort()).to.deep.equal([
        'edge.status.yaml',
        'edge.yaml',
      ]);
    });
  });

  describe('remove', () => {
    it('deletes the sidecar beside the manifest and tolerates a missing one', async () => {
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });
      await writer.write(manifest, [loadedXdp()]);

      await writer.remove(manifest);
      await writer.remove(manifest);

      expect(await fs.readdir(manifestDir)).to.deep.equal(['edge.yaml']);
    });

    it('unlinks a symlink at the sidecar path without touching its target', async () => {
      const victim = path.join(root, 'victim.conf');
      await fs.writeFile(victim, 'precious\n');
      await fs.symlink(victim, sidecar);
      const writer = new StatusWriter({ manifestDir, nodeName: 'node-a' });

      await writer.remove(manifest);

      expect(await fs.readFile(victim, 'utf8')).to.equal('precious\n');
      expect(await fs.readdir(manifestDir)).to.deep.equal(['edge.yaml']);
    });

    it('prunes emptied folders in the status dir but keeps the status dir', async () => {
      const statusDir = path.join(root, 'status');
      const nestedManifest = path.join(manifestDir, 'a', 'b', 'x.yaml');
      await fs.mkdir(path.dirname(nestedManifest), { recursive: true });
      await fs.writeFile(nestedManifest, '# nested\n');
      const writer = new StatusWriter({ manifestDir, statusDir, nodeName: 'node-a' });
      await writer.write(nestedManifest, [loadedXdp()]);
      await writer.write(manifest, [loadedXdp()]);

      await writer.remove(nestedManifest);

      expect(await fs.readdir(statusDir)).to.deep.equal(['edge.status.yaml']);
      await writer.remove(manifest);
      expect(await fs.readdir(statusDir)).to.deep.equal([]);
    });

    it('sweeps sidecars whose manifests were deleted while the daemon was down', async () => {
      const statusDir = path.join(root, 'status');
      const kept = path.join(manifestDir, 'kept.yml');
      const gone = path.join(manifestDir, 'sub', 'gone.yaml');
      await fs.mkdir(path.dirname(gone));
      await Promise.all([fs.writeFile(kept, '# kept\n'), fs.writeFile(gone, '# gone\n')]);
      const writer = new StatusWriter({ manifestDir, statusDir, nodeName: 'node-a' });
      await writer.write(kept, [loadedXdp()]);
      await writer.write(gone, [loadedXdp()]);
      await fs.rm(gone);

      const removed = await writer.removeOrphans();

      expect(removed).to.deep.equal([path.join(statusDir, 'sub', 'gone.status.yaml')]);
      expect(await fs.readdir(statusDir)).to.deep.equal(['kept.status.yml']);
    });
  });
});

describe('readSidecar', () => {
  let root: string;

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bpfd-read-sidecar-'));
  });

  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('returns no documents when the sidecar does not exist', async () => {
    expect(await readSidecar(path.join(root, 'x.status.yaml'))).to.deep.equal([]);
  });

  it('refuses to follow a symlink', async () => {
    const target = path.join(root, 'real.yaml');
    await fs.writeFile(target, 'kind: BpfProgram\n');
    await fs.symlink(target, path.join(root, 'x.status.yaml'));

    const error = await readSidecar(path.join(root, 'x.status.yaml')).then(
      () => expect.fail('a symlink must not be read'),
      (reason: unknown) => reason,
    );
    expect(error).to.be.instanceOf(BpfdError).with.property('code', 'BPFD_E_STATUS');
  });
});
