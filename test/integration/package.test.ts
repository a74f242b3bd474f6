/**
 * The install promise of docs/operations.md: the tarball `npm pack` makes from a built checkout,
 * installed with `npm install -g --prefix` (dependencies from the npm registry), is a working
 * daemon on its own. Its command runs, it validates the manifests it ships, and it loads the
 * eBPF objects it ships with nothing but node on PATH, so no compiler, make or bpftool is
 * needed on a node. Assumes `npm run build` ran (the test script does that): `npm pack` does
 * not build.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import {
  eventually,
  programIds,
  readU64,
  REPO,
  tracepointProgram,
  Workspace,
} from '../helpers/env.js';

const PACKAGE_NAME = 'bpfd-gitops';
/** The daemon cannot attach XDP or TC programs without the dispatchers; the examples load the rest. */
const SHIPPED_OBJECTS = [
  'xdp_dispatcher.o',
  'tc_dispatcher.o',
  'xdp_counter.o',
  'tc_counter.o',
  'tracepoint_counter.o',
];
/** Installing the dependencies from the registry takes most of this on a slow link. */
const INSTALL_TIMEOUT_MS = 300_000;

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProcess(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcessResult> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function describeFailure(result: ProcessResult): string {
  return `exit ${result.code}\n${result.stdout}\n${result.stderr}`;
}

/** The first `name` on this process's PATH. */
function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this dir
    }
  }
  throw new Error(`${name} is not on PATH`);
}

/** Packs the checkout into `destination`; resolves with the tarball's path. */
async function packCheckout(destination: string): Promise<string> {
  const packed = await runProcess(
    findOnPath('npm'),
    ['pack', '--json', '--pack-destination', destination],
    { cwd: REPO },
  );
  expect(packed.code, describeFailure(packed)).to.equal(0);

  const [summary] = JSON.parse(packed.stdout) as Array<{ filename: string }>;
  return path.join(destination, summary.filename);
}

/** `npm install -g --prefix prefix tarball`; resolves with the installed package dir. */
async function installTarball(tarball: string, prefix: string): Promise<string> {
  const installed = await runProcess(findOnPath('npm'), [
    'install',
    '--global',
    '--prefix',
    prefix,
    '--no-audit',
    '--no-fund',
    tarball,
  ]);
  expect(installed.code, describeFailure(installed)).to.equal(0);
  return path.join(prefix, 'lib/node_modules', PACKAGE_NAME);
}

/** A PATH dir holding node and nothing else: no compiler, make, clang or bpftool. */
function nodeOnlyPath(dir: string): string {
  fs.mkdirSync(dir);
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  return dir;
}

describe('npm package', () => {
  let scratch: string;
  let prefix: string;
  let installedPackage: string;
  let installedCommand: string;

  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS);
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-package-'));
    prefix = path.join(scratch, 'prefix');

    const tarball = await packCheckout(scratch);
    installedPackage = await installTarball(tarball, prefix);
    installedCommand = path.join(prefix, 'bin/bpfd');
  });

  after(() => {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('installs a bpfd command whose --help exits 0', async () => {
    const help = await runProcess(installedCommand, ['--help']);

    expect(help.code, describeFailure(help)).to.equal(0);
    expect(help.stdout).to.include('Usage: bpfd <command>');
  });

  it('ships the built objects, the unit, the example config and the docs the README links', () => {
    const expected = [
      ...SHIPPED_OBJECTS.map((object) => `dist/bpf/${object}`),
      'dist/src/cli/main.js',
      'systemd/bpfd.service',
      'examples/config.yaml',
      'README.md',
      'docs/operations.md',
    ];

    const missing = expected.filter((file) => !fs.existsSync(path.join(installedPackage, file)));
    expect(missing, `missing from the installed package ${installedPackage}`).to.deep.equal([]);
  });

  it('validates the example manifests it ships', async () => {
    const examples = path.join(installedPackage, 'examples/manifests');

    const validated = await runProcess(installedCommand, ['validate', examples]);

    expect(validated.code, describeFailure(validated)).to.equal(0);
    expect(validated.stdout).to.match(/3 files, 3 documents, 0 errors/);
  });

  describe('run --once with nothing but node on PATH', () => {
    const manifest = 'packaged.yaml';
    const name = 'packaged-openat';
    let workspace: Workspace;
    let environment: NodeJS.ProcessEnv;

    beforeEach(async () => {
      workspace = await Workspace.create();
      environment = { ...process.env, PATH: nodeOnlyPath(path.join(workspace.dir, 'bin')) };
    });

    afterEach(async () => {
      await workspace.cleanup();
      expect(fs.existsSync(workspace.bpffsRoot)).to.equal(false);
    });

    const runOnce = () =>
      runProcess(
        installedCommand,
        [
          'run',
          '--once',
          '--log-format',
          'json',
          '--config',
          workspace.configFile,
          '--manifests',
          workspace.manifests,
          '--bpffs-root',
          workspace.bpffsRoot,
        ],
        { env: environment },
      );

    it('loads the shipped tracepoint object, and unloads it once its manifest is gone', async () => {
      const objectFile = path.join(installedPackage, 'dist/bpf/tracepoint_counter.o');
      workspace.writeManifest(manifest, [
        tracepointProgram(name, {
          sectionname: 'tracepoint_openat',
          name: 'syscalls/sys_enter_openat',
          bytecode: { path: objectFile },
        }),
      ]);

      const loaded = await runOnce();
      expect(loaded.code, describeFailure(loaded)).to.equal(0);
      expect(workspace.condition(manifest, name)?.type).to.equal('Loaded');
      const programId = workspace.programIdOf(manifest, name)!;
      expect(programIds().has(programId)).to.equal(true);

      // The program runs: every openat(2) on the node counts, this test's reads included.
      const counts = workspace.mapPinOf(manifest, name, 'tracepoint_stats_map');
      await eventually('openat counted', () => {
        fs.readFileSync(objectFile);
        return readU64(counts) > 0n;
      });

      workspace.removeManifest(manifest);
      const unloaded = await runOnce();
      expect(unloaded.code, describeFailure(unloaded)).to.equal(0);
      expect(workspace.pins()).to.deep.equal([]);
      await eventually('program freed', () => !programIds().has(programId));
    });
  });
});
