import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { ImageCache, type ObjectRecord } from '../../../src/bytecode/cache.js';
import { digestOf } from '../../../src/bytecode/digest.js';
import { fakeBpfObject, useTempDir } from './helpers.js';

const neverIndex = () => false;

describe('ImageCache', () => {
  const dir = useTempDir('bpfd-cache-');
  let cache: ImageCache;
  beforeEach(async () => {
    cache = new ImageCache(path.join(dir(), 'images'));
    await cache.prepare();
  });

  async function storeObject(marker: string): Promise<ObjectRecord> {
    const object = fakeBpfObject(marker);
    const manifest = Buffer.from(`manifest ${marker}`);
    const config = Buffer.from(`config ${marker}`);
    await cache.writeBlob(digestOf(manifest), manifest);
    await cache.writeBlob(digestOf(config), config);
    const work = await cache.makeWorkFolder();
    fs.writeFileSync(path.join(work, 'prog.o'), object);
    const record: ObjectRecord = {
      manifestDigest: digestOf(manifest),
      configDigest: digestOf(config),
      layerDigest: digestOf(Buffer.from('layer')),
      objectFile: 'prog.o',
      objectDigest: digestOf(object),
      objectSize: object.length,
      labels: { programType: 'xdp' },
      pathInLayer: 'prog.o',
    };
    await cache.commitObject(work, record);
    return record;
  }

  it('returns a blob only while it matches its digest', async () => {
    const bytes = Buffer.from('{"schemaVersion":2}');
    const digest = digestOf(bytes);
    await cache.writeBlob(digest, bytes);
    expect(await cache.readBlob(digest)).to.deep.equal(bytes);

    const file = path.join(dir(), 'images/blobs/sha256', digest.slice(7));
    fs.writeFileSync(file, '{"schemaVersion":3}');
    expect(await cache.readBlob(digest)).to.equal(undefined);
    expect(fs.existsSync(file)).to.equal(false);
  });

  it('refuses to store content under another digest', async () => {
    const error = await cache
      .writeBlob(digestOf(Buffer.from('a')), Buffer.from('b'))
      .catch((e: Error) => e);
    expect((error as Error).message).to.include('wrong digest');
  });

  it('hands out a committed object and drops it once the file is altered', async () => {
    const record = await storeObject('one');
    const cached = await cache.readObject(record.manifestDigest);
    expect(cached?.objectPath).to.equal(
      path.join(dir(), 'images/objects/sha256', record.manifestDigest.slice(7), 'prog.o'),
    );

    fs.appendFileSync(cached!.objectPath, 'tampered');
    expect(await cache.readObject(record.manifestDigest)).to.equal(undefined);
  });

  it('remembers the digest a tag pointed to', async () => {
    const digest = digestOf(Buffer.from('x'));
    await cache.writeTag('127.0.0.1:5000/a:v1', digest);
    expect(await cache.readTag('127.0.0.1:5000/a:v1')).to.equal(digest);
    expect(await cache.readTag('127.0.0.1:5000/a:v2')).to.equal(undefined);
  });

  it('collects objects, blobs and tags that nothing in use needs', async () => {
    const kept = await storeObject('kept');
    const dropped = await storeObject('dropped');
    await cache.writeTag('r/a:kept', kept.manifestDigest);
    await cache.writeTag('r/a:dropped', dropped.manifestDigest);

    const removed = await cache.collectGarbage(new Set([kept.manifestDigest]), neverIndex);
    expect(removed).to.deep.equal([dropped.manifestDigest]);
    expect(await cache.readObject(kept.manifestDigest)).not.to.equal(undefined);
    expect(await cache.readBlob(kept.configDigest)).not.to.equal(undefined);
    expect(await cache.readBlob(dropped.configDigest)).to.equal(undefined);
    expect(await cache.readTag('r/a:kept')).to.equal(kept.manifestDigest);
    expect(await cache.readTag('r/a:dropped')).to.equal(undefined);
  });

  it('keeps an index blob that lists a manifest in use', async () => {
    const kept = await storeObject('kept');
    const index = Buffer.from(`index of ${kept.manifestDigest}`);
    await cache.writeBlob(digestOf(index), index);
    const isIndexOf = (bytes: Buffer, manifests: Set<string>) =>
      [...manifests].some((digest) => bytes.toString().includes(digest));
    await cache.collectGarbage(new Set([kept.manifestDigest]), isIndexOf);
    expect(await cache.readBlob(digestOf(index))).to.deep.equal(index);
  });

  it('names objects after their layer file only when the name is plain', () => {
    expect(ImageCache.objectFileName('bpf/xdp_pass.o')).to.equal('xdp_pass.o');
    expect(ImageCache.objectFileName('-rf.o')).to.equal('object.o');
    expect(ImageCache.objectFileName('record.json')).to.equal('object.o');
  });
});
