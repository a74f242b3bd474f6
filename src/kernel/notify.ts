/**
 * systemd's notify protocol (sd_notify): one datagram to the socket in $NOTIFY_SOCKET. Node has
 * no unix datagram sockets, so this goes through libc.
 */
import { ffi } from './ffi.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_SIZE = 108;

/** Sends `state` (e.g. `READY=1`); false when not run by systemd or the send failed. */
export function notifySystemd(state: string, socketPath = process.env.NOTIFY_SOCKET): boolean {
  if (!socketPath || socketPath.length >= SUN_PATH_SIZE) return false;
  const address = Buffer.alloc(2 + SUN_PATH_SIZE);
  address.writeUInt16LE(AF_UNIX, 0);
  // A leading @ names a socket in the abstract namespace.
  const pathBytes = Buffer.from(
    socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath,
  );
  pathBytes.copy(address, 2);

  const bindings = ffi();
  const fd = bindings.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  try {
    const message = Buffer.from(state);
    const sent = Number(
      bindings.sendto(fd, message, message.length, 0, address, 2 + pathBytes.length),
    );
    return sent === message.length;
  } finally {
    bindings.close(fd);
  }
}

/** Half the watchdog interval systemd asked for, or undefined when it asked for none. */
export function watchdogIntervalMs(): number | undefined {
  const usec = Number(process.env.WATCHDOG_USEC);
  const pid = process.env.WATCHDOG_PID;
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (pid && Number(pid) !== process.pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}
