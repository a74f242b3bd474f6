/**
 * A real registry for the bytecode tests: Debian's docker-registry (distribution 2.8) on
 * 127.0.0.1 with its own port, storage and config, optionally with htpasswd or token auth and
 * TLS from a CA made here; a counting proxy to put in front of it; a token service. Only
 * loopback is ever contacted. Everything started here is stopped by its own handle.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import yaml from 'js-yaml';

const run = promisify(execFile);
const REGISTRY_BINARY = '/usr/bin/docker-registry';
const LOOPBACK = '127.0.0.1';

/** A loopback port that was free a moment ago: bind port 0, read it, close. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface CertificateAuthority {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
}

/** A CA and a server certificate for IP 127.0.0.1, made with openssl in `dir`. */
export async function makeCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  const file = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=bpfd test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', [
    'req',
    ...ec,
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
    '-subj',
    `/CN=${LOOPBACK}`,
  ]);
  fs.writeFileSync(
    file('server.ext'),
    `subjectAltName=IP:${LOOPBACK}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('server.pem'),
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
  ]);
  return {
    dir,
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
  };
}

export interface RegistryOptions {
  /** htpasswd (bcrypt) with one user. */
  basicAuth?: { username: string; password: string };
  /** Token auth trusting this token service. */
  tokenService?: TokenService;
  tls?: boolean;
}

export class TestRegistry {
  readonly dir: string;
  readonly storageDir: string;
  readonly port: number;
  readonly ca: CertificateAuthority | undefined;
  private readonly child: ChildProcess;
  private output = '';

  private constructor(dir: string, port: number, child: ChildProcess, ca?: CertificateAuthority) {
    this.dir = dir;
    this.storageDir = path.join(dir, 'storage');
    this.port = port;
    this.child = child;
    this.ca = ca;
    child.stdout?.on('data', (chunk) => (this.output += chunk));
    child.stderr?.on('data', (chunk) => (this.output += chunk));
  }

  static async start(options: RegistryOptions = {}): Promise<TestRegistry> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-registry-'));
    fs.mkdirSync(path.join(dir, 'storage'));
    const port = await freeLoopbackPort();
    const ca = options.tls ? await makeCertificateAuthority(dir) : undefined;

    const configFile = path.join(dir, 'config.yml');
    fs.writeFileSync(configFile, yaml.dump(await registryConfig(dir, port, options, ca)));
    const child = spawn(REGISTRY_BINARY, ['serve', configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const registry = new TestRegistry(dir, port, child, ca);
    await registry.waitUntilReady();
    return registry;
  }

  get host(): string {
    return `${LOOPBACK}:${this.port}`;
  }

  /** `127.0.0.1:<port>/<name>`: references always carry the loopback host. */
  reference(nameAndTag: string): string {
    return `${this.host}/${nameAndTag}`;
  }

  /** Where the registry keeps a blob's bytes. */
  blobFile(digest: string): string {
    const hex = digest.slice('sha256:'.length);
    return path.join(
      this.storageDir,
      'docker/registry/v2/blobs/sha256',
      hex.slice(0, 2),
      hex,
      'data',
    );
  }

  get log(): string {
    return this.output;
  }

  /** Stops the registry we started (by its PID) and removes its folder. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      process.kill(this.child.pid as number, 'SIGTERM');
      const timer = setTimeout(() => process.kill(this.child.pid as number, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) {
        throw new Error(`docker-registry exited (${this.child.exitCode}):\n${this.output}`);
      }
      if (await this.answers()) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await this.stop();
    throw new Error(`docker-registry did not start on ${this.host}:\n${this.output}`);
  }

  private answers(): Promise<boolean> {
    const secure = this.ca !== undefined;
    const options = {
      host: LOOPBACK,
      port: this.port,
      path: '/v2/',
      agent: false,
      ca: this.ca ? fs.readFileSync(this.ca.caFile) : undefined,
    };
    return new Promise((resolve) => {
      const request = (secure ? https : http).get(options, (response) => {
        response.resume();
        resolve(true);
      });
      request.on('error', () => resolve(false));
    });
  }
}

async function registryConfig(
  dir: string,
  port: number,
  options: RegistryOptions,
  ca?: CertificateAuthority,
): Promise<object> {
  const config: Record<string, any> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: path.join(dir, 'storage') },
      delete: { enabled: true },
    },
    http: { addr: `${LOOPBACK}:${port}`, secret: crypto.randomBytes(16).toString('hex') },
  };
  if (ca) config.http.tls = { certificate: ca.serverCertFile, key: ca.serverKeyFile };
  if (options.basicAuth) {
    const htpasswd = path.join(dir, 'htpasswd');
    const { username, password } = options.basicAuth;
    const { stdout } = await run('htpasswd', ['-Bbn', username, password]);
    fs.writeFileSync(htpasswd, stdout);
    config.auth = { htpasswd: { realm: 'bpfd-test', path: htpasswd } };
  }
  if (options.tokenService) {
    const service = options.tokenService;
    config.auth = {
      token: {
        realm: service.realm,
        service: service.service,
        issuer: service.issuer,
        rootcertbundle: service.certFile,
      },
    };
  }
  return config;
}

export interface RecordedRequest {
  method: string;
  path: string;
  status?: number;
}

/**
 * An HTTP proxy on loopback in front of a registry that records every request; it can answer
 * blob downloads with a redirect to the registry itself, as registries backed by object
 * storage do.
 */
export class CountingProxy {
  readonly requests: RecordedRequest[] = [];
  redirectBlobs = false;
  private readonly server: http.Server;
  private readonly target: number;

  private constructor(server: http.Server, targetPort: number) {
    this.server = server;
    this.target = targetPort;
  }

  static async start(targetPort: number): Promise<CountingProxy> {
    const server = http.createServer();
    const proxy = new CountingProxy(server, targetPort);
    server.on('request', (request, response) => proxy.forward(request, response));
    await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
    return proxy;
  }

  get host(): string {
    return `${LOOPBACK}:${(this.server.address() as net.AddressInfo).port}`;
  }

  reference(nameAndTag: string): string {
    return `${this.host}/${nameAndTag}`;
  }

  /** Requests whose path contains `part` (e.g. `/manifests/`, `/blobs/`). */
  count(part: string): number {
    return this.requests.filter((request) => request.path.includes(part)).length;
  }

  reset(): void {
    this.requests.length = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private forward(request: http.IncomingMessage, response: http.ServerResponse): void {
    const record: RecordedRequest = { method: request.method ?? '', path: request.url ?? '' };
    this.requests.push(record);
    if (this.redirectBlobs && request.method === 'GET' && /\/blobs\/sha256:/.test(record.path)) {
      record.status = 307;
      response.writeHead(307, { location: `http://${LOOPBACK}:${this.target}${record.path}` });
      response.end();
      return;
    }

    const upstream = http.request(
      {
        host: LOOPBACK,
        port: this.target,
        method: request.method,
        path: request.url,
        headers: request.headers,
        agent: false,
      },
      (answer) => {
        record.status = answer.statusCode;
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => {
      response.writeHead(502);
      response.end();
    });
    request.pipe(upstream);
  }
}

