import { expect } from 'chai';

import { bpfProgramName } from '../../../src/status/index.js';

describe('bpfProgramName', () => {
  it('is <object>-<node>, as bpfd names it', () => {
    expect(bpfProgramName('xdp-counter', 'node-1')).to.equal('xdp-counter-node-1');
  });

  it('stays a DNS-1123 name of at most 253 characters for the longest object names', () => {
    const longest = `${'a'.repeat(61)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`;
    expect(longest).to.have.length(253);
    const name = bpfProgramName(longest, 'node-1');
    const other = bpfProgramName(longest, 'node-2');

    expect(name).to.have.length.at.most(253);
    expect(name).to.match(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    expect(name.startsWith('a'.repeat(61))).to.equal(true);
    expect(name).to.not.equal(other);
  });
});
