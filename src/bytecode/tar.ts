/**
 * A small tar reader for image layers (ustar, pax and GNU long names) and the writer that
 * `bpfd image build` uses. The reader refuses every entry that could place a file outside the
 * directory it is unpacked in or that is not a plain file or directory: absolute paths, `..`,
 * symbolic and hard links, devices, FIFOs and unknown entry types.
 */
import { BpfdError } from '../errors.js';

const BLOCK = 512;
const MAX_METADATA_BYTES = 1024 * 1024;

export type TarEntryType =
  'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo';

export interface TarEntry {
  /** Relative path without a leading `./`. */
  path: string;
  type: TarEntryType;
  size: number;
}

/** Receives the content of an entry the visitor chose to read. */
export type ContentSink = (chunk: Buffer) => Promise<void> | void;

/** A layer that is not a tar archive or holds an entry we refuse. */
export class TarFormatError extends BpfdError {
  constructor(message: string) {
    super('BPFD_E_IMAGE_FORMAT', message);
  }
}

const TYPE_BY_FLAG: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};
const FLAG_BY_TYPE: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

interface RawHeader {
  name: string;
  linkName: string;
  size: number;
  flag: string;
}

interface PendingMetadata {
  path?: string;
  size?: number;
}

/**
 * Reads a tar stream entry by entry. `visit` sees each file and directory after its checks and
 * returns a sink for the content, or undefined to skip it. Throws TarFormatError.
 */
export async function readTar(
  source: AsyncIterable<Buffer>,
  visit: (entry: TarEntry) => Promise<ContentSink | undefined> | ContentSink | undefined,
): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    await readEntries(new ByteReader(iterator), visit);
  } finally {
    // Stops the source (and closes its file) when reading ends early.
    await iterator.return?.();
  }
}

async function readEntries(
  reader: ByteReader,
  visit: (entry: TarEntry) => Promise<ContentSink | undefined> | ContentSink | undefined,
): Promise<void> {
  let pending: PendingMetadata = {};
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block === undefined || isZeroBlock(block)) return;

    const header = parseHeader(block);
    if (header.flag === 'x' || header.flag === 'L') {
      pending = { ...pending, ...(await readMetadata(reader, header)) };
      continue;
    }
    if (header.flag === 'g' || header.flag === 'K') {
      // Global pax defaults and GNU long link names only matter for entries we refuse anyway.
      await readMetadataBytes(reader, header.size);
      continue;
    }

    const entry = checkedEntry(header, pending);
    pending = {};
    const sink = await visit(entry);
    await copyContent(reader, entry.size, sink);
  }
}

/** An entry for `writeTar`; content only for files, link target only for links. */
export interface TarWriteEntry {
  path: string;
  type?: TarEntryType;
  content?: Buffer;
  linkTarget?: string;
  mode?: number;
}

/**
 * A tar archive of the given entries, reproducible (mtime 0, owner 0:0). Names longer than the
 * ustar field go into a pax header. Writes what it is given, unsafe names included.
 */
export function writeTar(entries: TarWriteEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content = entry.content ?? Buffer.alloc(0);
    const pax = paxRecords(entry);
    if (pax.length > 0) {
      parts.push(headerBlock({ path: 'PaxHeader', size: pax.length, flag: 'x', mode: 0o644 }));
      parts.push(pax, padding(pax.length));
    }
    const flag = FLAG_BY_TYPE[entry.type ?? 'file'];
    const mode = entry.mode ?? (entry.type === 'directory' ? 0o755 : 0o644);
    const size = flag === '0' ? content.length : 0;
    const linkName = entry.linkTarget ?? '';
    parts.push(headerBlock({ path: entry.path, size, flag, mode, linkName }));
    if (size > 0) parts.push(content, padding(size));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** Applies the checks every layer entry must pass and returns it in its final form. */
function checkedEntry(header: RawHeader, pending: PendingMetadata): TarEntry {
  const rawPath = pending.path ?? header.name;
  const type = TYPE_BY_FLAG[header.flag];
  const shown = JSON.stringify(rawPath);
  if (type === undefined) {
    throw new TarFormatError(`entry ${shown} has tar type ${JSON.stringify(header.flag)}, refused`);
  }
  if (type !== 'file' && type !== 'directory') {
    throw new TarFormatError(`entry ${shown} is a ${type}; only files and directories allowed`);
  }

  const path = safeRelativePath(rawPath);
  if (path === undefined) {
    throw new TarFormatError(`entry ${shown} points outside the layer (absolute or ".."), refused`);
  }
  const size = type === 'file' ? (pending.size ?? header.size) : 0;
  return { path, type, size };
}

/** `a/./b/` → `a/b`; undefined for absolute paths, `..` components, NUL bytes. */
export function safeRelativePath(rawPath: string): string | undefined {
  if (rawPath.startsWith('/') || rawPath.includes('\0')) return undefined;
  const parts = rawPath.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.some((part) => part === '..')) return undefined;
  return parts.length === 0 ? '.' : parts.join('/');
}

