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
import type { KindShort, ObservedProgram, ObservedState } from './types.js';

const KINDS: KindShort[] = ['xdp', 'tc', 'tracepoint'];

/**
 * Ids of pinned programs and links by pin path and inode. A pin's inode stands for one kernel
 * object as long as the pin exists (pinning anew makes a new inode), so a known inode spares
 * opening the pin and asking the kernel, the costly part of observing a large tree.
 */
const idsByPin = new Map<string, { ino: number; id: number }>();

function pinnedId(pinPath: string, read: 'program' | 'link'): number | undefined {
  let ino: number;
  try {
    ino = fs.statSync(pinPath).ino;
  } catch {
    idsByPin.delete(pinPath);
    return undefined;
  }
  const known = idsByPin.get(pinPath);
  if (known?.ino === ino) return known.id;

  const fd = openPinIfExists(pinPath);
  if (!fd) return undefined;
  const id = withFds(
    [fd],
    () => (read === 'program' ? programInfo(fd, pinPath) : linkInfo(fd, pinPath)).id,
  );
  idsByPin.set(pinPath, { ino, id });
  return id;
}

function observeProgram(kind: KindShort, pinnedName: string, hashDir: string): ObservedProgram {
  const maps: Record<string, string> = {};
  for (const map of listDir(path.join(hashDir, 'maps')))
    maps[map] = path.join(hashDir, 'maps', map);
  return {
    key: `${kind}/${pinnedName}`,
    specHash: path.basename(hashDir),
    pinDir: hashDir,
    programId: pinnedId(programPinPath(hashDir), 'program'),
    maps,
    linkId: kind === 'tracepoint' ? pinnedId(path.join(hashDir, 'link'), 'link') : undefined,
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
  const programs: ObservedProgram[] = [];
  for (const kind of KINDS) {
    const kindDir = path.join(root, 'programs', kind);
    for (const pinnedName of listDir(kindDir)) {
      for (const hash of listDir(path.join(kindDir, pinnedName))) {
        programs.push(observeProgram(kind, pinnedName, path.join(kindDir, pinnedName, hash)));
      }
    }
  }
  const dispatchers = observeDispatchers(root).map((dispatcher) => ({
    ...dispatcher,
    chainIds: dispatcher.current ? chainProgramIds(dispatcher.current.dir) : [],
    xdpMode: dispatcher.hook.kind === 'xdp' ? xdpModeOf(dispatcher.link) : undefined,
  }));
  return { programs, dispatchers };
}
