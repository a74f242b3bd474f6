import { expect } from 'chai';

import {
  formatImageReference,
  normalizeRegistryHost,
  parseImageReference,
  registryEndpoint,
} from '../../../src/bytecode/reference.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference', () => {
  it('reads registry, repository and tag of a quay.io reference', () => {
    expect(parseImageReference('quay.io/bpfd-bytecode/xdp_pass:latest')).to.deep.equal({
      registry: 'quay.io',
      repository: 'bpfd-bytecode/xdp_pass',
      tag: 'latest',
    });
  });

  it('reads a registry with a port and a digest without a tag', () => {
    expect(parseImageReference(`localhost:5000/x@${DIGEST}`)).to.deep.equal({
      registry: 'localhost:5000',
      repository: 'x',
      digest: DIGEST,
    });
  });

  it('keeps both tag and digest when both are given', () => {
    const reference = parseImageReference(`127.0.0.1:5000/a/b:v1@${DIGEST}`);
    expect(reference).to.deep.equal({
      registry: '127.0.0.1:5000',
      repository: 'a/b',
      tag: 'v1',
      digest: DIGEST,
    });
  });

  it('fills in Docker Hub, library/ and latest for a bare name', () => {
    expect(parseImageReference('xdp_pass')).to.deep.equal({
      registry: 'docker.io',
      repository: 'library/xdp_pass',
      tag: 'latest',
    });
  });

  it('treats a first component without a dot or port as a Docker Hub user', () => {
    expect(parseImageReference('bpfd/xdp:v2')).to.deep.equal({
      registry: 'docker.io',
      repository: 'bpfd/xdp',
      tag: 'v2',
    });
  });

  it('normalises index.docker.io to docker.io', () => {
    expect(parseImageReference('index.docker.io/bpfd/xdp').registry).to.equal('docker.io');
  });

  for (const [url, part] of [
    ['quay.io/Bpfd/xdp:v1', 'repository part'],
    ['quay.io/bpfd/xdp:-bad', 'tag'],
    ['quay.io/bpfd/xdp@sha256:abc', 'digest'],
    ['https://quay.io/bpfd/xdp', 'no URL scheme'],
    ['', 'empty'],
    ['quay.io/a@b@c', 'more than one'],
  ]) {
    it(`refuses ${JSON.stringify(url)} with a message about "${part}"`, () => {
      expect(() => parseImageReference(url))
        .to.throw(part)
        .with.property('code', 'BPFD_E_IMAGE_REFERENCE');
    });
  }
});

describe('formatImageReference', () => {
  it('writes the canonical form back', () => {
    const text = formatImageReference(parseImageReference('xdp'));
    expect(text).to.equal('docker.io/library/xdp:latest');
  });
});

describe('registry host names', () => {
  it('sends Docker Hub API calls to its API host and others to themselves', () => {
    expect(registryEndpoint('docker.io')).to.equal('registry-1.docker.io');
    expect(registryEndpoint('127.0.0.1:5000')).to.equal('127.0.0.1:5000');
  });

  it('compares Docker config keys as host[:port]', () => {
    expect(normalizeRegistryHost('https://index.docker.io/v1/')).to.equal('docker.io');
    expect(normalizeRegistryHost('HTTPS://Quay.io/')).to.equal('quay.io');
    expect(normalizeRegistryHost('localhost:5000')).to.equal('localhost:5000');
  });
});
