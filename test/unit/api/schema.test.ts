import { Type } from '@sinclair/typebox';
import { expect } from 'chai';

import {
  jsonSchemas,
  LabelSelectorSchema,
  validateAgainst,
  type LabelSelector,
} from '../../../src/api/index.js';
import type { LabelSelectorLike } from '../../../src/reconcile/selector.js';

type JsonObject = Record<string, any>;

describe('jsonSchemas', () => {
  const schemas = jsonSchemas() as Record<string, JsonObject>;

  it('describes the four kinds as plain JSON', () => {
    expect(Object.keys(schemas)).to.deep.equal([
      'XdpProgram',
      'TcProgram',
      'TracepointProgram',
      'BpfProgram',
    ]);
    const text = JSON.stringify(schemas);
    expect(JSON.parse(text)).to.deep.equal(schemas);
    expect(text).to.not.contain('errorMessage');
  });

  it("keeps the limits of bpfd's CRDs", () => {
    const xdp = schemas['XdpProgram']!['properties']['spec'];
    const tc = schemas['TcProgram']!['properties']['spec'];

    expect(xdp['required']).to.have.members([
      'sectionname',
      'nodeselector',
      'bytecode',
      'interfaceselector',
      'priority',
    ]);
    expect(tc['required']).to.include('direction');
    expect(xdp['properties']['priority']).to.include({ minimum: 0, maximum: 1000 });
    expect(xdp['properties']['proceedon']['maxItems']).to.equal(6);
    expect(tc['properties']['proceedon']['maxItems']).to.equal(11);
    expect(xdp['properties']['proceedon']['items']['enum']).to.include('dispatcher_return');
    expect(xdp['properties']['interfaceselector']).to.include({
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
    });
    expect(xdp['properties']['bytecode']['properties']['image']['required']).to.deep.equal(['url']);
  });
});

describe('validateAgainst', () => {
  it('prefixes field paths and uses the given code', () => {
    const schema = Type.Object(
      { port: Type.Integer({ maximum: 10 }) },
      { additionalProperties: false },
    );

    const errors = validateAgainst(
      schema,
      { port: 11, prot: 1 },
      {
        file: 'x.yaml',
        documentIndex: 3,
        pathPrefix: 'spec.listener',
        code: 'BPFD_E_TEST',
      },
    );

    expect(errors.map((e) => [e.fieldPath, e.documentIndex, e.code])).to.deep.equal([
      ['spec.listener.prot', 3, 'BPFD_E_TEST'],
      ['spec.listener.port', 3, 'BPFD_E_TEST'],
    ]);
  });

  it('summarises a flood of problems instead of listing them all', () => {
    const schema = Type.Array(Type.String());

    const errors = validateAgainst(schema, Array(100).fill(1), { file: 'x.yaml' });

    expect(errors).to.have.length(26);
    expect(errors[25]!.message).to.contain('75 more problems not shown');
  });

  it('accepts a label selector that the reconciler can match', () => {
    const selector: LabelSelector = { matchLabels: { zone: 'a' } };
    const forMatcher: LabelSelectorLike = selector;

    expect(validateAgainst(LabelSelectorSchema, forMatcher, { file: 'x.yaml' })).to.deep.equal([]);
  });
});
