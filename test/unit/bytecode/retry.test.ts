import { expect } from 'chai';

import { CacheLock } from '../../../src/bytecode/lock.js';
import { backoffDelay, withRetries, type RetryPolicy } from '../../../src/bytecode/retry.js';

describe('withRetries', () => {
  const delays: number[] = [];
  const policy: RetryPolicy = {
    attempts: 4,
    baseDelayMs: 100,
    sleep: async (ms) => void delays.push(ms),
  };
  beforeEach(() => (delays.length = 0));

  it('backs off exponentially between tries and returns the first success', async () => {
    let tries = 0;
    const result = await withRetries(
      policy,
      async () => {
        tries += 1;
        if (tries < 3) throw new Error('reset');
        return 'done';
      },
      () => true,
    );
    expect(result).to.equal('done');
    expect(delays).to.deep.equal([100, 200]);
  });

  it('throws the last error once the tries run out', async () => {
    let tries = 0;
    const failing = async () => {
      tries += 1;
      throw new Error(`failure ${tries}`);
    };
    const error = await withRetries(policy, failing, () => true).catch((e: Error) => e);
    expect((error as Error).message).to.equal('failure 4');
    expect(delays).to.deep.equal([100, 200, 400]);
  });

  it('does not retry an error that is not transient', async () => {
    let tries = 0;
    const failing = async () => {
      tries += 1;
      throw new Error('denied');
    };
    await withRetries(policy, failing, () => false).catch(() => undefined);
    expect(tries).to.equal(1);
  });

  it('caps the delay at 10 s', () => {
    expect(backoffDelay({ ...policy, baseDelayMs: 5000 }, 5)).to.equal(10_000);
  });
});

describe('CacheLock', () => {
  it('runs work on one key in order and garbage collection alone', async () => {
    const lock = new CacheLock();
    const events: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const firstBlocked = new Promise<void>((resolve) => (releaseFirst = resolve));

    const first = lock.shared('a', async () => {
      events.push('a1 start');
      await firstBlocked;
      events.push('a1 end');
    });
    const second = lock.shared('a', async () => void events.push('a2'));
    const other = lock.shared('b', async () => void events.push('b'));
    const collect = lock.exclusive(async () => void events.push('gc'));
    const after = lock.shared('b', async () => void events.push('b after gc'));

    await other;
    expect(events).to.deep.equal(['a1 start', 'b']);
    releaseFirst();
    await Promise.all([first, second, collect, after]);
    expect(events).to.deep.equal(['a1 start', 'b', 'a1 end', 'a2', 'gc', 'b after gc']);
  });
});
