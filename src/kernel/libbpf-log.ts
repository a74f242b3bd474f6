/**
 * libbpf reports through a printf-style callback. We format each message with libc's
 * vsnprintf, hand it to the logger, and keep the messages of the call under way so that a
 * failed load can quote the verifier log.
 */
import { ffi, koffi } from './ffi.js';

const LIBBPF_INFO = 1;
const MESSAGE_BUFFER_SIZE = 64 * 1024;

export interface LibbpfLogger {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

let installed = false;
let logger: LibbpfLogger | undefined;
let capture: string[] | undefined;
const messageBuffer = Buffer.alloc(MESSAGE_BUFFER_SIZE);

function onPrint(level: number, format: string, args: unknown): number {
  const length = ffi().vsnprintf(messageBuffer, MESSAGE_BUFFER_SIZE, format, args);
  const text = messageBuffer.toString('utf8', 0, Math.min(length, MESSAGE_BUFFER_SIZE - 1));

  capture?.push(text);
  // libbpf's warnings about one failed object are reported by the caller with context.
  if (level <= LIBBPF_INFO && logger) logger.debug({ libbpfLevel: level }, text.trimEnd());
  return 0;
}

export function setLibbpfLogger(next: LibbpfLogger | undefined): void {
  logger = next;
}

function install(): void {
  if (installed) return;
  const bindings = ffi();
  const callback = koffi.register(onPrint, koffi.pointer(bindings.printFn));
  bindings.libbpf_set_print(callback);
  installed = true;
}

/**
 * Runs `body` while keeping what libbpf prints; `body` reads it through `output()` to quote it
 * in its own error (the verifier log of a failed load, libbpf's reason for a bad object).
 */
export function withLibbpfOutput<T>(body: (output: () => string) => T): T {
  install();
  const previous = capture;
  const messages: string[] = [];
  capture = messages;
  try {
    return body(() => messages.join(''));
  } finally {
    capture = previous;
  }
}
