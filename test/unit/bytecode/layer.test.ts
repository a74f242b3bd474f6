import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

import { expect } from 'chai';

import { extractObject } from '../../../src/bytecode/layer.js';
import { writeTar, type TarWriteEntry } from '../../../src/bytecode/tar.js';
import { fakeBpfObject } from './helpers.js';

describe('extractObject', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-layer-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function layer(entries: TarWriteEntry[], gzip = true): string {
    const file = path.join(dir, 'layer');
    const tar = writeTar(entries);
    fs.writeFileSync(file, gzip ? zlib.gzipSync(tar) : tar);
    return file;
  }
  const destination = () => path.join(dir, 'object');
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => expect.fail('extraction succeeded'),
      (error: Error) => error,
    );

  it('writes the file the filename label names', async () => {
    const file = layer([
      { path: 'other.o', content: fakeBpfObject('other') },
      { path: 'xdp.o', content: fakeBpfObject('wanted') },
    ]);
    const extracted = await extractObject(file, 'xdp.o', destination());
    expect(extracted.pathInLayer).to.equal('xdp.o');
    expect(fs.readFileSync(destination())).to.deep.equal(fakeBpfObject('wanted'));
    expect(extracted.digest).to.match(/^sha256:[0-9a-f]{64}$/);
  });

  it('takes the only *.o of an unlabelled, uncompressed layer', async () => {
    const file = layer(
      [
        { path: 'README.md', content: Buffer.from('hi') },
        { path: './prog.o', content: fakeBpfObject() },
      ],
      false,
    );
    const extracted = await extractObject(file, undefined, destination());
    expect(extracted.pathInLayer).to.equal('prog.o');
  });

  it('refuses a layer with two *.o files and no filename label', async () => {
    const file = layer([
      { path: 'a.o', content: fakeBpfObject() },
      { path: 'b.o', content: fakeBpfObject() },
    ]);
    const error = await failure(extractObject(file, undefined, destination()));
    expect(error.message).to.include('several *.o files (a.o, b.o)');
    expect(error.message).to.include('io.ebpf.filename');
  });

  it('lists what the layer holds when the object is missing', async () => {
    const file = layer([{ path: 'notes.txt', content: Buffer.from('x') }]);
    const error = await failure(extractObject(file, undefined, destination()));
    expect(error).to.have.property('code', 'BPFD_E_IMAGE_FORMAT');
    expect(error.message).to.include('no *.o file').and.include('notes.txt');
  });

  it('refuses a file that is not BPF bytecode', async () => {
    const file = layer([{ path: 'x.o', content: Buffer.from('#!/bin/sh\nrm -rf /\n') }]);
    const error = await failure(extractObject(file, undefined, destination()));
    expect(error.message).to.include('not an ELF object file');
  });

  it('refuses an ELF object for another machine', async () => {
    const object = fakeBpfObject();
    object.writeUInt16LE(62, 18);
    const file = layer([{ path: 'x.o', content: object }]);
    const error = await failure(extractObject(file, undefined, destination()));
    expect(error.message).to.include('machine 62, not BPF');
  });

  it('refuses the whole layer when an entry climbs out, even beside a good object', async () => {
    const file = layer([
      { path: 'x.o', content: fakeBpfObject() },
      { path: '../../etc/evil.o', content: fakeBpfObject() },
    ]);
    const error = await failure(extractObject(file, 'x.o', destination()));
    expect(error.message).to.include('outside the layer');
    expect(fs.existsSync(path.join(dir, '..', '..', 'etc', 'evil.o'))).to.equal(false);
  });

  it('refuses a filename label that climbs out', async () => {
    const file = layer([{ path: 'x.o', content: fakeBpfObject() }]);
    const error = await failure(extractObject(file, '../x.o', destination()));
    expect(error.message).to.include('is not a file path');
  });

  it('refuses zstd and garbage layers with a clear message', async () => {
    const zstd = path.join(dir, 'zstd');
    fs.writeFileSync(zstd, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
    expect((await failure(extractObject(zstd, undefined, destination()))).message).to.include(
      'zstd',
    );

    const broken = path.join(dir, 'broken');
    fs.writeFileSync(broken, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 9)]));
    expect((await failure(extractObject(broken, undefined, destination()))).message).to.include(
      'cannot be unpacked',
    );
  });
});
