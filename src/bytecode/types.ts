/** Small types shared by the bytecode modules. */

/** pino's shape: fields first, then the message. */
export interface ImageLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Go's GOARCH for Node's `process.arch`, as image indexes name architectures. */
export function goArchitecture(nodeArch: string = process.arch): string {
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return littleEndian ? 'ppc64le' : 'ppc64';
    case 'mipsel':
      return 'mipsle';
    default:
      return nodeArch;
  }
}
