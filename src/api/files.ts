import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

import { BpfdError } from '../errors.js';

const SIDECAR_SUFFIXES = ['.status.yaml', '.status.yml'];
const MANIFEST_SUFFIXES = ['.yaml', '.yml'];

/** `*.yaml` / `*.yml`, not hidden, not a status sidecar (`x.status.yaml`). */
export function isManifestFileName(file: string): boolean {
  const name = basename(file);
  if (name.startsWith('.')) return false;
  if (SIDECAR_SUFFIXES.some((suffix) => name.endsWith(suffix))) return false;
  return MANIFEST_SUFFIXES.some((suffix) => name.endsWith(suffix) && name.length > suffix.length);
}

/**
 * The manifest files under `paths`, sorted: a file is taken as given (even with another name,
 * or missing, so that reading it reports the problem); a directory is walked recursively,
 * skipping hidden entries (`.git/`) and status sidecars. A directory that cannot be listed
 * throws: the desired set would be incomplete, and treating its files as removed would unload
 * their programs.
 */
export async function collectManifestFiles(paths: string[]): Promise<string[]> {
  const found = new Set<string>();
  const walkedDirs = new Set<string>();

  for (const path of paths) {
    const stats = await statOrUndefined(path);
    if (stats?.isDirectory()) {
      await walkDirectory(path, found, walkedDirs);
    } else {
      found.add(path);
    }
  }
  return [...found].sort(compareCodeUnits);
}

async function walkDirectory(dir: string, found: Set<string>, walkedDirs: Set<string>) {
  // Symlinked directories are followed once, so a link loop cannot recurse forever.
  const real = await realpath(dir).catch(() => dir);
  if (walkedDirs.has(real)) return;
  walkedDirs.add(real);

  const names = await listDirectory(dir);
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    // Entries that vanish mid-walk (a git checkout in progress) are simply not there.
    const stats = await statOrUndefined(path);
    if (stats?.isDirectory()) {
      await walkDirectory(path, found, walkedDirs);
    } else if (stats?.isFile() && isManifestFileName(name)) {
      found.add(path);
    }
  }
}

async function listDirectory(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return [];
    const reason = error instanceof Error ? error.message : String(error);
    throw new BpfdError('BPFD_E_MANIFEST_DIR', `cannot list manifest directory ${dir}: ${reason}`, {
      cause: error,
    });
  }
}

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

function isErrorCode(error: unknown, code: string): boolean {
  return error instanceof Error && 'code' in error && error.code === code;
}

/** Plain code-unit order, the same on every machine whatever its locale. */
export function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}
