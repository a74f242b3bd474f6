import os from 'node:os';

import { KernelError } from '../errors.js';
import { lastErrno } from './ffi.js';

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, code]) => [code, name]),
);

/** libbpf's own error codes (LIBBPF_ERRNO__*), which it returns like errnos. */
const LIBBPF_ERRORS = new Map<number, string>([
  [4001, 'not a valid ELF object (LIBBPF_ERRNO__FORMAT)'],
  [4002, 'kernel version section missing (LIBBPF_ERRNO__KVERSION)'],
  [4003, 'ELF byte order does not match this machine (LIBBPF_ERRNO__ENDIAN)'],
  [4004, 'libbpf internal error (LIBBPF_ERRNO__INTERNAL)'],
  [4005, 'relocation failed (LIBBPF_ERRNO__RELOC)'],
  [4006, 'load failed (LIBBPF_ERRNO__LOAD)'],
  [4007, 'verifier refused the program (LIBBPF_ERRNO__VERIFY)'],
  [4008, 'program too big (LIBBPF_ERRNO__PROG2BIG)'],
  [4009, 'wrong kernel version (LIBBPF_ERRNO__KVER)'],
  [4010, 'kernel does not support the program type (LIBBPF_ERRNO__PROGTYPE)'],
]);

/** `EPERM` for 1, libbpf's meaning for its 4000s, `errno 200` for codes nobody names. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? LIBBPF_ERRORS.get(errno) ?? `errno ${errno}`;
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
