import { ffi } from './ffi.js';

/** Owns one kernel file descriptor (program, map or link) until `close()` or `disown()`. */
export class Fd {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get value(): number {
    if (this.#fd < 0) throw new Error('file descriptor already closed');
    return this.#fd;
  }

  close(): void {
    if (this.#fd < 0) return;
    ffi().close(this.#fd);
    this.#fd = -1;
  }

  /** Gives up ownership without closing (the caller took the number over). */
  disown(): number {
    const fd = this.value;
    this.#fd = -1;
    return fd;
  }
}

/** Runs `body` with the descriptors, closing all of them whatever happens. */
export function withFds<T>(fds: Fd[], body: () => T): T {
  try {
    return body();
  } finally {
    for (const fd of fds) fd.close();
  }
}
