/**
 * A unix datagram socket that records sd_notify messages, as systemd's notify socket would.
 * Node has no unix datagram sockets, so it goes through libc with koffi.
 */
import fs from 'node:fs';

import koffi from 'koffi';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;

const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)');
const bind = libc.func('int bind(int fd, const uint8_t *addr, uint32_t len)');
const recv = libc.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)');
const close = libc.func('int close(int fd)');

export class NotifySocket {
  readonly messages: string[] = [];
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (this.fd < 0) throw new Error('socket() failed');
    const address = Buffer.alloc(110);
    address.writeUInt16LE(AF_UNIX, 0);
    Buffer.from(path).copy(address, 2);
    if (bind(this.fd, address, 2 + path.length + 1) !== 0) throw new Error(`bind(${path}) failed`);
  }

  /** Reads every datagram waiting now. */
  drain(): string[] {
    const buffer = Buffer.alloc(4096);
    for (;;) {
      const length = Number(recv(this.fd, buffer, buffer.length, 0));
      if (length <= 0) break;
      this.messages.push(buffer.toString('utf8', 0, length));
    }
    return this.messages;
  }

  close(): void {
    close(this.fd);
    fs.rmSync(this.path, { force: true });
  }
}
