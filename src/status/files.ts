import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

import { statusError } from './conditions.js';

const FILE_MODE = 0o644;

/**
 * The text of a regular file, or undefined when nothing is there. The last path component is
 * never followed: a symlink, FIFO or device at `file` is a BpfdError (`BPFD_E_STATUS`), and a
 * FIFO cannot block us because it is opened non-blocking.
 */
export async function readRegularFile(file: string): Promise<string | undefined> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, flags);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    if (errorCode(error) === 'ELOOP') throw statusError(`${file}: is a symlink; not followed`);
    throw error;
  }

  try {
    if (!(await handle.stat()).isFile()) throw statusError(`${file}: not a regular file`);
    return await handle.readFile({ encoding: 'utf8' });
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `content` so a reader sees the old or the new file, never a mix, and the
 * new one survives a crash: a fresh temp file beside it (created exclusively, never through a
 * symlink), fsync, rename over the target, fsync the directory. A symlink at `file` is replaced
 * itself; its target is never written. The temp name starts with a dot so watchers that skip
 * hidden files never see it.
 *
 * LIMITATION: only the last path component is protected; folders above it are followed. Node
 * has no openat(), and the folders (manifest dir or status dir) are root-owned by design.
 */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const directory = path.dirname(file);
  const tempFile = path.join(
    directory,
    `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );

  try {
    await writeNewFile(tempFile, content);
    await fs.rename(tempFile, file);
  } catch (error) {
    await fs.rm(tempFile, { force: true });
    throw error;
  }
  await syncDirectory(directory);
}

/** Unlinks `file` (a symlink there is removed, not followed); false when it was not there. */
export async function removeFile(file: string): Promise<boolean> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
  await syncDirectory(path.dirname(file));
  return true;
}

/** Removes `directory` and its parents while they are empty, stopping at `stopAt`. */
export async function removeEmptyDirectories(directory: string, stopAt: string): Promise<void> {
  const root = path.resolve(stopAt);

  for (let current = path.resolve(directory); isBelow(current, root);) {
    try {
      await fs.rmdir(current);
    } catch (error) {
      // Not empty, already gone or not ours to remove: the pruning simply ends here.
      if (['ENOTEMPTY', 'EEXIST', 'ENOENT', 'ENOTDIR', 'EBUSY'].includes(errorCode(error))) return;
      throw error;
    }
    current = path.dirname(current);
  }
}

export function errorCode(error: unknown): string {
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return '';
}

async function writeNewFile(file: string, content: string): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await fs.open(file, flags, FILE_MODE);

  try {
    // The umask may have narrowed the mode; sidecars are meant to be world-readable.
    await handle.chmod(FILE_MODE);
    await handle.writeFile(content, { encoding: 'utf8' });
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await fs.open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isBelow(candidate: string, root: string): boolean {
  const relative = path.relative(root, candidate);
  return relative !== '' && !relative.startsWith('..' + path.sep) && relative !== '..';
}
