import { expect } from 'chai';

import { parseManifestText, type TcProgram, type XdpProgram } from '../../../src/api/index.js';
import { ManifestError } from '../../../src/errors.js';
import {
  BPFPROGRAM_SAMPLE,
  errorAt,
  errorLines,
  parseOne,
  TC_SAMPLE,
  TRACEPOINT_SAMPLE,
  withLine,
  XDP_SAMPLE,
} from './samples.js';

describe('XdpProgram', () => {
  it("accepts bpfd's sample and returns it as the object", () => {
    const document = parseOne(XDP_SAMPLE);

    expect(errorLines(document)).to.deep.equal([]);
    expect(document.kind).to.equal('XdpProgram');
    expect(document.name).to.equal('xdp-pass-all-nodes');
    const object = document.object as XdpProgram;
    expect(object.spec.interfaceselector).to.deep.equal({ primarynodeinterface: true });
    expect(object.spec.bytecode.image?.url).to.equal('quay.io/bpfd-bytecode/xdp_pass:latest');
  });

  it('accepts every optional field in use', () => {
    const text = `apiVersion: bpfd.io/v1alpha1
kind: XdpProgram
metadata:
  name: go-counter-example
  annotations: {owner: netops}
spec:
  sectionname: stats
  nodeselector:
    matchLabels: {deploy-ebpf: "true"}
    matchExpressions:
      - {key: zone, operator: In, values: [a, b]}
      - {key: legacy, operator: DoesNotExist}
  interfaceselector: {interface: eth0}
  priority: 1000
  proceedon: [pass, dispatcher_return, drop]
  globaldata:
    threshold: AQAAAA==
  bytecode:
    image:
      url: quay.io/bpfd-bytecode/go-xdp-counter:latest
      imagepullpolicy: Always
      imagepullsecret: {name: regcred, namespace: default}
`;
    const document = parseOne(text);

    expect(errorLines(document)).to.deep.equal([]);
    const object = document.object as XdpProgram;
    expect(object.spec.proceedon).to.deep.equal(['pass', 'dispatcher_return', 'drop']);
    expect(object.spec.globaldata).to.deep.equal({ threshold: 'AQAAAA==' });
  });

  it('accepts the output of kubectl get -o yaml, status and server fields included', () => {
    const text = withLine(
      XDP_SAMPLE,
      'name: xdp-pass-all-nodes',
      `name: xdp-pass-all-nodes
uid: 0b6b1ab5-5f4c-4bd6-9c3f-2b5a0f1f7a11
resourceVersion: "1234"
generation: 2
creationTimestamp: "2023-06-01T10:00:00Z"
finalizers: [bpfd.io.operator/finalizer]
annotations:
  kubectl.kubernetes.io/last-applied-configuration: "{}"
managedFields:
  - apiVersion: bpfd.io/v1alpha1
    fieldsType: FieldsV1
    fieldsV1: {f:spec: {f:priority: {}}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2023-06-01T10:00:00Z"`,
    );
    const withStatus = `${text}status:
  conditions:
    - type: ReconcileSuccess
      status: "True"
      reason: ReconcileSuccess
      message: ok
      lastTransitionTime: "2023-06-01T10:00:00Z"
`;

    const document = parseOne(withStatus);

    expect(errorLines(document)).to.deep.equal([]);
    expect(document.object?.metadata.generation).to.equal(2);
  });

  it('rejects a field written in another case, with a "did you mean"', () => {
    const text = withLine(XDP_SAMPLE, 'interfaceselector:', 'interfaceSelector:');

    const document = parseOne(text, 'edge/xdp.yaml');

    const error = errorAt(document, 'spec.interfaceSelector');
    expect(error).to.be.instanceOf(ManifestError);
    expect(error.code).to.equal('BPFD_E_MANIFEST');
    expect(error.file).to.equal('edge/xdp.yaml');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('unknown field; did you mean "interfaceselector"?');
    // The misspelling is one problem, not also "interfaceselector is missing".
    expect(document.errors).to.have.length(1);
    expect(document.object).to.equal(undefined);
  });

  it('rejects a slightly misspelt field, with a "did you mean"', () => {
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', 'prority: 0'));

    expect(errorAt(document, 'spec.prority').message).to.contain('did you mean "priority"?');
  });

  it('rejects an unknown field with no near match, listing the allowed ones', () => {
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', 'priority: 0\nturbo: true'));

    const error = errorAt(document, 'spec.turbo');
    expect(error.message).to.contain('unknown field; allowed fields here: sectionname');
  });

  it('rejects a misspelt top-level field', () => {
    const document = parseOne(XDP_SAMPLE.replace('metadata:', 'metdata:'));

    expect(errorAt(document, 'metdata').message).to.contain('did you mean "metadata"?');
  });

  it('rejects both interface and primarynodeinterface', () => {
    const text = withLine(
      XDP_SAMPLE,
      'primarynodeinterface:',
      'primarynodeinterface: true\ninterface: eth0',
    );

    const document = parseOne(text);

    const error = errorAt(document, 'spec.interfaceselector');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain(
      'set exactly one of "interface: <name>" or "primarynodeinterface: true"',
    );
  });

  it('rejects an interfaceselector with neither key', () => {
    const text = withLine(XDP_SAMPLE, 'interfaceselector:', 'interfaceselector: {}').replace(
      /\n\s+primarynodeinterface: true/,
      '',
    );

    const document = parseOne(text);

    expect(errorAt(document, 'spec.interfaceselector').message).to.contain('set exactly one of');
  });

  it('rejects primarynodeinterface: false', () => {
    const text = withLine(XDP_SAMPLE, 'primarynodeinterface:', 'primarynodeinterface: false');

    const document = parseOne(text);

    const error = errorAt(document, 'spec.interfaceselector.primarynodeinterface');
    expect(error.file).to.equal('programs.yaml');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('only true is accepted');
  });

  it('rejects an interface name the kernel would refuse', () => {
    const text = withLine(XDP_SAMPLE, 'primarynodeinterface:', 'interface: ../eth0');

    const document = parseOne(text);

    expect(errorAt(document, 'spec.interfaceselector.interface').message).to.contain(
      'Linux interface name',
    );
  });

  it('rejects priority -1', () => {
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', 'priority: -1'));

    const error = errorAt(document, 'spec.priority');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('must be at least 0, got -1');
  });

  it('rejects priority above 1000', () => {
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', 'priority: 1001'));

    expect(errorAt(document, 'spec.priority').message).to.contain('must be at most 1000, got 1001');
  });

  it('rejects a priority of the wrong type', () => {
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', 'priority: "5"'));

    const error = errorAt(document, 'spec.priority');
    expect(error.message).to.contain('must be a whole number; got the string "5"');
  });

  it('rejects a missing nodeselector', () => {
    const text = XDP_SAMPLE.replace('  nodeselector: {}\n', '');

    const document = parseOne(text, 'missing.yaml');

    const error = errorAt(document, 'spec.nodeselector');
    expect(error.file).to.equal('missing.yaml');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('required field is missing');
  });

  it('rejects a missing priority and a missing interfaceselector', () => {
    const text = XDP_SAMPLE.replace('  priority: 0\n', '').replace(
      '  interfaceselector:\n    primarynodeinterface: true\n',
      '',
    );

    const document = parseOne(text);

    expect(errorAt(document, 'spec.priority').message).to.contain('required field is missing');
    expect(errorAt(document, 'spec.interfaceselector').message).to.contain('missing');
  });

  it('rejects a proceedon value that does not exist', () => {
    const text = withLine(XDP_SAMPLE, 'priority:', 'priority: 0\nproceedon: [pass, Drop]');

    const document = parseOne(text);

    const error = errorAt(document, 'spec.proceedon[1]');
    expect(error.message).to.contain('must be one of aborted, drop, pass, tx, redirect');
    expect(error.message).to.contain('did you mean "drop"?');
  });

  it('rejects more than 6 proceedon values', () => {
    const seven = 'proceedon: [aborted, drop, pass, tx, redirect, dispatcher_return, pass]';
    const document = parseOne(withLine(XDP_SAMPLE, 'priority:', `priority: 0\n${seven}`));

    expect(errorAt(document, 'spec.proceedon').message).to.contain(
      'has 7 items; at most 6 are allowed',
    );
  });

  it('rejects globaldata that is not base64', () => {
    const text = withLine(XDP_SAMPLE, 'priority:', 'priority: 0\nglobaldata:\n  threshold: "AQ=A"');

    const document = parseOne(text);

    const error = errorAt(document, 'spec.globaldata.threshold');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('must be base64');
  });

  it('rejects bytecode with both path and image', () => {
    const text = withLine(XDP_SAMPLE, 'image:', 'path: /opt/xdp.o\nimage:');

    const document = parseOne(text);

    expect(errorAt(document, 'spec.bytecode').message).to.contain(
      'set exactly one of "path" or "image"',
    );
  });

  it('rejects bytecode with neither path nor image', () => {
    const text = XDP_SAMPLE.replace(/bytecode:\n\s+image:\n\s+url: .*\n/, 'bytecode: {}\n');

    const document = parseOne(text);

    expect(errorAt(document, 'spec.bytecode').message).to.contain('set exactly one of');
  });

  it('rejects an image pull secret without namespace and an unknown pull policy', () => {
    const text = withLine(
      XDP_SAMPLE,
      'url:',
      'url: quay.io/x/y:1\nimagepullpolicy: Sometimes\nimagepullsecret: {name: regcred}',
    );

    const document = parseOne(text);

    expect(errorAt(document, 'spec.bytecode.image.imagepullsecret.namespace').message).to.contain(
      'required field is missing',
    );
    expect(errorAt(document, 'spec.bytecode.image.imagepullpolicy').message).to.contain(
      'must be one of Always, IfNotPresent, Never',
    );
  });

  it('rejects an image pull secret name that could leave the secrets dir', () => {
    const text = withLine(
      XDP_SAMPLE,
      'url:',
      'url: quay.io/x/y:1\nimagepullsecret: {name: ../../shadow, namespace: default}',
    );

    const document = parseOne(text);

    expect(errorAt(document, 'spec.bytecode.image.imagepullsecret.name').message).to.contain(
      'Kubernetes secret name',
    );
  });

  it('rejects In without values and Exists with values in the nodeselector', () => {
    const selector = `nodeselector:
  matchExpressions:
    - {key: zone, operator: In}
    - {key: gpu, operator: Exists, values: ["yes"]}
    - {key: os, operator: Equals, values: [linux]}`;

    const document = parseOne(withLine(XDP_SAMPLE, 'nodeselector:', selector));

    const path = 'spec.nodeselector.matchExpressions';
    expect(errorAt(document, `${path}[0].values`).message).to.contain('needs at least one value');
    expect(errorAt(document, `${path}[1].values`).message).to.contain('takes no values');
    expect(errorAt(document, `${path}[2].operator`).message).to.contain(
      'must be one of In, NotIn, Exists, DoesNotExist',
    );
  });

  it('asks for quotes around a label value that YAML reads as a boolean', () => {
    const selector = 'nodeselector:\n  matchLabels: {deploy-ebpf: true}';

    const document = parseOne(withLine(XDP_SAMPLE, 'nodeselector:', selector));

    const error = errorAt(document, 'spec.nodeselector.matchLabels.deploy-ebpf');
    expect(error.message).to.contain('must be a string; got true (quote it: "true")');
  });

  it('rejects a name that is not a DNS-1123 subdomain', () => {
    const document = parseOne(XDP_SAMPLE.replace('name: xdp-pass-all-nodes', 'name: XDP_Pass'));

    const error = errorAt(document, 'metadata.name');
    expect(error.message).to.contain('DNS-1123 subdomain');
    expect(document.name).to.equal('XDP_Pass');
  });

  it('rejects another apiVersion', () => {
    const document = parseOne(XDP_SAMPLE.replace('bpfd.io/v1alpha1', 'bpfman.io/v1alpha1'));

    expect(errorAt(document, 'apiVersion').message).to.contain('must be "bpfd.io/v1alpha1"');
  });

  it('reports every problem of a document, one line each', () => {
    const text = withLine(XDP_SAMPLE, 'priority:', 'priority: 2000\nproceedon: [nope]')
      .replace('sectionname: pass', 'sectionName: pass')
      .replace('primarynodeinterface: true', 'primarynodeinterface: false');

    const document = parseOne(text);

    expect(document.errors.map((error) => error.fieldPath)).to.have.members([
      'spec.sectionName',
      'spec.interfaceselector.primarynodeinterface',
      'spec.priority',
      'spec.proceedon[0]',
    ]);
    for (const error of document.errors) expect(error.message).to.not.contain('\n');
  });
});

