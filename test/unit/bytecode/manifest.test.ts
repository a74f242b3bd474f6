import { expect } from 'chai';

import {
  bytecodeLayer,
  MEDIA_TYPE,
  parseConfigLabels,
  parseManifest,
  selectPlatform,
  type Descriptor,
} from '../../../src/bytecode/manifest.js';

const IMAGE = 'registry.test/bytecode/xdp:v1';
const digest = (char: string) => `sha256:${char.repeat(64)}`;
const json = (document: object) => Buffer.from(JSON.stringify(document));

function entry(arch: string, char: string, os = 'linux'): Descriptor {
  const platform = { architecture: arch, os };
  return { mediaType: MEDIA_TYPE.ociManifest, digest: digest(char), size: 10, platform };
}

describe('parseManifest', () => {
  it('reads a Docker v2 image manifest', () => {
    const manifest = parseManifest(
      IMAGE,
      json({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.dockerManifest,
        config: { mediaType: MEDIA_TYPE.dockerConfig, digest: digest('c'), size: 5 },
        layers: [{ mediaType: MEDIA_TYPE.dockerLayerGzip, digest: digest('a'), size: 9 }],
      }),
    );
    expect(manifest.kind).to.equal('image');
    if (manifest.kind === 'image') expect(manifest.config.digest).to.equal(digest('c'));
  });

  it('takes the media type from Content-Type when the document has none', () => {
    const document = { schemaVersion: 2, manifests: [entry('amd64', 'a')] };
    const manifest = parseManifest(
      IMAGE,
      json(document),
      `${MEDIA_TYPE.dockerManifestList}; charset=utf-8`,
    );
    expect(manifest).to.include({ kind: 'index', mediaType: MEDIA_TYPE.dockerManifestList });
  });

  it('refuses Docker schema 1 with advice', () => {
    expect(() => parseManifest(IMAGE, json({ schemaVersion: 1, fsLayers: [] }))).to.throw(
      'schema 1',
    );
  });

  it('refuses a descriptor without a valid digest', () => {
    const document = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: MEDIA_TYPE.ociConfig, digest: 'sha256:zz', size: 1 },
      layers: [],
    };
    expect(() => parseManifest(IMAGE, json(document))).to.throw('config has no valid digest');
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseManifest(IMAGE, Buffer.from('<html>')))
      .to.throw('not valid JSON')
      .with.property('code', 'BPFD_E_IMAGE_FORMAT');
  });
});

describe('selectPlatform', () => {
  it('picks the linux entry of the node architecture', () => {
    const manifests = [entry('arm64', 'a'), entry('amd64', 'b', 'windows'), entry('amd64', 'c')];
    expect(selectPlatform(IMAGE, manifests, 'amd64').digest).to.equal(digest('c'));
  });

  it('lists the platforms on offer when none fits', () => {
    const manifests = [entry('arm64', 'a'), entry('s390x', 'b')];
    expect(() => selectPlatform(IMAGE, manifests, 'amd64')).to.throw(
      'no manifest for linux/amd64; platforms in the index: linux/arm64, linux/s390x',
    );
  });
});

describe('bytecodeLayer', () => {
  const config = { mediaType: MEDIA_TYPE.ociConfig, digest: digest('c'), size: 1 };
  const layer = (mediaType: string): Descriptor => ({ mediaType, digest: digest('d'), size: 1 });

  it('accepts one gzipped or plain tar layer', () => {
    for (const mediaType of [
      MEDIA_TYPE.ociLayerGzip,
      MEDIA_TYPE.dockerLayerGzip,
      MEDIA_TYPE.ociLayer,
    ]) {
      const manifest = {
        kind: 'image' as const,
        mediaType: '',
        config,
        layers: [layer(mediaType)],
      };
      expect(bytecodeLayer(IMAGE, manifest).mediaType).to.equal(mediaType);
    }
  });

  it('refuses two layers and foreign layer types', () => {
    const two = {
      kind: 'image' as const,
      mediaType: '',
      config,
      layers: [layer(MEDIA_TYPE.ociLayer), layer(MEDIA_TYPE.ociLayer)],
    };
    expect(() => bytecodeLayer(IMAGE, two)).to.throw('has 2 layers');
    const zstd = {
      kind: 'image' as const,
      mediaType: '',
      config,
      layers: [layer('application/vnd.oci.image.layer.v1.tar+zstd')],
    };
    expect(() => bytecodeLayer(IMAGE, zstd)).to.throw('expected a tar or gzipped tar layer');
  });
});

describe('parseConfigLabels', () => {
  it('reads the io.ebpf labels', () => {
    const labels = {
      'io.ebpf.program_type': 'xdp',
      'io.ebpf.filename': 'xdp_pass.o',
      'io.ebpf.program_name': 'pass',
      'io.ebpf.section_name': 'pass',
      'org.opencontainers.image.source': 'elsewhere',
    };
    expect(parseConfigLabels(IMAGE, json({ config: { Labels: labels } }))).to.deep.equal({
      programType: 'xdp',
      filename: 'xdp_pass.o',
      programName: 'pass',
      sectionName: 'pass',
    });
  });

  it('gives no labels for a plain image config', () => {
    expect(parseConfigLabels(IMAGE, json({}))).to.deep.equal({});
    expect(parseConfigLabels(IMAGE, json({ config: { Labels: null } }))).to.deep.equal({});
  });
});
