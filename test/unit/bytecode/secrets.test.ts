import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';
import yaml from 'js-yaml';

import { credentialsFromDockerConfig, loadPullSecret } from '../../../src/bytecode/secrets.js';
import { rejection, useTempDir } from './helpers.js';

const REGISTRY = '127.0.0.1:5000';
const PASSWORD = 'Tr0ub4dor&3-secret';
const USER = 'robot$bytecode';
const IMAGE = `${REGISTRY}/bytecode/xdp:v1`;
const SELECTOR = { name: 'regcred', namespace: 'bpfd' };
const where = { reference: IMAGE, file: 'secret.json' };

function dockerConfig(entries: Record<string, object>): string {
  return JSON.stringify({ auths: entries });
}

function auth(user = USER, password = PASSWORD): string {
  return Buffer.from(`${user}:${password}`).toString('base64');
}

function kubernetesSecret(config: string, overrides: Record<string, unknown> = {}): string {
  return yaml.dump({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'regcred', namespace: 'bpfd' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
    ...overrides,
  });
}

/** No message may carry the user name or the password, however the file is broken. */
function expectNoCredentials(error: Error): void {
  expect(error.message).not.to.include(PASSWORD);
  expect(error.message).not.to.include(USER);
  expect(error.message).not.to.include(auth());
}

describe('pull secrets', () => {
  const dir = useTempDir('bpfd-secrets-');
  const write = (name: string, text: string) => {
    fs.mkdirSync(path.join(dir(), 'bpfd'), { recursive: true });
    fs.writeFileSync(path.join(dir(), 'bpfd', name), text, { mode: 0o600 });
  };
  const load = () => loadPullSecret(dir(), SELECTOR, REGISTRY, IMAGE);

  it('reads a Docker config.json entry with auth', async () => {
    write('regcred.json', dockerConfig({ [REGISTRY]: { auth: auth() } }));
    expect(await load()).to.deep.equal({
      username: USER,
      password: PASSWORD,
      source: `pull secret bpfd/regcred (${path.join(dir(), 'bpfd', 'regcred.json')})`,
    });
  });

  it('reads a Kubernetes dockerconfigjson Secret with username and password', async () => {
    const config = dockerConfig({
      [`https://${REGISTRY}/v1/`]: { username: USER, password: PASSWORD },
    });
    write('regcred.yaml', kubernetesSecret(config));
    const credentials = await load();
    expect(credentials).to.include({ username: USER, password: PASSWORD });
  });

  it('reads stringData of a Secret as plain text', async () => {
    const config = dockerConfig({ [REGISTRY]: { auth: auth() } });
    write(
      'regcred.yaml',
      kubernetesSecret(config, { data: undefined, stringData: { '.dockerconfigjson': config } }),
    );
    expect(await load()).to.include({ password: PASSWORD });
  });

  it('gives no credentials when the secret has no entry for the registry', async () => {
    write('regcred.json', dockerConfig({ 'quay.io': { auth: auth() } }));
    expect(await load()).to.equal(undefined);
  });

  it('says which files it looked for when the secret is missing', async () => {
    const error = await rejection(load());
    expect(error.code).to.equal('BPFD_E_IMAGE_SECRET');
    expect(error.message).to.include('regcred.json or').and.include('regcred.yaml');
  });

  it('refuses both a .json and a .yaml file for one secret', async () => {
    write('regcred.json', dockerConfig({}));
    write('regcred.yaml', kubernetesSecret(dockerConfig({})));
    expect((await rejection(load())).message).to.include('keep one of them');
  });

  it('refuses names that would leave the secrets dir', async () => {
    const error = await rejection(
      loadPullSecret(dir(), { name: '../../etc/passwd', namespace: 'bpfd' }, REGISTRY, IMAGE),
    );
    expect(error.message).to.include('not a DNS-1123 subdomain');
    const namespace = await rejection(
      loadPullSecret(dir(), { name: 'x', namespace: '..' }, REGISTRY, IMAGE),
    );
    expect(namespace.message).to.include('not a DNS-1123 label');
  });

  it('refuses a Secret of another type or for another name', async () => {
    const config = dockerConfig({ [REGISTRY]: { auth: auth() } });
    write('regcred.yaml', kubernetesSecret(config, { type: 'Opaque' }));
    expect((await rejection(load())).message).to.include(
      'must have type kubernetes.io/dockerconfigjson',
    );

    write('regcred.yaml', kubernetesSecret(config, { metadata: { name: 'other' } }));
    expect((await rejection(load())).message).to.include('metadata.name');
  });

  it('reports broken JSON without quoting the file', async () => {
    write(
      'regcred.json',
      `{"auths": {"${REGISTRY}": {"password": "${PASSWORD}", "username": "${USER}" oops`,
    );
    const error = await rejection(load());
    expect(error.message).to.include('is not valid JSON');
    expectNoCredentials(error);
  });

  it('reports broken YAML by line only', async () => {
    write('regcred.yaml', `kind: Secret\ndata:\n  .dockerconfigjson: "${PASSWORD}\n   : [${USER}`);
    const error = await rejection(load());
    expect(error.message).to.match(/is not valid YAML at line \d+$/);
    expectNoCredentials(error);
  });

  it('reports an auth field that is not user:password without showing it', async () => {
    const noColon = Buffer.from(`${USER}${PASSWORD}`).toString('base64');
    const error = await rejection(
      Promise.resolve().then(() =>
        credentialsFromDockerConfig(
          dockerConfig({ [REGISTRY]: { auth: noColon } }),
          REGISTRY,
          where,
        ),
      ),
    );
    expect(error.message).to.include('is not base64 of "username:password"');
    expect(error.message).not.to.include(noColon);
    expectNoCredentials(error);
  });

  it('reports data that is not base64 without showing it', async () => {
    write('regcred.yaml', kubernetesSecret('', { data: { '.dockerconfigjson': `${PASSWORD}!!` } }));
    const error = await rejection(load());
    expect(error.message).to.include('is not base64');
    expectNoCredentials(error);
  });

  it('refuses identity tokens, which need an OAuth2 exchange', () => {
    const text = dockerConfig({ [REGISTRY]: { identitytoken: PASSWORD } });
    expect(() => credentialsFromDockerConfig(text, REGISTRY, where)).to.throw('holds a token');
  });

  it('matches docker.io against Docker config keys for Docker Hub', () => {
    const text = dockerConfig({ 'https://index.docker.io/v1/': { auth: auth() } });
    expect(credentialsFromDockerConfig(text, 'docker.io', where)).to.include({ username: USER });
  });
});
