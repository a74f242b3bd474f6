/** Fixtures shared by the bytecode unit tests. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The first bytes of a little-endian 64-bit ELF file for EM_BPF (247), then a marker. */
export function fakeBpfObject(marker = 'code'): Buffer {
  const header = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(header);
  header.writeUInt16LE(1, 16);
  header.writeUInt16LE(247, 18);
  return Buffer.concat([header, Buffer.from(marker)]);
}

/** A temp folder per test: `dir()` inside a test, removed after each. */
export function useTempDir(prefix: string): () => string {
  let dir = '';
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the promise resolved');
}
