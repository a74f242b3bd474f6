import os from 'node:os';

import { KernelError } from '../errors.js';
import { lastErrno } from './ffi.js';

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, code]) => [code, name]),
);

/** `EPERM` for 1, `errno 200` for codes Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/**
 * Turns a libbpf/libc return value into an exception. libbpf 1.x returns `-errno` from int
 * functions; libc returns -1 and sets errno.
 */
export function check(result: number, operation: string, subject: string): number {
  if (result >= 0) return result;
  const errno = result === -1 ? lastErrno() || 1 : -result;
  throw new KernelError(operation, errno, `${operation} ${subject}: ${errnoName(errno)}`);
}

/** For functions that return NULL and set errno. */
export function checkPointer<T>(pointer: T | null, operation: string, subject: string): T {
  if (pointer) return pointer;
  const errno = lastErrno() || 1;
  throw new KernelError(operation, errno, `${operation} ${subject}: ${errnoName(errno)}`);
}

export function isErrno(err: unknown, ...names: string[]): boolean {
  return err instanceof KernelError && names.includes(errnoName(err.errno));
}
