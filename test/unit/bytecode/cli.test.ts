import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import zlib from 'node:zlib';

import { expect } from 'chai';

import { imageCommand } from '../../../src/bytecode/cli.js';
import { readImageLayout } from '../../../src/bytecode/layout.js';
import { parseConfigLabels } from '../../../src/bytecode/manifest.js';
import { readTar } from '../../../src/bytecode/tar.js';
import { fakeBpfObject, useTempDir } from './helpers.js';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => (out += chunk));
  stderr.on('data', (chunk) => (err += chunk));
  const code = await imageCommand(argv, { stdin: Readable.from([]), stdout, stderr });
  return { code, stdout: out, stderr: err };
}

describe('bpfd image build', () => {
  const dir = useTempDir('bpfd-image-cli-');
  const objectFile = () => {
    const file = path.join(dir(), 'xdp_counter.o');
    fs.writeFileSync(file, fakeBpfObject('counter'));
    return file;
  };

  it('packs the object into an OCI layout with the io.ebpf labels', async () => {
    const out = path.join(dir(), 'layout');
    const result = await run([
      'build',
      '--object',
      objectFile(),
      '--out',
      out,
      '--type',
      'xdp',
      '--program-name',
      'counter',
      '--section-name',
      'stats',
      '--arch',
      'arm64',
    ]);
    expect(result).to.include({ code: 0, stderr: '' });
    expect(result.stdout).to.match(/^sha256:[0-9a-f]{64}\n$/);

    const layout = await readImageLayout(out);
    expect(layout.top.digest).to.equal(result.stdout.trim());
    const manifest = layout.topManifest;
    if (manifest.kind !== 'image') throw new Error('expected an image manifest');
    const config = JSON.parse((await layout.readBlob(manifest.config)).toString());
    expect(config).to.include({ architecture: 'arm64', os: 'linux' });
    expect(parseConfigLabels('layout', await layout.readBlob(manifest.config))).to.deep.equal({
      programType: 'xdp',
      filename: 'xdp_counter.o',
      programName: 'counter',
      sectionName: 'stats',
    });

    const names: string[] = [];
    const layer = zlib.gunzipSync(await layout.readBlob(manifest.layers[0]));
    await readTar(Readable.from([layer]), (entry) => void names.push(entry.path));
    expect(names).to.deep.equal(['xdp_counter.o']);
  });

  it('builds the same digest twice from the same object', async () => {
    const object = objectFile();
    const first = await run([
      'build',
      '--object',
      object,
      '--out',
      path.join(dir(), 'a'),
      '--type',
      'tc',
    ]);
    const second = await run([
      'build',
      '--object',
      object,
      '--out',
      path.join(dir(), 'b'),
      '--type',
      'tc',
    ]);
    expect(first.stdout).to.equal(second.stdout);
  });

  it('refuses a file that is not BPF bytecode', async () => {
    const file = path.join(dir(), 'script.o');
    fs.writeFileSync(file, '#!/bin/sh\n');
    const result = await run([
      'build',
      '--object',
      file,
      '--out',
      path.join(dir(), 'o'),
      '--type',
      'xdp',
    ]);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('not an ELF object file').and.include('BPFD_E_IMAGE_BUILD');
  });

  it('refuses an output folder that is not empty', async () => {
    const out = path.join(dir(), 'used');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep'), 'x');
    const result = await run(['build', '--object', objectFile(), '--out', out, '--type', 'xdp']);
    expect(result.stderr).to.include('is not empty');
    expect(fs.readFileSync(path.join(out, 'keep'), 'utf8')).to.equal('x');
  });

  it('answers usage errors with exit code 64 and the help text', async () => {
    const missing = await run(['build', '--object', 'x.o', '--type', 'xdp']);
    expect(missing.code).to.equal(64);
    expect(missing.stderr).to.include('--out is required').and.include('Usage: bpfd image');

    const badType = await run(['build', '--object', 'x.o', '--out', 'o', '--type', 'kprobe']);
    expect(badType.stderr).to.include('--type must be one of xdp, tc, tracepoint');

    const unknown = await run(['tag']);
    expect(unknown).to.include({ code: 64 });
  });

  it('prints help with exit code 0', async () => {
    for (const argv of [['--help'], ['build', '--help'], ['push', '-h']]) {
      const result = await run(argv);
      expect(result.code).to.equal(0);
      expect(result.stdout).to.include('bpfd image <command>');
    }
  });

  it('wants --username with --password-stdin', async () => {
    const result = await run(['push', dir(), '127.0.0.1:1/x:v1', '--password-stdin']);
    expect(result).to.include({ code: 64 });
    expect(result.stderr).to.include('--password-stdin needs --username');
  });
});