describe('TcProgram', () => {
  it("accepts bpfd's sample and lower-cases direction INGRESS", () => {
    const document = parseOne(TC_SAMPLE);

    expect(errorLines(document)).to.deep.equal([]);
    const object = document.object as TcProgram;
    expect(object.spec.direction).to.equal('ingress');
    expect(object.spec.interfaceselector).to.deep.equal({ interface: 'eth0' });
  });

  it('accepts Egress in any case', () => {
    const document = parseOne(withLine(TC_SAMPLE, 'direction:', 'direction: Egress'));

    expect((document.object as TcProgram).spec.direction).to.equal('egress');
  });

  it('rejects a direction other than ingress or egress', () => {
    const document = parseOne(withLine(TC_SAMPLE, 'direction:', 'direction: both'), 'tc.yaml');

    const error = errorAt(document, 'spec.direction');
    expect(error.file).to.equal('tc.yaml');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('must be "ingress" or "egress"; got the string "both"');
  });

  it('rejects a missing direction', () => {
    const document = parseOne(TC_SAMPLE.replace('  direction: INGRESS\n', ''));

    expect(errorAt(document, 'spec.direction').message).to.contain('required field is missing');
  });

  it('accepts all 11 TC proceedon values', () => {
    const all =
      'proceedon: [unspec, ok, reclassify, shot, pipe, stolen, queued, repeat, redirect, trap, ' +
      'dispatcher_return]';

    const document = parseOne(withLine(TC_SAMPLE, 'priority:', `priority: 0\n${all}`));

    expect(errorLines(document)).to.deep.equal([]);
  });

  it('rejects an XDP-only proceedon value and more than 11 values', () => {
    const twelve = `proceedon: [${Array(12).fill('ok').join(', ')}]`;
    const wrongKind = parseOne(withLine(TC_SAMPLE, 'priority:', 'priority: 0\nproceedon: [drop]'));
    const tooMany = parseOne(withLine(TC_SAMPLE, 'priority:', `priority: 0\n${twelve}`));

    expect(errorAt(wrongKind, 'spec.proceedon[0]').message).to.contain('must be one of unspec');
    expect(errorAt(tooMany, 'spec.proceedon').message).to.contain('at most 11');
  });
});

