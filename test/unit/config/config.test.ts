import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { expect } from 'chai';

import {
  builtinNodeLabels,
  DEFAULT_CONFIG_FILE,
  loadConfig,
  type Config,
} from '../../../src/config/index.js';
import { ManifestError } from '../../../src/errors.js';

/** The error `promise` rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<ManifestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(ManifestError);
    return error as ManifestError;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  let dir: string;
  let configFile: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bpfd-config-test-'));
    configFile = join(dir, 'config.yaml');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const load = (yaml: string, overrides = {}) =>
    writeFile(configFile, yaml).then(() => loadConfig({ file: configFile, overrides }));

  it('uses the documented defaults when the default file is missing', async () => {
    const config = await loadConfig({ defaultFile: join(dir, 'absent.yaml') });

    const expected: Config = {
      nodeName: hostname().toLowerCase(),
      nodeLabels: {},
      manifestDir: '/etc/bpfd/programs.d',
      statusDir: undefined,
      bpffsRoot: '/sys/fs/bpf/bpfd',
      stateDir: '/var/lib/bpfd',
      secretsDir: '/etc/bpfd/secrets',
      registries: { insecure: [], caFiles: {} },
      metrics: { listen: '127.0.0.1:9474' },
      resync: '*/5 * * * *',
      xdpMode: 'native',
      xdpModeByInterface: {},
      bytecodeRoots: [],
      strictModes: true,
      logLevel: 'info',
    };
    expect(config).to.deep.equal(expected);
    expect(DEFAULT_CONFIG_FILE).to.equal('/etc/bpfd/config.yaml');
  });

  it('treats an empty file as all defaults', async () => {
    const config = await load('# nothing set\n');

    expect(config.configFile).to.equal(configFile);
    expect(config.metrics.listen).to.equal('127.0.0.1:9474');
  });

  it('reads every key, resolving relative paths against the file', async () => {
    const config = await load(`nodeName: edge-1
nodeLabels: {zone: a, kubernetes.io/hostname: spoofed}
manifestDir: programs.d
statusDir: /run/bpfd/status
bpffsRoot: /sys/fs/bpf/test
stateDir: state
secretsDir: /etc/bpfd/pull-secrets
registries:
  insecure: ["registry.local:5000", "[::1]:5000", localhost]
  caFiles: {"registry.local:5000": certs/ca.pem}
metrics: {listen: "[::1]:9500"}
resync: "0 */2 * * *"
xdpMode: skb
xdpModeByInterface: {eth0: native}
bytecodeRoots: [/opt/bpf]
strictModes: false
logLevel: debug
`);

    expect(config).to.deep.include({
      nodeName: 'edge-1',
      manifestDir: join(dir, 'programs.d'),
      statusDir: '/run/bpfd/status',
      bpffsRoot: '/sys/fs/bpf/test',
      stateDir: join(dir, 'state'),
      resync: '0 */2 * * *',
      xdpMode: 'skb',
      strictModes: false,
      logLevel: 'debug',
      configFile,
    });
    expect(config.registries).to.deep.equal({
      insecure: ['registry.local:5000', '[::1]:5000', 'localhost'],
      caFiles: { 'registry.local:5000': join(dir, 'certs/ca.pem') },
    });
    expect(config.metrics.listen).to.equal('[::1]:9500');
    expect(config.xdpModeByInterface).to.deep.equal({ eth0: 'native' });
    expect(config.bytecodeRoots).to.deep.equal(['/opt/bpf']);
  });

  it('lets overrides win over the file, resolving them against the working directory', async () => {
    const config = await load(
      'nodeName: from-file\nmanifestDir: /etc/from-file\nbpffsRoot: /sys/fs/bpf/file\n',
      { nodeName: 'from-flag', manifestDir: 'flag-dir', statusDir: '/tmp/status' },
    );

    expect(config.nodeName).to.equal('from-flag');
    expect(config.manifestDir).to.equal(resolve('flag-dir'));
    expect(config.statusDir).to.equal('/tmp/status');
    expect(config.bpffsRoot).to.equal('/sys/fs/bpf/file');
  });

  it('fails when a config file named explicitly is missing', async () => {
    const missing = join(dir, 'missing.yaml');

    const error = await rejection(loadConfig({ file: missing }));

    expect(error.code).to.equal('BPFD_E_CONFIG');
    expect(error.file).to.equal(missing);
    expect(error.message).to.contain('does not exist');
  });

  it('rejects an unknown key with a "did you mean"', async () => {
    const error = await rejection(load('node_name: edge-1\n'));

    expect(error.code).to.equal('BPFD_E_CONFIG');
    expect(error.file).to.equal(configFile);
    expect(error.fieldPath).to.equal('node_name');
    expect(error.message).to.contain('unknown field; did you mean "nodeName"?');
  });

  it('rejects an unknown nested key with its path', async () => {
    const error = await rejection(load('metrics:\n  address: 127.0.0.1:1\n'));

    expect(error.fieldPath).to.equal('metrics.address');
    expect(error.message).to.contain('unknown field');
  });

  it('rejects a resync that is not a cron expression', async () => {
    const error = await rejection(load('resync: every five minutes\n'));

    expect(error.code).to.equal('BPFD_E_CONFIG');
    expect(error.file).to.equal(configFile);
    expect(error.fieldPath).to.equal('resync');
    expect(error.message).to.contain('is not a valid cron expression');
  });

  it('rejects an xdpMode other than native or skb', async () => {
    const error = await rejection(load('xdpMode: hw\n'));

    expect(error.fieldPath).to.equal('xdpMode');
    expect(error.message).to.contain('must be one of native, skb');
  });

  it('rejects a per-interface xdpMode other than native or skb', async () => {
    const error = await rejection(load('xdpModeByInterface:\n  eth0: generic\n'));

    expect(error.fieldPath).to.equal('xdpModeByInterface.eth0');
  });

  it('rejects an unknown log level', async () => {
    const error = await rejection(load('logLevel: verbose\n'));

    expect(error.fieldPath).to.equal('logLevel');
    expect(error.message).to.contain('fatal, error, warn, info, debug, trace, silent');
  });

  it('rejects a metrics address without a valid port', async () => {
    const noPort = await rejection(load('metrics: {listen: 127.0.0.1}\n'));
    const badPort = await rejection(load('metrics: {listen: "127.0.0.1:70000"}\n'));

    expect(noPort.fieldPath).to.equal('metrics.listen');
    expect(badPort.fieldPath).to.equal('metrics.listen');
    expect(badPort.message).to.contain('between 1 and 65535');
  });

  it('rejects a relative bytecode root', async () => {
    const error = await rejection(load('bytecodeRoots: [/opt/bpf, objects]\n'));

    expect(error.fieldPath).to.equal('bytecodeRoots[1]');
    expect(error.message).to.contain('absolute');
  });

  it('rejects a value of the wrong type', async () => {
    const error = await rejection(load('strictModes: "no"\n'));

    expect(error.fieldPath).to.equal('strictModes');
    expect(error.message).to.contain('must be true or false');
  });

  it('reports invalid YAML with its line', async () => {
    const error = await rejection(load('nodeName: a\nnodeLabels: {zone: [\n'));

    expect(error.code).to.equal('BPFD_E_CONFIG');
    expect(error.message).to.match(/is not valid YAML at line [23]/);
  });

  it('lists every problem when there are several', async () => {
    const error = await rejection(load('xdpMode: hw\nlogLevel: loud\n'));

    expect(error.message).to.contain('2 problems');
    expect(error.message).to.contain('xdpMode');
    expect(error.message).to.contain('logLevel');
  });

  it('rejects a node name flag that is not a node name', async () => {
    const error = await rejection(
      loadConfig({ defaultFile: join(dir, 'absent.yaml'), overrides: { nodeName: 'Edge_1' } }),
    );

    expect(error.code).to.equal('BPFD_E_CONFIG');
    expect(error.fieldPath).to.equal('nodeName');
  });
});

describe('builtinNodeLabels', () => {
  it('adds the built-in labels, which win over configured ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bpfd-config-test-'));
    try {
      const config = await loadConfig({
        defaultFile: join(dir, 'absent.yaml'),
        overrides: { nodeName: 'edge-1' },
      });
      config.nodeLabels = { zone: 'a', 'kubernetes.io/hostname': 'spoofed' };

      const labels = builtinNodeLabels(config);

      expect(labels['zone']).to.equal('a');
      expect(labels['kubernetes.io/hostname']).to.equal('edge-1');
      expect(labels['kubernetes.io/os']).to.equal('linux');
      const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386' };
      expect(labels['kubernetes.io/arch']).to.equal(goArch[process.arch] ?? process.arch);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
