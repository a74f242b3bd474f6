/**
 * The daemon with `bytecode.image`, against a real registry on 127.0.0.1 (Debian's
 * docker-registry). Tracepoint programs need no interface, so the daemon runs in the host's
 * network namespace and reaches the loopback registry.
 */
import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { buildImageLayout, pushImageLayout } from '../../src/bytecode/index.js';
import {
  Daemon,
  eventually,
  OBJECTS,
  programIds,
  readU64,
  tracepointProgram,
  u32,
  Workspace,
} from '../helpers/env.js';
import { TestRegistry } from '../helpers/registry.js';

const USER = 'fleet-robot';
const PASSWORD = 'not-in-any-status-file';

describe('bytecode.image in the daemon (real registry, real kernel)', function () {
  this.timeout(120_000);
  let registry: TestRegistry;
  let workspace: Workspace;
  let reference: string;

  beforeEach(async () => {
    registry = await TestRegistry.start({ basicAuth: { username: USER, password: PASSWORD } });
    workspace = await Workspace.create();
    workspace.writeConfig({
      registries: { insecure: [registry.host] },
      secretsDir: path.join(workspace.dir, 'secrets'),
    });
    reference = registry.reference(`bpfd-test/opens${process.pid}:v1`);
  });

  afterEach(async () => {
    await workspace.cleanup();
    await registry.stop();
  });

  async function push(object: string): Promise<string> {
    const layout = path.join(workspace.dir, `layout-${path.basename(object)}`);
    fs.rmSync(layout, { recursive: true, force: true });
    await buildImageLayout({
      objectPath: path.join(OBJECTS, object),
      outDir: layout,
      programType: 'tracepoint',
      sectionName: 'tracepoint/syscalls/sys_enter_openat',
    });
    const pushed = await pushImageLayout(layout, reference, {
      insecure: true,
      username: USER,
      password: PASSWORD,
    });
    return pushed.manifestDigest;
  }

  function writeSecret(password: string): void {
    const secretsDir = path.join(workspace.dir, 'secrets');
    fs.mkdirSync(path.join(secretsDir, 'fleet'), { recursive: true });
    const auth = Buffer.from(`${USER}:${password}`).toString('base64');
    fs.writeFileSync(
      path.join(secretsDir, 'fleet', 'registry.json'),
      JSON.stringify({ auths: { [registry.host]: { auth } } }),
      { mode: 0o600 },
    );
  }

  function manifest(pullPolicy: string) {
    return [
      tracepointProgram('opens', {
        sectionname: 'tracepoint_openat',
        name: 'syscalls/sys_enter_openat',
        globaldata: { match_tgid: u32(process.pid) },
        bytecode: {
          image: {
            url: reference,
            imagepullpolicy: pullPolicy,
            imagepullsecret: { name: 'registry', namespace: 'fleet' },
          },
        },
      }),
    ];
  }

  const once = () => workspace.runOnce();

  function opensCounted(): bigint {
    const mapPin = workspace.mapPinOf('tp.yaml', 'opens', 'tracepoint_stats_map');
    const before = readU64(mapPin);
    for (let i = 0; i < 10; i++) fs.closeSync(fs.openSync('/proc/self/stat', 'r'));
    return readU64(mapPin) - before;
  }

  it('loads from a pulled image, shows its digest, and replaces the program when the tag moves under Always', async () => {
    const firstDigest = await push('tracepoint_counter.o');
    writeSecret(PASSWORD);
    workspace.writeManifest('tp.yaml', manifest('Always'));

    const first = await once();
    expect(first.code, first.stdout + first.stderr).to.equal(0);
    const annotations = workspace.bpfProgram('tp.yaml', 'opens')!.metadata.annotations;
    expect(annotations['bpfd.io/image-digest']).to.equal(firstDigest);
    expect(annotations['bpfd.io/image']).to.include(reference.split(':v1')[0]);
    const firstId = workspace.programIdOf('tp.yaml', 'opens')!;
    expect(opensCounted()).to.equal(10n);

    const movedDigest = await push('test/tracepoint_double.o');
    expect(movedDigest).not.to.equal(firstDigest);
    const second = await once();
    expect(second.code, second.stdout + second.stderr).to.equal(0);
    expect(
      workspace.bpfProgram('tp.yaml', 'opens')!.metadata.annotations['bpfd.io/image-digest'],
    ).to.equal(movedDigest);
    expect(workspace.programIdOf('tp.yaml', 'opens')).not.to.equal(firstId);
    expect(opensCounted()).to.equal(20n);
  });

  it('keeps the running program when the registry is down: IfNotPresent from the cache, Always with a clear condition', async () => {
    await push('tracepoint_counter.o');
    writeSecret(PASSWORD);
    workspace.writeManifest('tp.yaml', manifest('IfNotPresent'));
    expect((await once()).code).to.equal(0);
    const id = workspace.programIdOf('tp.yaml', 'opens')!;

    await registry.stop();
    const cached = await once();
    expect(cached.code, cached.stdout + cached.stderr).to.equal(0);
    expect(workspace.programIdOf('tp.yaml', 'opens')).to.equal(id);

    workspace.writeManifest('tp.yaml', manifest('Always'));
    const down = await once();
    expect(down.code).to.equal(1);
    const condition = workspace.condition('tp.yaml', 'opens')!;
    expect(condition.type).to.equal('BytecodeSelectorError');
    expect(condition.message).to.include('the running version stays');
    expect(workspace.programIdOf('tp.yaml', 'opens')).to.equal(id);
    expect(programIds().has(id)).to.equal(true);
    expect(opensCounted()).to.equal(10n);
  });

  it('collects cached images no manifest uses any more on the resync schedule', async () => {
    const digest = await push('tracepoint_counter.o');
    writeSecret(PASSWORD);
    workspace.writeConfig({
      registries: { insecure: [registry.host] },
      secretsDir: path.join(workspace.dir, 'secrets'),
      resync: '* * * * * *',
    });
    workspace.writeManifest('tp.yaml', manifest('IfNotPresent'));
    const cached = () =>
      cacheEntries().some((entry) => entry.includes(digest.slice('sha256:'.length)));
    const daemon = new Daemon(workspace);
    try {
      await eventually(
        'Loaded from the image',
        () => workspace.condition('tp.yaml', 'opens')?.type === 'Loaded',
      );
      expect(cached()).to.equal(true);

      const [document] = manifest('IfNotPresent') as Array<{ spec: Record<string, unknown> }>;
      document.spec.bytecode = { path: path.join(OBJECTS, 'tracepoint_counter.o') };
      workspace.writeManifest('tp.yaml', [document]);
      await eventually('image removed from the cache', () => !cached());
      expect(workspace.condition('tp.yaml', 'opens')?.type).to.equal('Loaded');
    } finally {
      await daemon.stop();
    }
  });

  function cacheEntries(): string[] {
    const root = path.join(workspace.dir, 'state', 'images');
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        found.push(path.join(dir, entry.name));
        if (entry.isDirectory()) walk(path.join(dir, entry.name));
      }
    };
    if (fs.existsSync(root)) walk(root);
    return found;
  }

  it('reports a refused password as BytecodeSelectorError without the password anywhere', async () => {
    await push('tracepoint_counter.o');
    writeSecret('wrong-password-value');
    workspace.writeManifest('tp.yaml', manifest('IfNotPresent'));
    const result = await once();
    expect(result.code).to.equal(1);
    const condition = workspace.condition('tp.yaml', 'opens')!;
    expect(condition.type).to.equal('BytecodeSelectorError');
    const sidecar = fs.readFileSync(path.join(workspace.manifests, 'tp.status.yaml'), 'utf8');
    for (const text of [sidecar, result.stdout, result.stderr]) {
      expect(text).not.to.include('wrong-password-value');
      expect(text).not.to.include(Buffer.from(`${USER}:wrong-password-value`).toString('base64'));
    }
    expect(workspace.pins()).to.deep.equal([]);
  });
});
