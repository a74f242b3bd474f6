/** The bpffs pin tree: mounting, pinning, opening pins, removing them. */
import fs from 'node:fs';
import path from 'node:path';

import { BpfdError } from '../errors.js';
import { check, isErrno } from './errno.js';
import { Fd } from './fd.js';
import { BPF_FS_MAGIC, ffi, LibbpfMissingError } from './ffi.js';

const STATFS_SIZE = 120;

export class BpffsError extends BpfdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BPFD_E_BPFFS', message, options);
  }
}

export function isBpffs(dir: string): boolean {
  const buffer = Buffer.alloc(STATFS_SIZE);
  if (ffi().statfs(dir, buffer) !== 0) return false;
  return buffer.readBigInt64LE(0) === BigInt(BPF_FS_MAGIC);
}

function deepestExisting(dir: string): string {
  let current = path.resolve(dir);
  while (!fs.existsSync(current)) current = path.dirname(current);
  return current;
}

/**
 * `mkdir -p` one level at a time: Node's recursive mkdir turns EROFS (and other refusals) into a
 * misleading ENOENT, and the operator needs the real reason.
 */
function makeDirectories(dir: string, mode?: number): void {
  const missing: string[] = [];
  for (let current = path.resolve(dir); !fs.existsSync(current); current = path.dirname(current)) {
    missing.unshift(current);
  }
  for (const each of missing) {
    try {
      fs.mkdirSync(each, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function mountBpffs(target: string): void {
  check(ffi().mount('bpf', target, 'bpf', 0, null), 'mount bpffs on', target);
}

/**
 * Makes sure `root` is a directory on bpffs, mounting one where needed: on the nearest existing
 * parent when that is an empty non-bpffs dir such as /sys/fs/bpf, else on `root` itself.
 */
export function ensureBpffsRoot(root: string): void {
  const existing = deepestExisting(root);
  try {
    if (!isBpffs(existing)) {
      if (existing === '/sys/fs/bpf' || existing === path.resolve(root)) mountBpffs(existing);
      else {
        makeDirectories(root);
        mountBpffs(root);
      }
    }
    makeDirectories(root, 0o700);
  } catch (err) {
    // A missing libbpf is not a bpffs problem; its own message says what to install.
    if (err instanceof LibbpfMissingError) throw err;
    throw new BpffsError(
      `bpffs root ${root} is not usable: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (!isBpffs(root)) throw new BpffsError(`bpffs root ${root} is not on a bpf filesystem`);
}

/** bpffs refuses dots in names, and DNS-1123 names may hold them; `_` cannot appear in those. */
export function pinName(name: string): string {
  return name.replaceAll('.', '_');
}

export function pinObject(fd: Fd, pinPath: string): void {
  fs.mkdirSync(path.dirname(pinPath), { recursive: true, mode: 0o700 });
  check(ffi().bpf_obj_pin(fd.value, pinPath), 'pin', pinPath);
}

export function openPin(pinPath: string): Fd {
  return new Fd(check(ffi().bpf_obj_get(pinPath), 'open pin', pinPath));
}

/** Opens a pin, or returns undefined when it does not exist. */
export function openPinIfExists(pinPath: string): Fd | undefined {
  try {
    return openPin(pinPath);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export function removePins(pinPath: string): void {
  fs.rmSync(pinPath, { recursive: true, force: true });
}

export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
