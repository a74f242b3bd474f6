import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect } from 'chai';

import {
  readTar,
  safeRelativePath,
  writeTar,
  type TarEntry,
  type TarWriteEntry,
} from '../../../src/bytecode/tar.js';

/** Feeds the archive in small chunks, as a network stream would. */
async function* chunks(bytes: Buffer, size = 333): AsyncIterable<Buffer> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    yield bytes.subarray(offset, offset + size);
  }
}

async function readAll(archive: Buffer): Promise<Array<TarEntry & { content: string }>> {
  const entries: Array<TarEntry & { content: string }> = [];
  await readTar(chunks(archive), (entry) => {
    const read = { ...entry, content: '' };
    entries.push(read);
    return (chunk) => {
      read.content += chunk.toString('utf8');
    };
  });
  return entries;
}

function refusal(entries: TarWriteEntry[]): Promise<unknown> {
  return readAll(writeTar(entries)).then(
    () => expect.fail('the archive was accepted'),
    (error: unknown) => error,
  );
}

describe('readTar', () => {
  it('reads files and directories with their content', async () => {
    const archive = writeTar([
      { path: 'bpf/', type: 'directory' },
      { path: './bpf/xdp.o', content: Buffer.from('object bytes') },
      { path: 'README', content: Buffer.alloc(0) },
    ]);
    expect(await readAll(archive)).to.deep.equal([
      { path: 'bpf', type: 'directory', size: 0, content: '' },
      { path: 'bpf/xdp.o', type: 'file', size: 12, content: 'object bytes' },
      { path: 'README', type: 'file', size: 0, content: '' },
    ]);
  });

  it('reads a name longer than 100 bytes from a pax header', async () => {
    const longPath = `${'d'.repeat(80)}/${'f'.repeat(60)}.o`;
    const entries = await readAll(writeTar([{ path: longPath, content: Buffer.from('x') }]));
    expect(entries.map((entry) => entry.path)).to.deep.equal([longPath]);
  });

  it('reads a ustar name split into prefix and name', async () => {
    const archive = writeTar([{ path: 'short.o', content: Buffer.from('y') }]);
    archive.write('some/prefix', 345, 'latin1');
    fixChecksum(archive, 0);
    const entries = await readAll(archive);
    expect(entries[0].path).to.equal('some/prefix/short.o');
  });

  it('skips content nobody asked for and reads what follows', async () => {
    const archive = writeTar([
      { path: 'big.bin', content: Buffer.alloc(5000, 1) },
      { path: 'x.o', content: Buffer.from('wanted') },
    ]);
    let wanted = '';
    await readTar(chunks(archive, 700), (entry) =>
      entry.path === 'x.o' ? (chunk) => void (wanted += chunk.toString()) : undefined,
    );
    expect(wanted).to.equal('wanted');
  });

  it('refuses a path that climbs out with ..', async () => {
    const error = await refusal([{ path: '../x.o', content: Buffer.from('x') }]);
    expect(error).to.have.property('code', 'BPFD_E_IMAGE_FORMAT');
    expect((error as Error).message).to.include('"../x.o"');
  });

  it('refuses .. in the middle of a path', async () => {
    const error = await refusal([{ path: 'a/../../x.o', content: Buffer.from('x') }]);
    expect((error as Error).message).to.include('outside the layer');
  });

  it('refuses an absolute path', async () => {
    const error = await refusal([{ path: '/etc/cron.d/x', content: Buffer.from('x') }]);
    expect((error as Error).message).to.include('outside the layer');
  });

  it('refuses a symbolic link entry', async () => {
    const error = await refusal([{ path: 'x.o', type: 'symlink', linkTarget: '/etc/shadow' }]);
    expect((error as Error).message).to.include('is a symlink');
  });

  it('refuses a hard link, a device and a FIFO', async () => {
    for (const type of ['hardlink', 'character-device', 'block-device', 'fifo'] as const) {
      const error = await refusal([{ path: 'x', type, linkTarget: 'y' }]);
      expect((error as Error).message).to.include(`is a ${type}`);
    }
  });

  it('refuses a long traversal name hidden in a pax header', async () => {
    const error = await refusal([{ path: `../${'a'.repeat(120)}.o`, content: Buffer.from('x') }]);
    expect((error as Error).message).to.include('outside the layer');
  });

  it('refuses input that is not a tar archive', async () => {
    const garbage = Buffer.alloc(1024, 0x41);
    const error = await readAll(garbage).catch((caught: unknown) => caught);
    expect((error as Error).message).to.include('not a tar archive');
  });

  it('refuses an archive cut inside a file', async () => {
    const archive = writeTar([{ path: 'x.o', content: Buffer.alloc(2000, 7) }]);
    const error = await readAll(archive.subarray(0, 1024)).catch((caught: unknown) => caught);
    expect((error as Error).message).to.include('ends inside a file');
  });
});

describe('safeRelativePath', () => {
  it('normalises ./ and repeated slashes', () => {
    expect(safeRelativePath('./a//b/./c.o')).to.equal('a/b/c.o');
  });

  it('has no answer for absolute paths, .. and NUL', () => {
    expect(safeRelativePath('/a')).to.equal(undefined);
    expect(safeRelativePath('a/..')).to.equal(undefined);
    expect(safeRelativePath('a\0b')).to.equal(undefined);
  });
});

function fixChecksum(archive: Buffer, offset: number): void {
  const block = archive.subarray(offset, offset + 512);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.write(`${sum.toString(8).padStart(7, '0')}\0`, 148, 8, 'latin1');
}

describe('readTar with archives from GNU tar', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-gnutar-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`reads a ${format} archive with a long name`, async () => {
      const source = path.join(dir, 'src');
      const folder = format === 'ustar' ? 'd'.repeat(60) : 'd'.repeat(120);
      fs.mkdirSync(path.join(source, folder), { recursive: true });
      fs.writeFileSync(path.join(source, folder, 'prog.o'), 'bytes');
      const archive = path.join(dir, 'layer.tar');
      execFileSync('tar', [`--format=${format}`, '-C', source, '-cf', archive, '.']);

      const entries = await readAll(fs.readFileSync(archive));
      const file = entries.find((entry) => entry.type === 'file');
      expect(file).to.deep.include({ path: `${folder}/prog.o`, size: 5, content: 'bytes' });
    });
  }

  it('refuses a symlink packed by GNU tar', async () => {
    const source = path.join(dir, 'src');
    fs.mkdirSync(source);
    fs.symlinkSync('/etc/passwd', path.join(source, 'x.o'));
    const archive = path.join(dir, 'layer.tar');
    execFileSync('tar', ['-C', source, '-cf', archive, 'x.o']);
    const error = await readAll(fs.readFileSync(archive)).catch((caught: Error) => caught);
    expect((error as Error).message).to.include('is a symlink');
  });
});
