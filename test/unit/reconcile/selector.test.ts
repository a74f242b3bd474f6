import { expect } from 'chai';

import { BpfdError } from '../../../src/errors.js';
import { describeSelector, matchesNodeSelector } from '../../../src/reconcile/selector.js';

const edgeNode = { 'kubernetes.io/hostname': 'edge-1', role: 'edge', zone: 'a', gpu: '' };

function selectorErrorOf(action: () => unknown): BpfdError {
  try {
    action();
  } catch (error) {
    expect(error).to.be.instanceOf(BpfdError);
    return error as BpfdError;
  }
  expect.fail('expected a BpfdError');
}

describe('matchesNodeSelector', () => {
  it('selects every node with an empty selector', () => {
    expect(matchesNodeSelector({}, edgeNode)).to.equal(true);
    expect(matchesNodeSelector({}, {})).to.equal(true);
    expect(matchesNodeSelector({ matchLabels: {}, matchExpressions: [] }, {})).to.equal(true);
  });

  it('requires every matchLabels pair', () => {
    expect(matchesNodeSelector({ matchLabels: { role: 'edge', zone: 'a' } }, edgeNode)).to.equal(
      true,
    );
    expect(matchesNodeSelector({ matchLabels: { role: 'edge', zone: 'b' } }, edgeNode)).to.equal(
      false,
    );
    expect(matchesNodeSelector({ matchLabels: { rack: '7' } }, edgeNode)).to.equal(false);
  });

  it('matches an empty label value only when the label is present and empty', () => {
    expect(matchesNodeSelector({ matchLabels: { gpu: '' } }, edgeNode)).to.equal(true);
    expect(matchesNodeSelector({ matchLabels: { gpu: '' } }, { role: 'edge' })).to.equal(false);
  });

  it('matches In when the label has one of the values', () => {
    const selector = { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] };
    expect(matchesNodeSelector(selector, edgeNode)).to.equal(true);
    expect(matchesNodeSelector(selector, { zone: 'c' })).to.equal(false);
    expect(matchesNodeSelector(selector, {})).to.equal(false);
  });

  it('matches NotIn when the label has none of the values or is absent', () => {
    const selector = { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] };
    expect(matchesNodeSelector(selector, edgeNode)).to.equal(false);
    expect(matchesNodeSelector(selector, { zone: 'b' })).to.equal(true);
    expect(matchesNodeSelector(selector, {})).to.equal(true);
  });

  it('matches Exists on presence, whatever the value', () => {
    const selector = { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] };
    expect(matchesNodeSelector(selector, edgeNode)).to.equal(true);
    expect(matchesNodeSelector(selector, { role: 'edge' })).to.equal(false);
  });

  it('matches DoesNotExist on absence', () => {
    const selector = { matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist', values: [] }] };
    expect(matchesNodeSelector(selector, edgeNode)).to.equal(false);
    expect(matchesNodeSelector(selector, { role: 'edge' })).to.equal(true);
  });

  it('requires matchLabels and all matchExpressions together', () => {
    const selector = {
      matchLabels: { role: 'edge' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['a'] },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    };
    expect(matchesNodeSelector(selector, edgeNode)).to.equal(true);
    expect(matchesNodeSelector(selector, { ...edgeNode, legacy: 'yes' })).to.equal(false);
    expect(matchesNodeSelector(selector, { ...edgeNode, role: 'core' })).to.equal(false);
  });

  it('does not mistake inherited object properties for labels', () => {
    const exists = { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] };
    const absent = { matchExpressions: [{ key: 'toString', operator: 'DoesNotExist' }] };
    expect(matchesNodeSelector(exists, {})).to.equal(false);
    expect(matchesNodeSelector(absent, {})).to.equal(true);
  });

  it('rejects an unknown operator with BPFD_E_SELECTOR', () => {
    const selector = { matchExpressions: [{ key: 'zone', operator: 'in', values: ['a'] }] };
    const error = selectorErrorOf(() => matchesNodeSelector(selector, edgeNode));
    expect(error.code).to.equal('BPFD_E_SELECTOR');
    expect(error.message).to.include('"in"').and.include('zone');
  });

  it('rejects In and NotIn without values', () => {
    for (const operator of ['In', 'NotIn']) {
      const withEmpty = { matchExpressions: [{ key: 'zone', operator, values: [] }] };
      const withNone = { matchExpressions: [{ key: 'zone', operator }] };
      expect(selectorErrorOf(() => matchesNodeSelector(withEmpty, {})).code).to.equal(
        'BPFD_E_SELECTOR',
      );
      expect(selectorErrorOf(() => matchesNodeSelector(withNone, {})).message).to.include(operator);
    }
  });

  it('rejects values on Exists and DoesNotExist', () => {
    const selector = { matchExpressions: [{ key: 'gpu', operator: 'Exists', values: ['x'] }] };
    expect(selectorErrorOf(() => matchesNodeSelector(selector, {})).code).to.equal(
      'BPFD_E_SELECTOR',
    );
  });
});

describe('describeSelector', () => {
  it('writes every requirement in the Kubernetes string form, in manifest order', () => {
    const selector = {
      matchLabels: { role: 'edge' },
      matchExpressions: [
        { key: 'zone', operator: 'In', values: ['a', 'b'] },
        { key: 'rack', operator: 'NotIn', values: ['7'] },
        { key: 'sriov', operator: 'Exists' },
        { key: 'gpu', operator: 'DoesNotExist' },
      ],
    };
    expect(describeSelector(selector)).to.equal(
      'role=edge,zone in (a,b),rack notin (7),sriov,!gpu',
    );
  });

  it('gives the empty string for a selector that selects every node', () => {
    expect(describeSelector({})).to.equal('');
  });

  it('rejects the same invalid requirements as the matcher', () => {
    const selector = { matchExpressions: [{ key: 'zone', operator: 'Near', values: ['a'] }] };
    expect(selectorErrorOf(() => describeSelector(selector)).code).to.equal('BPFD_E_SELECTOR');
  });
});
