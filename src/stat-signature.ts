/**
 * Telling that a file or dir has not changed since it was read, from `stat` alone: its device,
 * inode, size, mtime and ctime are the same. That proves nothing while those times are recent:
 * the kernel stamps them from a coarse clock (one tick: 4 ms at HZ=250, 10 ms at HZ=100), so a
 * second change within the tick of the first leaves them as they were ("racy" times, as git
 * calls them). What was read is trusted later only if its times were already SETTLED_MS old.
 */
import type { Stats } from 'node:fs';

/** Well above one tick of the kernel's coarse clock. */
export const SETTLED_MS = 100;

export function statSignature(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/** When the content or attributes last changed, in ms since the epoch. */
export function changedAt(stats: Stats): number {
  return Math.max(stats.mtimeMs, stats.ctimeMs);
}

/** Whether `stats`, taken at `statedAt` (ms, before the read), may stand for what was read. */
export function isSettled(stats: Stats, statedAt: number): boolean {
  return changedAt(stats) < statedAt - SETTLED_MS;
}
