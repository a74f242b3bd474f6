import type { ChildProcess } from 'node:child_process';

import { eventually } from './env.js';

export type LogEntry = { msg?: string; reasons?: string[] } & Record<string, unknown>;

/** The daemon's JSON log lines as they arrive, to wait for what it says it did. */
export class DaemonLog {
  #text = '';

  constructor(child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => (this.#text += chunk.toString('utf8')));
  }

  entries(): LogEntry[] {
    return this.#text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogEntry);
  }

  /** A position in the log: entries logged later come after it. */
  mark(): number {
    return this.entries().length;
  }

  since(mark: number): LogEntry[] {
    return this.entries().slice(mark);
  }

  /**
   * The first entry after `mark` whose message starts with `message` and that `matches`, once
   * it is logged, with the position right after it.
   */
  async waitFor(
    message: string,
    mark: number,
    matches: (entry: LogEntry) => boolean = () => true,
  ): Promise<{ entry: LogEntry; after: number }> {
    return eventually(`log "${message}"`, () => {
      const offset = this.since(mark).findIndex(
        (entry) => entry.msg?.startsWith(message) === true && matches(entry),
      );
      return offset >= 0 && { entry: this.entries()[mark + offset]!, after: mark + offset + 1 };
    });
  }
}
