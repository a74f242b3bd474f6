/**
 * Last-known-good, per file: pure functions from "what the file says now" and "what it made
 * effective before" to "what it makes effective now". Only a removed file or a document removed
 * from a file that parses takes an object away; broken text keeps the previous copy, marked
 * `retained` with the reason the current text cannot be used.
 */
import {
  PROGRAM_KINDS,
  type ParsedDocument,
  type ParsedFile,
  type ProgramObject,
} from '../api/index.js';
import type { EffectiveDocument, FileView, ManifestSnapshot } from './types.js';

const PROGRAM_KIND_NAMES: ReadonlySet<string> = new Set(PROGRAM_KINDS);

/**
 * The view of a file after a new parse. `previous` is the file's view from the last read, or
 * undefined when the file is new (a new file with errors makes nothing effective).
 */
export function buildFileView(parsed: ParsedFile, previous: FileView | undefined): FileView {
  const lastGood = previous?.effective ?? [];

  if (parsed.fileError) {
    return { file: parsed.file, parsed, effective: retainAll(lastGood, parsed.fileError.message) };
  }

  return { file: parsed.file, parsed, effective: effectiveDocuments(parsed, lastGood) };
}

/** The same view with every effective object held back for `reason` (e.g. the dir vanished). */
export function holdFileView(previous: FileView, reason: string): FileView {
  return { ...previous, effective: retainAll(previous.effective, reason) };
}

/**
 * A string equal for two snapshots exactly when a consumer would see no difference: the
 * effective objects, the parse results with their error messages, and the missing flag.
 */
export function snapshotFingerprint(snapshot: ManifestSnapshot): string {
  const files = snapshot.files.map((view) => ({
    file: view.file,
    fileError: view.parsed.fileError?.message,
    documents: view.parsed.documents.map(documentFingerprint),
    effective: view.effective,
  }));
  return JSON.stringify({ dirMissing: snapshot.dirMissing, files });
}

function documentFingerprint(document: ParsedDocument) {
  return {
    index: document.index,
    kind: document.kind,
    name: document.name,
    object: document.object,
    errors: document.errors.map((error) => error.message),
  };
}

function retainAll(lastGood: EffectiveDocument[], reason: string): EffectiveDocument[] {
  return lastGood.map((effective) => ({ ...effective, retained: { reason } }));
}

function effectiveDocuments(parsed: ParsedFile, lastGood: EffectiveDocument[]) {
  const validObjects = parsed.documents.flatMap((document) => validObject(document) ?? []);
  const claimed = new Set(validObjects.map(objectIdentity));
  const effective: EffectiveDocument[] = [];

  for (const document of parsed.documents) {
    const object = validObject(document);
    if (object) effective.push({ file: parsed.file, index: document.index, object });
    // Valid but not a program (a BpfProgram document): nothing to apply, nothing to keep.
    if (object || document.errors.length === 0) continue;

    // A copy must never shadow an object the file now defines validly, nor appear twice.
    const kept = findLastGood(document, lastGood);
    if (!kept || claimed.has(objectIdentity(kept.object))) continue;
    claimed.add(objectIdentity(kept.object));
    effective.push({
      file: parsed.file,
      index: document.index,
      object: kept.object,
      retained: { reason: documentErrorMessage(document) },
    });
  }

  return effective;
}

/**
 * The previous copy a broken document stands for. A document whose kind and name can still be
 * read is matched by them only (a renamed object is a new one). When either is unreadable (no
 * name, or a kind that is not a program kind, e.g. a typo) the copy at the same index is used.
 */
function findLastGood(document: ParsedDocument, lastGood: EffectiveDocument[]) {
  const { kind, name } = document;
  if (kind !== undefined && PROGRAM_KIND_NAMES.has(kind) && name) {
    return lastGood.find(({ object }) => object.kind === kind && object.metadata.name === name);
  }
  return lastGood.find((effective) => effective.index === document.index);
}

function validObject(document: ParsedDocument): ProgramObject | undefined {
  return document.errors.length === 0 ? document.object : undefined;
}

function objectIdentity(object: ProgramObject): string {
  return `${object.kind}/${object.metadata.name}`;
}

function documentErrorMessage(document: ParsedDocument): string {
  const messages = document.errors.map((error) => error.message);
  return messages.length > 0 ? messages.join('; ') : `document ${document.index} is not valid`;
}
