/** Reading map values by pin path (status, tests and operators' tooling). */
import { openPin } from './bpffs.js';
import { check } from './errno.js';
import { withFds } from './fd.js';
import { ffi } from './ffi.js';

/** The value at `key` of the pinned map, or undefined when the key is absent. */
export function lookupPinnedMap(
  pinPath: string,
  key: Buffer,
  valueSize: number,
): Buffer | undefined {
  const map = openPin(pinPath);
  return withFds([map], () => {
    const value = Buffer.alloc(valueSize);
    const result = ffi().bpf_map_lookup_elem(map.value, key, value);
    if (result === -2 /* ENOENT */) return undefined;
    check(result, 'lookup in map', pinPath);
    return value;
  });
}
