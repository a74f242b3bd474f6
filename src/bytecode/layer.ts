/**
 * Takes the one object file out of a bytecode image layer (gzipped or plain tar). Only that
 * file is written, at a path we choose; the layer's own paths only select it.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';

import { DigestHasher } from './digest.js';
import { readTar, safeRelativePath, TarFormatError, type TarEntry } from './tar.js';

/** Unpacked bytes read from one layer at most (a gzip bomb stops here). */
export const MAX_UNPACKED_LAYER_BYTES = 256 * 1024 * 1024;
export const MAX_OBJECT_BYTES = 64 * 1024 * 1024;

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const EM_BPF = 247;
const MAX_LISTED_FILES = 10;

export interface ExtractedObject {
  /** The object's path inside the layer. */
  pathInLayer: string;
  size: number;
  digest: string;
}

/**
 * Writes the object named `wanted` (the `io.ebpf.filename` label), or else the layer's only
 * `*.o` file, to `destination` (a new file). Throws TarFormatError with a message that says
 * what the layer holds instead.
 */
export async function extractObject(
  layerFile: string,
  wanted: string | undefined,
  destination: string,
): Promise<ExtractedObject> {
  const wantedPath = wanted === undefined ? undefined : safeRelativePath(wanted);
  if (wanted !== undefined && (wantedPath === undefined || wantedPath === '.')) {
    throw new TarFormatError(`label io.ebpf.filename ${JSON.stringify(wanted)} is not a file path`);
  }

  const selection = new ObjectSelection(wantedPath, destination);
  try {
    await readTar(await unpackedStream(layerFile), (entry) => selection.visit(entry));
  } finally {
    await selection.close();
  }

  const extracted = selection.result();
  await checkBpfElf(destination, extracted.pathInLayer);
  return extracted;
}

/** Picks the object among the layer's entries and writes it out while it streams past. */
class ObjectSelection {
  private readonly wanted: string | undefined;
  private readonly destination: string;
  private readonly files: string[] = [];
  private readonly hasher = new DigestHasher();
  private chosen: string | undefined;
  private output: fsp.FileHandle | undefined;

  constructor(wanted: string | undefined, destination: string) {
    this.wanted = wanted;
    this.destination = destination;
  }

  async visit(entry: TarEntry): Promise<((chunk: Buffer) => Promise<void>) | undefined> {
    if (entry.type !== 'file') return undefined;
    if (path.posix.basename(entry.path).startsWith('.wh.')) return undefined;
    this.files.push(entry.path);
    if (!this.isObject(entry.path)) return undefined;

    if (this.chosen !== undefined) throw this.conflict(entry.path);
    if (entry.size > MAX_OBJECT_BYTES) {
      throw new TarFormatError(`object ${entry.path} is ${entry.size} bytes; limit 64 MiB`);
    }
    this.chosen = entry.path;
    this.output = await fsp.open(this.destination, 'wx', 0o644);
    const output = this.output;
    return async (chunk) => {
      this.hasher.update(chunk);
      await output.write(chunk);
    };
  }

  async close(): Promise<void> {
    await this.output?.close();
    this.output = undefined;
  }

  result(): ExtractedObject {
    if (this.chosen !== undefined) {
      return { pathInLayer: this.chosen, size: this.hasher.bytes, digest: this.hasher.digest() };
    }
    const shown = this.files.slice(0, MAX_LISTED_FILES).join(', ') || 'no files';
    const more = this.files.length > MAX_LISTED_FILES ? ', ...' : '';
    const missing = this.wanted === undefined ? 'no *.o file' : `no file ${this.wanted}`;
    const named = this.wanted === undefined ? '' : ' (named by label io.ebpf.filename)';
    return fail(`layer has ${missing}${named}; it holds: ${shown}${more}`);
  }

  private isObject(entryPath: string): boolean {
    return this.wanted === undefined ? entryPath.endsWith('.o') : entryPath === this.wanted;
  }

  private conflict(entryPath: string): TarFormatError {
    if (this.wanted !== undefined) {
      return new TarFormatError(`layer holds ${entryPath} twice; refused`);
    }
    return new TarFormatError(
      `layer holds several *.o files (${this.chosen}, ${entryPath}); ` +
        'label the image with io.ebpf.filename to say which one is the program',
    );
  }
}

function fail(message: string): never {
  throw new TarFormatError(message);
}

/** The layer's tar stream: gunzipped when gzip, refused when zstd, limited in size. */
async function unpackedStream(layerFile: string): Promise<AsyncIterable<Buffer>> {
  const magic = await readHead(layerFile, 4);
  if (magic.subarray(0, 4).equals(ZSTD_MAGIC)) {
    fail('layer is zstd-compressed; build the image with a gzip or uncompressed layer');
  }
  const file = fs.createReadStream(layerFile);
  const source = magic.subarray(0, 2).equals(GZIP_MAGIC)
    ? pipeline(file, zlib.createGunzip(), () => undefined)
    : file;
  return limitBytes(source, MAX_UNPACKED_LAYER_BYTES);
}

async function* limitBytes(source: AsyncIterable<Buffer>, limit: number): AsyncIterable<Buffer> {
  let total = 0;
  try {
    for await (const chunk of source) {
      total += chunk.length;
      if (total > limit) fail(`layer unpacks to more than ${limit / (1024 * 1024)} MiB`);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof TarFormatError) throw error;
    const code = (error as { code?: string }).code ?? (error as Error).message;
    fail(`layer cannot be unpacked (${code}); it is not a gzipped tar archive`);
  }
}

/** The object must be a BPF ELF file in this node's byte order. */
export async function checkBpfElf(file: string, shown: string): Promise<void> {
  const head = await readHead(file, 20);
  if (head.length < 20 || !head.subarray(0, 4).equals(ELF_MAGIC)) {
    fail(`${shown} is not an ELF object file`);
  }

  const bigEndian = head[5] === 2;
  const machine = bigEndian ? head.readUInt16BE(18) : head.readUInt16LE(18);
  if (machine !== EM_BPF) {
    fail(
      `${shown} is an ELF file for machine ${machine}, not BPF; build it with clang -target bpf`,
    );
  }
  const nodeBigEndian = os.endianness() === 'BE';
  if (bigEndian !== nodeBigEndian) {
    const order = bigEndian ? 'big' : 'little';
    fail(`${shown} is ${order}-endian BPF; this node needs ${nodeBigEndian ? 'bpfeb' : 'bpfel'}`);
  }
}

async function readHead(file: string, length: number): Promise<Buffer> {
  const handle = await fsp.open(file, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