function parseHeader(block: Buffer): RawHeader {
  checkChecksum(block);
  const flag = String.fromCharCode(block[156]);
  const magic = block.subarray(257, 263).toString('latin1');

  let name = cString(block, 0, 100);
  // POSIX ustar keeps long names as prefix + name; GNU headers use that space for other fields.
  if (magic === 'ustar\0') {
    const prefix = cString(block, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return { name, linkName: cString(block, 157, 100), size: numericField(block, 124, 12), flag };
}

function checkChecksum(block: Buffer): void {
  const stored = numericField(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let index = 0; index < BLOCK; index += 1) {
    const byte = index >= 148 && index < 156 ? 0x20 : block[index];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new TarFormatError('layer is not a tar archive (header checksum mismatch)');
  }
}

/** Octal ASCII, or GNU base-256 when the first byte has its top bit set. */
function numericField(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (let index = 1; index < length; index += 1) value = value * 256 + field[index];
    if (!Number.isSafeInteger(value)) throw new TarFormatError('tar entry size is too large');
    return value;
  }

  const text = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError('layer is not a tar archive (bad number)');
  return parseInt(text, 8);
}

function cString(block: Buffer, offset: number, length: number): string {
  const field = block.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

async function readMetadata(reader: ByteReader, header: RawHeader): Promise<PendingMetadata> {
  const bytes = await readMetadataBytes(reader, header.size);
  if (header.flag === 'L') return { path: cString(bytes, 0, bytes.length) };
  return parsePax(bytes);
}

async function readMetadataBytes(reader: ByteReader, size: number): Promise<Buffer> {
  if (size > MAX_METADATA_BYTES) throw new TarFormatError('tar metadata entry is too large');
  const bytes = await reader.read(roundUp(size));
  if (bytes === undefined) throw new TarFormatError('layer ends inside a tar metadata entry');
  return bytes.subarray(0, size);
}

/** Pax records are `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(bytes: Buffer): PendingMetadata {
  const metadata: PendingMetadata = {};
  let offset = 0;
  while (offset < bytes.length) {
    const space = bytes.indexOf(0x20, offset);
    const length = Number(bytes.subarray(offset, space).toString('latin1'));
    if (space < 0 || !Number.isInteger(length) || length <= 0 || offset + length > bytes.length) {
      throw new TarFormatError('layer has a malformed pax header');
    }
    const record = bytes.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === 'path') metadata.path = value;
    if (key === 'size') metadata.size = paxSize(value);
    offset += length;
  }
  return metadata;
}

function paxSize(value: string): number {
  const size = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(size)) {
    throw new TarFormatError('layer has a malformed pax size');
  }
  return size;
}

async function copyContent(reader: ByteReader, size: number, sink?: ContentSink): Promise<void> {
  let remaining = size;
  while (remaining > 0) {
    const chunk = await reader.readSome(remaining);
    if (chunk === undefined) throw new TarFormatError('layer ends inside a file');
    remaining -= chunk.length;
    if (sink) await sink(chunk);
  }
  const rest = roundUp(size) - size;
  if (rest > 0 && (await reader.read(rest)) === undefined) {
    throw new TarFormatError('layer ends inside a file');
  }
}

function isZeroBlock(block: Buffer): boolean {
  return block.every((byte) => byte === 0);
}

function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

function padding(size: number): Buffer {
  return Buffer.alloc(roundUp(size) - size);
}

function paxRecords(entry: TarWriteEntry): Buffer {
  const records: string[] = [];
  if (Buffer.byteLength(entry.path) > 100) records.push(paxRecord('path', entry.path));
  if (entry.linkTarget !== undefined && Buffer.byteLength(entry.linkTarget) > 100) {
    records.push(paxRecord('linkpath', entry.linkTarget));
  }
  return Buffer.from(records.join(''), 'utf8');
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body);
  length += String(length).length;
  // Adding the length's own digits can add one more digit.
  if (String(length).length + Buffer.byteLength(body) !== length) length += 1;
  return `${length}${body}`;
}

interface HeaderFields {
  path: string;
  size: number;
  flag: string;
  mode: number;
  linkName?: string;
}

function headerBlock(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(truncateUtf8(fields.path, 100), 0, 'utf8');
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, 0);
  block.write(fields.flag, 156, 'latin1');
  block.write(truncateUtf8(fields.linkName ?? '', 100), 157, 'utf8');
  block.write('ustar\u000000', 257, 'latin1');

  block.fill(0x20, 148, 156);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  writeOctal(block, 148, 8, checksum);
  return block;
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0');
  block.write(`${text}\0`, offset, length, 'latin1');
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= maxBytes ? text : bytes.subarray(0, maxBytes).toString('utf8');
}

/** Exact-size reads from a stream of chunks. */
class ByteReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private buffered: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(iterator: AsyncIterator<Buffer>) {
    this.iterator = iterator;
  }

  /** Exactly `length` bytes, or undefined when the stream ends first. */
  async read(length: number): Promise<Buffer | undefined> {
    while (this.buffered.length < length && !this.ended) await this.pull();
    if (this.buffered.length < length) return undefined;

    const bytes = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return bytes;
  }

  /** Between 1 and `maxLength` bytes, or undefined at the end of the stream. */
  async readSome(maxLength: number): Promise<Buffer | undefined> {
    if (this.buffered.length === 0 && !this.ended) await this.pull();
    if (this.buffered.length === 0) return undefined;

    const bytes = this.buffered.subarray(0, Math.min(maxLength, this.buffered.length));
    this.buffered = this.buffered.subarray(bytes.length);
    return bytes;
  }

  private async pull(): Promise<void> {
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return;
    }
    const chunk = Buffer.from(next.value);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
  }
}
