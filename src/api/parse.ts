import { open, type FileHandle } from 'node:fs/promises';

import { ManifestError } from '../errors.js';
import { checkDocument, type ParsedDocument } from './document.js';
import { MAX_MANIFEST_BYTES, oversizeReason } from './limits.js';
import { loadYamlDocuments } from './yaml.js';

/** A manifest file: its documents, or the one reason none of it could be read. */
export interface ParsedFile {
  file: string;
  documents: ParsedDocument[];
  fileError?: ManifestError;
}

/**
 * Parse and validate every document of a manifest file's text. Empty documents (a trailing
 * `---`) are skipped; `index` counts documents in the YAML stream, empty ones included, so it
 * matches what an operator counts between `---` lines.
 */
export function parseManifestText(file: string, text: string): ParsedFile {
  const loaded = loadYamlDocuments(file, text);
  if (!loaded.ok)
    return { file, documents: [], fileError: new ManifestError(loaded.reason, { file }) };

  const documents: ParsedDocument[] = [];
  loaded.documents.forEach((content, index) => {
    if (content === null || content === undefined) return;
    documents.push(checkDocument(file, index, content));
  });
  return { file, documents };
}

/** Read a manifest file (at most 1 MiB, UTF-8) and parse it; any read failure is a fileError. */
export async function parseManifestFile(file: string): Promise<ParsedFile> {
  const read = await readManifestText(file);
  if (!read.ok) return { file, documents: [], fileError: new ManifestError(read.reason, { file }) };
  return parseManifestText(file, read.text);
}

type TextRead = { ok: true; text: string } | { ok: false; reason: string };

async function readManifestText(file: string): Promise<TextRead> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    return { ok: false, reason: `cannot be read: ${errorText(error)}` };
  }

  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { ok: false, reason: 'is not a regular file' };

    // Read one byte past what stat said: a file that grew meanwhile is read again up to one
    // byte past the limit, so the limit holds whatever the size was.
    let buffer = Buffer.allocUnsafe(Math.min(stats.size, MAX_MANIFEST_BYTES) + 1);
    let bytesRead = await readFully(handle, buffer);
    if (bytesRead === buffer.length && buffer.length <= MAX_MANIFEST_BYTES) {
      buffer = Buffer.allocUnsafe(MAX_MANIFEST_BYTES + 1);
      bytesRead = await readFully(handle, buffer);
    }
    if (bytesRead > MAX_MANIFEST_BYTES) {
      return { ok: false, reason: oversizeReason(Math.max(stats.size, bytesRead)) };
    }
    return decodeUtf8(buffer.subarray(0, bytesRead));
  } catch (error) {
    return { ok: false, reason: `cannot be read: ${errorText(error)}` };
  } finally {
    await handle.close();
  }
}

async function readFully(handle: FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

function decodeUtf8(bytes: Uint8Array): TextRead {
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { ok: false, reason: 'is not UTF-8 text; expected a YAML file' };
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
