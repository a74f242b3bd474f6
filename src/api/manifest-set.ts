import { BpfdError, ManifestError } from '../errors.js';
import { type ParsedDocument } from './document.js';
import { collectManifestFiles, compareCodeUnits } from './files.js';
import { parseManifestFile, type ParsedFile } from './parse.js';

/**
 * Flag every document that reuses a kind + name already taken: the first in (file, index)
 * order keeps it, each later one gets an error naming where the first is and loses its
 * `object`. Calling it again on the same documents adds nothing new.
 */
export function markDuplicates(documents: ParsedDocument[]): void {
  const ordered = [...documents].sort(
    (a, b) => compareCodeUnits(a.file, b.file) || a.index - b.index,
  );
  const firstByKey = new Map<string, ParsedDocument>();

  for (const document of ordered) {
    // Only a valid document claims its name: an invalid one applies nothing (the daemon may keep
    // its last good copy, which then has the name already).
    if (document.kind === undefined || document.name === undefined) continue;
    if (document.errors.length > 0) continue;
    const key = `${document.kind}\n${document.name}`;
    const first = firstByKey.get(key);
    if (first === undefined) {
      firstByKey.set(key, document);
      continue;
    }
    flagDuplicate(document, first);
  }
}

function flagDuplicate(duplicate: ParsedDocument, first: ParsedDocument): void {
  const message =
    `${duplicate.kind} "${duplicate.name}" is already defined in ${first.file} ` +
    `(document ${first.index}); rename one of them, names are unique per kind`;
  const error = new ManifestError(message, {
    file: duplicate.file,
    documentIndex: duplicate.index,
    fieldPath: 'metadata.name',
  });

  delete duplicate.object;
  if (!duplicate.errors.some((existing) => existing.message === error.message)) {
    duplicate.errors.push(error);
  }
}

/**
 * `bpfd validate`: parse every manifest under `paths` as the daemon would, duplicates
 * included. A directory that cannot be listed counts as one error on that directory.
 */
export async function validatePaths(
  paths: string[],
): Promise<{ files: ParsedFile[]; errorCount: number }> {
  const unlistable: ParsedFile[] = [];
  const manifests = new Set<string>();
  for (const path of paths) {
    try {
      for (const file of await collectManifestFiles([path])) manifests.add(file);
    } catch (error) {
      if (!(error instanceof BpfdError)) throw error;
      unlistable.push({
        file: path,
        documents: [],
        fileError: new ManifestError(error.message, { file: path }),
      });
    }
  }

  const files = [...unlistable];
  for (const file of [...manifests].sort(compareCodeUnits))
    files.push(await parseManifestFile(file));
  markDuplicates(files.flatMap((file) => file.documents));
  return { files, errorCount: countErrors(files) };
}

function countErrors(files: ParsedFile[]): number {
  let count = 0;
  for (const file of files) {
    if (file.fileError) count++;
    for (const document of file.documents) count += document.errors.length;
  }
  return count;
}
