/**
 * strictModes: like sshd, refuse manifests that a user other than root could have written: the
 * file, and every directory from the manifest dir down to it, must belong to root and be
 * writable by no group and no other user. A refused file applies nothing.
 */
import fs from 'node:fs';
import path from 'node:path';

/**
 * The verdict on each file when it was last examined. While the manifest dir is missing or a
 * symlinked manifest dangles, the watcher keeps the objects last read from the file; they keep
 * the trust the file had when it was last seen, instead of being refused (and unloaded) because
 * nothing is there to examine. A file never examined is refused as before.
 */
const lastVerdicts = new Map<string, string | undefined>();

function problemWith(target: string): string | undefined {
  const stat = fs.statSync(target);
  if (stat.uid !== 0) return `${target} belongs to uid ${stat.uid}, not root`;
  if ((stat.mode & 0o022) !== 0) {
    const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
    return `${target} is writable by group or others (mode ${mode}); fix it with chmod go-w ${target}`;
  }
  return undefined;
}

/** Why `file` must not be trusted, or undefined when it may be. */
export function unsafeManifestReason(file: string, manifestDir: string): string | undefined {
  const chain = [file];
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    chain.push(dir);
    if (dir === manifestDir || dir === path.dirname(dir)) break;
  }
  let verdict: string | undefined;
  try {
    verdict = chainProblem(chain);
  } catch (err) {
    if (isGone(err) && lastVerdicts.has(file)) return lastVerdicts.get(file);
    return `cannot check the permissions of ${file}: ${(err as Error).message}`;
  }
  lastVerdicts.set(file, verdict);
  return verdict;
}

function chainProblem(chain: string[]): string | undefined {
  for (const target of chain) {
    const problem = problemWith(target);
    if (problem) {
      return `${problem}; manifests that non-root users can change are refused (strictModes)`;
    }
  }
  return undefined;
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
