/** What the daemon owns in the kernel now, read from its pin tree. */
import fs from 'node:fs';
import path from 'node:path';

import {
  chainProgramIds,
  linkInfo,
  listDir,
  observeDispatchers,
  openPinIfExists,
  programInfo,
  programPinPath,
  queryXdp,
  withFds,
  type LinkInfo,
} from '../kernel/index.js';
import { isSettled, statSignature } from '../stat-signature.js';
import type { KindShort, ObservedProgram, ObservedState } from './types.js';

const KINDS: KindShort[] = ['xdp', 'tc', 'tracepoint'];

/**
 * What was read from each dir of the pin tree, with the dir's identity and times then. Adding,
 * removing or renaming an entry (a pin or a subdir) changes a bpffs dir's mtime, and a pin's
 * kernel object cannot change without its pin being replaced, so a `stat` of the dir stands in
 * for listing it and opening its pins. Every dir is still examined on every observe: a pin
 * removed by hand is seen by the next reconcile, as before.
 */
const readByDir = new Map<string, { signature: string; value: unknown }>();
/** Dirs examined by the observe in progress; what the others held is forgotten at its end. */
let examined = new Set<string>();

/** Makes the next observe read every dir of the pin tree again (the resync does). */
export function forgetPinTreeReads(): void {
  readByDir.clear();
}

function readThroughDir<T>(dir: string, read: () => T, missing: T): T {
  examined.add(dir);
  const startedAt = Date.now();
  const stat = fs.statSync(dir, { throwIfNoEntry: false });
  if (!stat) {
    readByDir.delete(dir);
    return missing;
  }
  const signature = statSignature(stat);
  const known = readByDir.get(dir);
  if (known?.signature === signature) return known.value as T;

  const value = read();
  if (isSettled(stat, startedAt)) {
    readByDir.set(dir, { signature, value });
  } else {
    readByDir.delete(dir);
  }
  return value;
}

function listDirThrough(dir: string): string[] {
  return readThroughDir(dir, () => listDir(dir), []);
}

function pinnedId(pinPath: string, read: 'program' | 'link'): number | undefined {
  const fd = openPinIfExists(pinPath);
  if (!fd) return undefined;
  return withFds(
    [fd],
    () => (read === 'program' ? programInfo(fd, pinPath) : linkInfo(fd, pinPath)).id,
  );
}

// The maps dir is read with the program's dir: maps are pinned before the program, and nothing
// of ours changes them afterwards. A map pin removed by hand shows until the dir is read again.
function observeProgram(kind: KindShort, pinnedName: string, hashDir: string): ObservedProgram {
  const pins = readThroughDir(
    hashDir,
    () => {
      const maps: Record<string, string> = {};
      for (const map of listDir(path.join(hashDir, 'maps')))
        maps[map] = path.join(hashDir, 'maps', map);
      return {
        programId: pinnedId(programPinPath(hashDir), 'program'),
        linkId: kind === 'tracepoint' ? pinnedId(path.join(hashDir, 'link'), 'link') : undefined,
        maps,
      };
    },
    { programId: undefined, linkId: undefined, maps: {} },
  );
  return {
    key: `${kind}/${pinnedName}`,
    specHash: path.basename(hashDir),
    pinDir: hashDir,
    programId: pins.programId,
    linkId: pins.linkId,
    maps: { ...pins.maps },
  };
}

function xdpModeOf(link: LinkInfo | undefined): 'native' | 'skb' | undefined {
  if (!link || link.ifindex === 0) return undefined;
  try {
    return queryXdp(link.ifindex).mode;
  } catch {
    return undefined;
  }
}

/**
 * Program dirs are `<root>/programs/<kind>/<pinned name>/<spec hash>/`. The pinned name is the
 * object name with dots turned into underscores (bpffs refuses dots), so keys are compared in
 * that form.
 */
export function observe(root: string): ObservedState {
  examined = new Set();
  const programs: ObservedProgram[] = [];
  for (const kind of KINDS) {
    const kindDir = path.join(root, 'programs', kind);
    for (const pinnedName of listDirThrough(kindDir)) {
      for (const hash of listDirThrough(path.join(kindDir, pinnedName))) {
        programs.push(observeProgram(kind, pinnedName, path.join(kindDir, pinnedName, hash)));
      }
    }
  }
  for (const dir of readByDir.keys()) if (!examined.has(dir)) readByDir.delete(dir);

  const dispatchers = observeDispatchers(root).map((dispatcher) => ({
    ...dispatcher,
    chainIds: dispatcher.current ? chainProgramIds(dispatcher.current.dir) : [],
    xdpMode: dispatcher.hook.kind === 'xdp' ? xdpModeOf(dispatcher.link) : undefined,
  }));
  return { programs, dispatchers };
}
