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

/**
 * One pass over the manifests (one reconcile): every file is examined, and each directory once
 * however many manifests it holds, so a thousand manifests in one dir cost a thousand and one
 * `stat` calls. A new pass examines everything again: modes can change between reconciles.
 */
export class StrictModesPass {
  readonly #manifestDir: string;
  readonly #dirProblems = new Map<string, string | undefined>();

  constructor(manifestDir: string) {
    this.#manifestDir = manifestDir;
  }

  /** Why `file` must not be trusted, or undefined when it may be. */
  reasonFor(file: string): string | undefined {
    let verdict: string | undefined;
    try {
      verdict = this.#problemWith(file) ?? this.#dirChainProblem(path.dirname(file));
    } catch (err) {
      if (isGone(err) && lastVerdicts.has(file)) return lastVerdicts.get(file);
      return `cannot check the permissions of ${file}: ${(err as Error).message}`;
    }
    lastVerdicts.set(file, verdict);
    return verdict;
  }

  // From `dir` up to the manifest dir (or the filesystem root if the file lies outside it).
  #dirChainProblem(dir: string): string | undefined {
    if (this.#dirProblems.has(dir)) return this.#dirProblems.get(dir);
    const parent = path.dirname(dir);
    const atTop = dir === this.#manifestDir || parent === dir;
    const problem = this.#problemWith(dir) ?? (atTop ? undefined : this.#dirChainProblem(parent));
    this.#dirProblems.set(dir, problem);
    return problem;
  }

  #problemWith(target: string): string | undefined {
    const stat = fs.statSync(target);
    const refused = 'manifests that non-root users can change are refused (strictModes)';
    if (stat.uid !== 0) return `${target} belongs to uid ${stat.uid}, not root; ${refused}`;
    if ((stat.mode & 0o022) !== 0) {
      const mode = (stat.mode & 0o7777).toString(8).padStart(4, '0');
      return (
        `${target} is writable by group or others (mode ${mode}); ` +
        `fix it with chmod go-w ${target}; ${refused}`
      );
    }
    return undefined;
  }
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