describe('TracepointProgram', () => {
  it("accepts bpfd's sample", () => {
    const document = parseOne(TRACEPOINT_SAMPLE);

    expect(errorLines(document)).to.deep.equal([]);
    expect(document.object?.kind).to.equal('TracepointProgram');
  });

  it('rejects a tracepoint name without a group', () => {
    const text = withLine(TRACEPOINT_SAMPLE, 'name: syscalls', 'name: sys_enter_openat');

    const document = parseOne(text);

    expect(errorAt(document, 'spec.name').message).to.contain('must be "group/event"');
  });

  it('rejects a tracepoint name that climbs out of tracefs', () => {
    const text = withLine(TRACEPOINT_SAMPLE, 'name: syscalls', 'name: ../sys_enter_openat');

    expect(errorAt(parseOne(text), 'spec.name').message).to.contain('group/event');
  });

  it('rejects a missing tracepoint name', () => {
    const document = parseOne(TRACEPOINT_SAMPLE.replace('  name: syscalls/sys_enter_openat\n', ''));

    expect(errorAt(document, 'spec.name').message).to.contain('required field is missing');
  });

  it('rejects fields that only network programs have', () => {
    const text = withLine(
      TRACEPOINT_SAMPLE,
      'name: syscalls',
      'name: syscalls/sys_enter_openat\npriority: 5',
    );

    expect(errorAt(parseOne(text), 'spec.priority').message).to.contain('unknown field');
  });
});

