/**
 * Bytecode images against a real registry (Debian's docker-registry on 127.0.0.1). Every
 * reference names the loopback registry or proxy explicitly: nothing here can reach a default
 * registry.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';

import { expect } from 'chai';
import yaml from 'js-yaml';

import {
  buildImageLayout,
  imageCommand,
  ImageStore,
  pushImageLayout,
  type ImageStoreOptions,
  type PullPolicy,
} from '../../src/bytecode/index.js';
import { writeImageLayout, type LayoutImage } from '../../src/bytecode/layout.js';
import { writeTar } from '../../src/bytecode/tar.js';
import { goArchitecture } from '../../src/bytecode/types.js';
import { CountingProxy, TestRegistry, TokenService } from '../helpers/registry.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const XDP_OBJECT = path.join(REPO, 'dist/bpf/xdp_counter.o');
const TC_OBJECT = path.join(REPO, 'dist/bpf/tc_counter.o');
const USER = 'bytecode-robot';
const PASSWORD = 'correct-horse-battery-staple';

let sequence = 0;
const uniqueRepository = () => `bpfd-test/image${process.pid}x${++sequence}`;

function requireObjects(): void {
  for (const file of [XDP_OBJECT, TC_OBJECT]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing; run npm run build:bpf first`);
  }
}

/** Temp dirs of one test: state, secrets, layouts. */
class Scratch {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-bytecode-it-'));
  readonly stateDir = path.join(this.dir, 'state');
  readonly secretsDir = path.join(this.dir, 'secrets');
  private layouts = 0;

  layoutDir(): string {
    this.layouts += 1;
    return path.join(this.dir, `layout${this.layouts}`);
  }

