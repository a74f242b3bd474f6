/** Facts about the machine the daemon runs on, named the way Kubernetes and OCI name them. */

/**
 * Go's GOARCH for Node's `process.arch`: the value of the `kubernetes.io/arch` label and the
 * architecture image indexes list.
 */
export function goArchitecture(nodeArch: string = process.arch): string {
  const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return littleEndian ? 'ppc64le' : 'ppc64';
    case 'mips':
      return littleEndian ? 'mipsle' : 'mips';
    case 'mipsel':
      return 'mipsle';
    default:
      return nodeArch;
  }
}
