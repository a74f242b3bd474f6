/** One daemon per bpffs root: an exclusive flock on the root directory itself. */
import fs from 'node:fs';

import { BpfdError } from '../errors.js';
import { koffi } from './ffi.js';

const LOCK_EX = 2;
const LOCK_NB = 4;

export class RootLockedError extends BpfdError {
  constructor(root: string) {
    super(
      'BPFD_E_LOCKED',
      `another bpfd daemon already manages ${root}; stop it first or use another bpffsRoot`,
    );
  }
}

let flock: ((fd: number, operation: number) => number) | undefined;

/**
 * Takes the lock for the life of the process (the descriptor stays open). Throws
 * RootLockedError when another process holds it.
 * LIMITATION: the lock belongs to the root dir's inode; a root removed by hand and created
 * again while the daemon runs is a new dir that nobody holds.
 */
export function acquireRootLock(root: string): { release(): void } {
  flock ??= koffi.load('libc.so.6').func('int flock(int fd, int operation)');
  const fd = fs.openSync(root, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    fs.closeSync(fd);
    throw new RootLockedError(root);
  }
  return { release: () => fs.closeSync(fd) };
}