  writeSecret(namespace: string, file: string, text: string): void {
    fs.mkdirSync(path.join(this.secretsDir, namespace), { recursive: true });
    fs.writeFileSync(path.join(this.secretsDir, namespace, file), text, { mode: 0o600 });
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function dockerConfig(host: string, password = PASSWORD): string {
  const auth = Buffer.from(`${USER}:${password}`).toString('base64');
  return JSON.stringify({ auths: { [host]: { auth } } });
}

function newStore(scratch: Scratch, options: Partial<ImageStoreOptions> = {}) {
  const delays: number[] = [];
  const store = new ImageStore({
    stateDir: scratch.stateDir,
    secretsDir: scratch.secretsDir,
    insecureRegistries: [],
    caFiles: {},
    retry: { attempts: 3, baseDelayMs: 10, sleep: async (ms) => void delays.push(ms) },
    ...options,
  });
  return { store, delays };
}

async function pushObject(
  scratch: Scratch,
  reference: string,
  objectPath = XDP_OBJECT,
  push: Parameters<typeof pushImageLayout>[2] = { insecure: true },
): Promise<string> {
  const outDir = scratch.layoutDir();
  await buildImageLayout({ objectPath, outDir, programType: 'xdp', sectionName: 'stats' });
  return (await pushImageLayout(outDir, reference, push)).manifestDigest;
}

async function pushImages(scratch: Scratch, reference: string, images: LayoutImage[]) {
  const outDir = scratch.layoutDir();
  await writeImageLayout(outDir, images);
  return (await pushImageLayout(outDir, reference, { insecure: true })).manifestDigest;
}

function layerWith(entries: Array<{ path: string; file: string }>): Buffer {
  return writeTar(
    entries.map((entry) => ({ path: entry.path, content: fs.readFileSync(entry.file) })),
  );
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected the image resolution to fail');
}

describe('ImageStore with a real registry', function () {
  this.timeout(120_000);
  before(requireObjects);

  describe('anonymous registry behind a counting proxy', () => {
    let registry: TestRegistry;
    let proxy: CountingProxy;
    let scratch: Scratch;

    before(async () => {
      registry = await TestRegistry.start();
      proxy = await CountingProxy.start(registry.port);
    });
    after(async () => {
      await proxy?.stop();
      await registry?.stop();
    });
    beforeEach(() => {
      scratch = new Scratch();
      proxy.reset();
      proxy.redirectBlobs = false;
    });
    afterEach(() => scratch.remove());

    const store = (options: Partial<ImageStoreOptions> = {}) =>
      newStore(scratch, { insecureRegistries: [proxy.host, registry.host], ...options }).store;
    const resolve = (s: ImageStore, url: string, pullPolicy?: PullPolicy) =>
      s.resolve({ url, pullPolicy });

    it('pulls by tag and hands out the object, its digest and labels', async () => {
      const repository = uniqueRepository();
      const digest = await pushObject(scratch, registry.reference(`${repository}:v1`));

      const image = await resolve(store(), proxy.reference(`${repository}:v1`));
      expect(image.manifestDigest).to.equal(digest);
      expect(image.reference).to.equal(`${proxy.host}/${repository}:v1`);
      expect(image.labels).to.deep.equal({
        programType: 'xdp',
        filename: 'xdp_counter.o',
        sectionName: 'stats',
      });
      expect(image.objectPath.startsWith(path.join(scratch.stateDir, 'images'))).to.equal(true);
      expect(fs.readFileSync(image.objectPath)).to.deep.equal(fs.readFileSync(XDP_OBJECT));
    });

    it('pulls by digest once and never asks the registry again, even under Always', async () => {
      const repository = uniqueRepository();
      const digest = await pushObject(scratch, registry.reference(`${repository}:v1`));
      const url = proxy.reference(`${repository}@${digest}`);
      const images = store();

      const first = await resolve(images, url, 'Always');
      expect(first.manifestDigest).to.equal(digest);
      expect(proxy.count('/blobs/')).to.equal(2);
      proxy.reset();

      const second = await resolve(images, url, 'Always');
      expect(second.objectPath).to.equal(first.objectPath);
      expect(proxy.requests).to.deep.equal([]);
    });

    it('IfNotPresent pulls once and then answers from the cache', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      const images = store();
      await resolve(images, proxy.reference(`${repository}:v1`), 'IfNotPresent');
      expect(proxy.count('/manifests/')).to.equal(1);
      proxy.reset();

      await resolve(images, proxy.reference(`${repository}:v1`));
      expect(proxy.requests).to.deep.equal([]);
    });

    it('Always asks for the tag on every resolve but downloads nothing unchanged', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      const images = store();
      await resolve(images, proxy.reference(`${repository}:v1`), 'Always');
      proxy.reset();

      await resolve(images, proxy.reference(`${repository}:v1`), 'Always');
      expect(proxy.requests.map((r) => r.method)).to.deep.equal(['HEAD']);
      expect(proxy.count('/manifests/v1')).to.equal(1);
      expect(proxy.count('/blobs/')).to.equal(0);
    });

    it('Never fails without a request when nothing is cached, then uses the cache', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      const images = store();

      const error = await rejection(resolve(images, proxy.reference(`${repository}:v1`), 'Never'));
      expect(error.code).to.equal('BPFD_E_IMAGE_NOT_PRESENT');
      expect(proxy.requests).to.deep.equal([]);

      await resolve(images, proxy.reference(`${repository}:v1`));
      proxy.reset();
      const image = await resolve(images, proxy.reference(`${repository}:v1`), 'Never');
      expect(fs.existsSync(image.objectPath)).to.equal(true);
      expect(proxy.requests).to.deep.equal([]);
    });

    it('Always returns the new digest after the tag moved to new bytecode', async () => {
      const repository = uniqueRepository();
      const url = proxy.reference(`${repository}:stable`);
      const before = await pushObject(scratch, registry.reference(`${repository}:stable`));
      const images = store();
      expect((await resolve(images, url, 'Always')).manifestDigest).to.equal(before);

      const after = await pushObject(
        scratch,
        registry.reference(`${repository}:stable`),
        TC_OBJECT,
      );
      expect(after).not.to.equal(before);
      expect((await resolve(images, url, 'IfNotPresent')).manifestDigest).to.equal(before);

      const moved = await resolve(images, url, 'Always');
      expect(moved.manifestDigest).to.equal(after);
      expect(fs.readFileSync(moved.objectPath)).to.deep.equal(fs.readFileSync(TC_OBJECT));
      expect((await resolve(images, url, 'IfNotPresent')).manifestDigest).to.equal(after);
    });

    it('reports a missing tag and a missing repository as not found', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));

      const tag = await rejection(resolve(store(), proxy.reference(`${repository}:nope`)));
      expect(tag.code).to.equal('BPFD_E_IMAGE_NOT_FOUND');
      expect(tag.message).to.include('has no tag nope');

      const name = await rejection(resolve(store(), proxy.reference('bpfd-test/never-pushed:v1')));
      expect(name.code).to.equal('BPFD_E_IMAGE_NOT_FOUND');
    });

    it('refuses a layer blob that does not match its digest and caches nothing', async () => {
      const repository = uniqueRepository();
      // A layer of its own: the registry stores blobs once for all repositories.
      const notice = path.join(scratch.dir, 'NOTICE');
      fs.writeFileSync(notice, `unique to ${repository}`);
      const outDir = scratch.layoutDir();
      const layer = layerWith([
        { path: 'prog.o', file: XDP_OBJECT },
        { path: 'NOTICE', file: notice },
      ]);
      await writeImageLayout(outDir, [{ arch: goArchitecture(), labels: {}, layer }]);
      const manifest = JSON.parse(fs.readFileSync(path.join(outDir, 'index.json'), 'utf8'))
        .manifests[0].digest as string;
      const layerDigest = JSON.parse(
        fs.readFileSync(path.join(outDir, 'blobs/sha256', manifest.slice(7)), 'utf8'),
      ).layers[0].digest as string;
      await pushImageLayout(outDir, registry.reference(`${repository}:v1`), { insecure: true });

      const blob = registry.blobFile(layerDigest);
      const bytes = fs.readFileSync(blob);
      bytes[bytes.length - 20] ^= 0xff;
      fs.writeFileSync(blob, bytes);

      const images = store();
      const error = await rejection(resolve(images, proxy.reference(`${repository}:v1`)));
      expect(error.code).to.equal('BPFD_E_IMAGE_DIGEST');
      expect(error.message).to.include(`expected ${layerDigest}`);
      const cached = await rejection(resolve(images, proxy.reference(`${repository}:v1`), 'Never'));
      expect(cached.code).to.equal('BPFD_E_IMAGE_NOT_PRESENT');
    });

    it("picks this node's architecture from an image index", async () => {
      const repository = uniqueRepository();
      const labels = { 'io.ebpf.program_type': 'xdp' };
      const images: LayoutImage[] = [
        { arch: 'arm64', labels, layer: layerWith([{ path: 'prog.o', file: TC_OBJECT }]) },
        { arch: 'amd64', labels, layer: layerWith([{ path: 'prog.o', file: XDP_OBJECT }]) },
        { arch: 's390x', labels, layer: layerWith([{ path: 'prog.o', file: TC_OBJECT }]) },
      ];
      const index = await pushImages(scratch, registry.reference(`${repository}:multi`), images);

      const image = await resolve(store(), proxy.reference(`${repository}:multi`));
      expect(image.indexDigest).to.equal(index);
      expect(image.manifestDigest).not.to.equal(index);
      const expected = goArchitecture() === 'amd64' ? XDP_OBJECT : TC_OBJECT;
      expect(fs.readFileSync(image.objectPath)).to.deep.equal(fs.readFileSync(expected));

      const other = await rejection(
        resolve(store({ arch: 'riscv64' }), proxy.reference(`${repository}:multi`)),
      );
      expect(other.code).to.equal('BPFD_E_IMAGE_FORMAT');
      expect(other.message).to.include('linux/arm64, linux/amd64, linux/s390x');
    });

    it('follows a redirect of blob downloads to blob storage', async () => {
      const repository = uniqueRepository();
      const digest = await pushObject(scratch, registry.reference(`${repository}:v1`));
      proxy.redirectBlobs = true;

      const image = await resolve(store(), proxy.reference(`${repository}:v1`));
      expect(image.manifestDigest).to.equal(digest);
      expect(proxy.requests.filter((r) => r.status === 307)).to.have.length(2);
    });

    it('refuses plain HTTP to a redirect target that is not listed as insecure', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      proxy.redirectBlobs = true;

      const images = store({ insecureRegistries: [proxy.host] });
      const error = await rejection(resolve(images, proxy.reference(`${repository}:v1`)));
      expect(error.code).to.equal('BPFD_E_IMAGE_TLS');
      expect(error.message).to.include(`refusing plain HTTP to ${registry.host}`);
    });

    it('refuses a layer with a path that climbs out, writing nothing outside', async () => {
      const repository = uniqueRepository();
      const escape = `bpfd-escape-${process.pid}-${sequence}.o`;
      const layer = layerWith([
        { path: 'prog.o', file: XDP_OBJECT },
        { path: `../../../../../../../../tmp/${escape}`, file: XDP_OBJECT },
      ]);
      await pushImages(scratch, registry.reference(`${repository}:evil`), [
        { arch: goArchitecture(), labels: { 'io.ebpf.filename': 'prog.o' }, layer },
      ]);

      const error = await rejection(resolve(store(), proxy.reference(`${repository}:evil`)));
      expect(error.code).to.equal('BPFD_E_IMAGE_FORMAT');
      expect(error.message).to.include('outside the layer');
      expect(fs.existsSync(path.join('/tmp', escape))).to.equal(false);
      expect(fs.readdirSync(path.join(scratch.stateDir, 'images/objects'))).to.deep.equal([]);
    });

    it('uses a plain single-layer image without labels', async () => {
      const repository = uniqueRepository();
      const layer = layerWith([{ path: 'xdp_counter.o', file: XDP_OBJECT }]);
      const digest = await pushImages(scratch, registry.reference(`${repository}:plain`), [
        { arch: goArchitecture(), labels: {}, layer },
      ]);

      const image = await resolve(store(), proxy.reference(`${repository}:plain`));
      expect(image.manifestDigest).to.equal(digest);
      expect(image.labels).to.deep.equal({});
      expect(fs.readFileSync(image.objectPath)).to.deep.equal(fs.readFileSync(XDP_OBJECT));
    });

    it('refuses an image with two objects and no filename label', async () => {
      const repository = uniqueRepository();
      const layer = layerWith([
        { path: 'xdp_counter.o', file: XDP_OBJECT },
        { path: 'tc_counter.o', file: TC_OBJECT },
      ]);
      await pushImages(scratch, registry.reference(`${repository}:two`), [
        { arch: goArchitecture(), labels: { 'io.ebpf.program_type': 'xdp' }, layer },
      ]);

      const error = await rejection(resolve(store(), proxy.reference(`${repository}:two`)));
      expect(error.code).to.equal('BPFD_E_IMAGE_FORMAT');
      expect(error.message).to.include('several *.o files (xdp_counter.o, tc_counter.o)');
      expect(error.message).to.include('io.ebpf.filename');
    });

    it('pulls again when the cached object was altered on disk', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      const images = store();
      const first = await resolve(images, proxy.reference(`${repository}:v1`));
      fs.appendFileSync(first.objectPath, 'tampered');
      proxy.reset();

      const second = await resolve(images, proxy.reference(`${repository}:v1`));
      expect(fs.readFileSync(second.objectPath)).to.deep.equal(fs.readFileSync(XDP_OBJECT));
      expect(proxy.count('/blobs/')).to.be.greaterThan(0);
    });

    it('downloads once when the same image is resolved several times at once', async () => {
      const repository = uniqueRepository();
      await pushObject(scratch, registry.reference(`${repository}:v1`));
      const images = store();
      const url = proxy.reference(`${repository}:v1`);

      const results = await Promise.all([1, 2, 3].map(() => resolve(images, url)));
      expect(new Set(results.map((image) => image.objectPath)).size).to.equal(1);
      expect(proxy.count('/blobs/')).to.equal(2);
    });

    it('collects cached images that are no longer in use', async () => {
      const first = uniqueRepository();
      const second = uniqueRepository();
      await pushObject(scratch, registry.reference(`${first}:v1`));
      await pushObject(scratch, registry.reference(`${second}:v1`), TC_OBJECT);
      const images = store();
      const kept = await resolve(images, proxy.reference(`${first}:v1`));
      const dropped = await resolve(images, proxy.reference(`${second}:v1`));

      const removed = await images.collectGarbage(new Set([kept.manifestDigest]));
      expect(removed).to.deep.equal([dropped.manifestDigest]);
      expect(fs.existsSync(kept.objectPath)).to.equal(true);
      expect(fs.existsSync(dropped.objectPath)).to.equal(false);
      proxy.reset();
      expect((await resolve(images, proxy.reference(`${first}:v1`), 'Never')).objectPath).to.equal(
        kept.objectPath,
      );
      const gone = await rejection(resolve(images, proxy.reference(`${second}:v1`), 'Never'));
      expect(gone.code).to.equal('BPFD_E_IMAGE_NOT_PRESENT');
      expect(proxy.requests).to.deep.equal([]);
    });
  });

  describe('registry that goes away', () => {
    let registry: TestRegistry | undefined;
    let scratch: Scratch;
    beforeEach(async () => {
      scratch = new Scratch();
      registry = await TestRegistry.start();
    });
    afterEach(async () => {
      await registry?.stop();
      scratch.remove();
    });

    it('serves IfNotPresent from the cache and fails Always as unreachable', async () => {
      const url = registry!.reference('bpfd-test/offline:v1');
      const digest = await pushObject(scratch, url);
      const { store, delays } = newStore(scratch, { insecureRegistries: [registry!.host] });
      await store.resolve({ url });

      await registry!.stop();
      registry = undefined;

      const cached = await store.resolve({ url, pullPolicy: 'IfNotPresent' });
      expect(cached.manifestDigest).to.equal(digest);

      const error = await rejection(store.resolve({ url, pullPolicy: 'Always' }));
      expect(error.code).to.equal('BPFD_E_IMAGE_UNREACHABLE');
      expect(error.message).to.include('is unreachable').and.include('ECONNREFUSED');
      expect(delays).to.deep.equal([10, 20]);
    });
  });

  describe('registry that accepts connections and never answers', () => {
    let server: net.Server;
    const sockets: net.Socket[] = [];
    let scratch: Scratch;
    before(async () => {
      server = net.createServer((socket) => void sockets.push(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    beforeEach(() => (scratch = new Scratch()));
    afterEach(() => scratch.remove());

    it('gives up after the timeout with a clear unreachable error', async () => {
      const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const { store } = newStore(scratch, {
        insecureRegistries: [host],
        timeoutMs: 200,
        retry: { attempts: 2, baseDelayMs: 1, sleep: async () => undefined },
      });
      const error = await rejection(store.resolve({ url: `${host}/bpfd-test/stuck:v1` }));
      expect(error.code).to.equal('BPFD_E_IMAGE_UNREACHABLE');
      expect(error.message).to.include('no answer within 0.2 s');
      expect(sockets.length).to.equal(2);
    });
  });

  describe('registry with basic auth (htpasswd)', () => {
    let registry: TestRegistry;
    let scratch: Scratch;
    before(async () => {
      registry = await TestRegistry.start({ basicAuth: { username: USER, password: PASSWORD } });
    });
    after(async () => registry?.stop());
    beforeEach(() => (scratch = new Scratch()));
    afterEach(() => scratch.remove());

    const store = () => newStore(scratch, { insecureRegistries: [registry.host] }).store;
    const pushWithAuth = (url: string) =>
      pushObject(scratch, url, XDP_OBJECT, { insecure: true, username: USER, password: PASSWORD });

    it('pulls with a Docker config.json pull secret', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const digest = await pushWithAuth(url);
      scratch.writeSecret('bpfd', 'regcred.json', dockerConfig(registry.host));

      const image = await store().resolve({
        url,
        pullSecret: { name: 'regcred', namespace: 'bpfd' },
      });
      expect(image.manifestDigest).to.equal(digest);
    });

    it('pulls with a Kubernetes dockerconfigjson Secret file', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const digest = await pushWithAuth(url);
      const secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'regcred', namespace: 'bpfd' },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from(dockerConfig(registry.host)).toString('base64') },
      };
      scratch.writeSecret('bpfd', 'regcred.yaml', yaml.dump(secret));

      const image = await store().resolve({
        url,
        pullSecret: { name: 'regcred', namespace: 'bpfd' },
      });
      expect(image.manifestDigest).to.equal(digest);
    });

    it('reports a wrong password as an auth error that does not show it', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      await pushWithAuth(url);
      const wrong = 'wrong-password-7f3a';
      scratch.writeSecret('bpfd', 'regcred.json', dockerConfig(registry.host, wrong));
      const logged: string[] = [];
      const logger = {
        debug: (fields: object, message: string) =>
          void logged.push(message + JSON.stringify(fields)),
        info: (fields: object, message: string) =>
          void logged.push(message + JSON.stringify(fields)),
        warn: (fields: object, message: string) =>
          void logged.push(message + JSON.stringify(fields)),
        error: (fields: object, message: string) =>
          void logged.push(message + JSON.stringify(fields)),
      };
      const { store: images } = newStore(scratch, { insecureRegistries: [registry.host], logger });

      const request = { url, pullSecret: { name: 'regcred', namespace: 'bpfd' } };
      const error = await rejection(images.resolve(request));
      expect(error.code).to.equal('BPFD_E_IMAGE_AUTH');
      expect(error.message).to.include('refused the credentials of pull secret bpfd/regcred');
      for (const text of [error.message, String(error.stack), ...logged]) {
        expect(text).not.to.include(wrong);
        expect(text).not.to.include(Buffer.from(`${USER}:${wrong}`).toString('base64'));
      }
    });

    it('asks for a pull secret when the registry wants credentials', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      await pushWithAuth(url);
      const error = await rejection(store().resolve({ url }));
      expect(error.code).to.equal('BPFD_E_IMAGE_AUTH');
      expect(error.message).to.include('requires credentials; set imagepullsecret');
    });

    it('pushes with bpfd image push --username --password-stdin', async () => {
      const outDir = scratch.layoutDir();
      await buildImageLayout({ objectPath: XDP_OBJECT, outDir, programType: 'xdp' });
      const url = registry.reference(`${uniqueRepository()}:cli`);
      const stdout = new PassThrough();
      let printed = '';
      stdout.on('data', (chunk) => (printed += chunk));
      const code = await imageCommand(
        ['push', outDir, url, '--insecure', '--username', USER, '--password-stdin'],
        { stdin: Readable.from([`${PASSWORD}\n`]), stdout, stderr: new PassThrough() },
      );
      expect(code).to.equal(0);

      scratch.writeSecret('bpfd', 'regcred.json', dockerConfig(registry.host));
      const image = await store().resolve({
        url,
        pullSecret: { name: 'regcred', namespace: 'bpfd' },
      });
      expect(printed.trim()).to.equal(image.manifestDigest);
    });
  });

  describe('registry with bearer-token auth', () => {
    let tokens: TokenService;
    let registry: TestRegistry;
    let scratch: Scratch;
    before(async () => {
      tokens = await TokenService.start({ username: USER, password: PASSWORD });
      registry = await TestRegistry.start({ tokenService: tokens });
    });
    after(async () => {
      await registry?.stop();
      await tokens?.stop();
    });
    beforeEach(() => (scratch = new Scratch()));
    afterEach(() => scratch.remove());

    const store = () =>
      newStore(scratch, { insecureRegistries: [registry.host, tokens.host] }).store;

    it('answers the challenge with a token for the repository and pulls', async () => {
      const repository = uniqueRepository();
      const url = registry.reference(`${repository}:v1`);
      const digest = await pushObject(scratch, url, XDP_OBJECT, {
        insecure: true,
        username: USER,
        password: PASSWORD,
      });
      scratch.writeSecret('bpfd', 'regcred.json', dockerConfig(registry.host));
      tokens.requests.length = 0;

      const image = await store().resolve({
        url,
        pullSecret: { name: 'regcred', namespace: 'bpfd' },
      });
      expect(image.manifestDigest).to.equal(digest);
      expect(tokens.requests).to.have.length(1);
      expect(tokens.requests[0]).to.deep.equal({
        scope: [`repository:${repository}:pull`],
        user: USER,
      });
    });

    it('reports credentials the token service refuses, without showing them', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const wrong = 'not-the-password-91c2';
      scratch.writeSecret('bpfd', 'regcred.json', dockerConfig(registry.host, wrong));

      const error = await rejection(
        store().resolve({ url, pullSecret: { name: 'regcred', namespace: 'bpfd' } }),
      );
      expect(error.code).to.equal('BPFD_E_IMAGE_AUTH');
      expect(error.message).to.include(`token service ${tokens.host} refused the credentials`);
      expect(error.message).not.to.include(wrong);
    });

    it('refuses a token realm over plain HTTP unless that host is listed as insecure', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const { store: images } = newStore(scratch, { insecureRegistries: [registry.host] });
      const error = await rejection(images.resolve({ url }));
      expect(error.code).to.equal('BPFD_E_IMAGE_TLS');
      expect(error.message).to.include(`refusing plain HTTP to ${tokens.host}`);
    });
  });

  describe('registry over TLS with its own CA', () => {
    let registry: TestRegistry;
    let scratch: Scratch;
    before(async () => {
      registry = await TestRegistry.start({ tls: true });
    });
    after(async () => registry?.stop());
    beforeEach(() => (scratch = new Scratch()));
    afterEach(() => scratch.remove());

    it('pulls when registries.caFiles names the CA', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const digest = await pushObject(scratch, url, XDP_OBJECT, { caFile: registry.ca!.caFile });
      const { store } = newStore(scratch, { caFiles: { [registry.host]: registry.ca!.caFile } });
      expect((await store.resolve({ url })).manifestDigest).to.equal(digest);
    });

    it('refuses the certificate without the CA and says which setting to use', async () => {
      const url = registry.reference(`${uniqueRepository()}:v1`);
      const { store, delays } = newStore(scratch);
      const error = await rejection(store.resolve({ url }));
      expect(error.code).to.equal('BPFD_E_IMAGE_TLS');
      expect(error.message).to.include(`registries.caFiles["${registry.host}"]`);
      expect(delays).to.deep.equal([]);
    });
  });
});