/**
 * A token service for the registry's token auth: checks basic credentials and issues ES256
 * JWTs signed with a certificate the registry trusts, granting what the scope asks.
 */
export class TokenService {
  readonly issuer = 'bpfd-test-issuer';
  readonly service = 'bpfd-test-registry';
  readonly certFile: string;
  readonly requests: Array<{ scope: string[]; user?: string }> = [];
  private readonly dir: string;
  private readonly server: http.Server;
  private readonly credentials: { username: string; password: string };
  private readonly keyPem: string;
  private readonly certDer: string;

  private constructor(dir: string, credentials: { username: string; password: string }) {
    this.dir = dir;
    this.credentials = credentials;
    this.certFile = path.join(dir, 'token.pem');
    this.keyPem = fs.readFileSync(path.join(dir, 'token.key'), 'utf8');
    const pem = fs.readFileSync(this.certFile, 'utf8');
    this.certDer = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    this.server = http.createServer((request, response) => this.answer(request, response));
  }

  static async start(credentials: { username: string; password: string }): Promise<TokenService> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfd-token-'));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      path.join(dir, 'token.key'),
      '-out',
      path.join(dir, 'token.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=bpfd test token signer',
    ]);
    const service = new TokenService(dir, credentials);
    await new Promise<void>((resolve) => service.server.listen(0, LOOPBACK, resolve));
    return service;
  }

  get host(): string {
    return `${LOOPBACK}:${(this.server.address() as net.AddressInfo).port}`;
  }

  get realm(): string {
    return `http://${this.host}/token`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private answer(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', `http://${this.host}`);
    const scope = url.searchParams.getAll('scope');
    const user = this.authenticatedUser(request.headers.authorization);
    this.requests.push({ scope, user: user ?? undefined });
    if (user === null) {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ details: 'invalid credentials' }));
      return;
    }
    const access =
      user === undefined ? [] : scope.map(accessOf).filter((entry) => entry !== undefined);
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ token: this.sign(access, user ?? ''), expires_in: 300 }));
  }

  /** The user name; undefined when anonymous; null when the credentials are wrong. */
  private authenticatedUser(header: string | undefined): string | undefined | null {
    if (header === undefined) return undefined;
    const decoded = Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8');
    const { username, password } = this.credentials;
    return decoded === `${username}:${password}` ? username : null;
  }

  private sign(access: object[], subject: string): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', x5c: [this.certDer] };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
    const input = `${encode(header)}.${encode(claims)}`;
    const signature = crypto.sign('sha256', Buffer.from(input), {
      key: this.keyPem,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${signature.toString('base64url')}`;
  }
}

function accessOf(scope: string): object | undefined {
  const [type, name, actions] = scope.split(':');
  if (type !== 'repository' || !name || !actions) return undefined;
  return { type, name, actions: actions.split(',') };
}