describe('BpfProgram', () => {
  it('validates but gives no object to reconcile', () => {
    const document = parseOne(BPFPROGRAM_SAMPLE);

    expect(errorLines(document)).to.deep.equal([]);
    expect(document.kind).to.equal('BpfProgram');
    expect(document.name).to.equal('xdp-pass-all-nodes-node1');
    expect(document.object).to.equal(undefined);
  });

  it('rejects a BpfProgram without programs', () => {
    const text = BPFPROGRAM_SAMPLE.replace(/ {2}programs:\n.*\n.*\n/, '');

    expect(errorAt(parseOne(text), 'spec.programs').message).to.contain('missing');
  });
});

describe('manifest kinds', () => {
  it('rejects an unknown kind with a "did you mean"', () => {
    const document = parseOne(XDP_SAMPLE.replace('kind: XdpProgram', 'kind: XDPProgram'));

    const error = errorAt(document, 'kind');
    expect(error.documentIndex).to.equal(0);
    expect(error.message).to.contain('unknown kind "XDPProgram"; did you mean "XdpProgram"?');
    expect(document.kind).to.equal('XDPProgram');
    expect(document.name).to.equal('xdp-pass-all-nodes');
  });

  it('rejects a document without kind, naming the kinds it could be', () => {
    const document = parseOne(XDP_SAMPLE.replace('kind: XdpProgram\n', ''));

    expect(errorAt(document, 'kind').message).to.contain(
      'expected one of XdpProgram, TcProgram, TracepointProgram, BpfProgram',
    );
  });

  it('keeps documents of one file independent', () => {
    const bad = withLine(TC_SAMPLE, 'direction:', 'direction: up');
    const parsed = parseManifestText(
      'mixed.yaml',
      `${XDP_SAMPLE}---\n${bad}---\n${TRACEPOINT_SAMPLE}`,
    );

    expect(parsed.documents.map((d) => d.errors.length)).to.deep.equal([0, 1, 0]);
    expect(parsed.documents[1]!.errors[0]!.documentIndex).to.equal(1);
    expect(parsed.documents.map((d) => d.object !== undefined)).to.deep.equal([true, false, true]);
  });
});
