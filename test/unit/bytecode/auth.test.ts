import { expect } from 'chai';

import {
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  redact,
  tokenRequestUrl,
} from '../../../src/bytecode/auth.js';

describe('parseWwwAuthenticate', () => {
  it('reads a bearer challenge as distribution registries send it', () => {
    const header =
      'Bearer realm="https://auth.example/token",service="registry.example",' +
      'scope="repository:bpfd/xdp:pull"';
    expect(parseWwwAuthenticate(header)).to.deep.equal([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'registry.example',
          scope: 'repository:bpfd/xdp:pull',
        },
      },
    ]);
  });

  it('reads a basic challenge with an unquoted value and odd spacing', () => {
    expect(parseWwwAuthenticate('Basic   realm = registry , charset="UTF-8"')).to.deep.equal([
      { scheme: 'basic', params: { realm: 'registry', charset: 'UTF-8' } },
    ]);
  });

  it('reads several challenges in one header', () => {
    const header =
      'Negotiate, Basic realm="a, b", Bearer realm="https://t/x",error="invalid_token"';
    const challenges = parseWwwAuthenticate(header);
    expect(challenges.map((challenge) => challenge.scheme)).to.deep.equal([
      'negotiate',
      'basic',
      'bearer',
    ]);
    expect(challenges[1].params.realm).to.equal('a, b');
    expect(challenges[2].params).to.deep.equal({ realm: 'https://t/x', error: 'invalid_token' });
  });

  it('resolves backslash escapes in quoted values', () => {
    const [challenge] = parseWwwAuthenticate('Basic realm="say \\"hi\\""');
    expect(challenge.params.realm).to.equal('say "hi"');
  });

  it('reads a token68 challenge', () => {
    expect(parseWwwAuthenticate('Custom abc123==, Basic realm=r')).to.deep.equal([
      { scheme: 'custom', params: { token68: 'abc123==' } },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  it('gives no challenge for an empty header', () => {
    expect(parseWwwAuthenticate('')).to.deep.equal([]);
  });
});

describe('bearer token flow', () => {
  it('asks the realm for every scope and the service', () => {
    const url = tokenRequestUrl(
      { scheme: 'bearer', params: { realm: 'https://auth.example/token?x=1', service: 'reg' } },
      ['repository:a:pull', 'repository:b:pull'],
    );
    expect(url.searchParams.get('x')).to.equal('1');
    expect(url.searchParams.get('service')).to.equal('reg');
    expect(url.searchParams.getAll('scope')).to.deep.equal([
      'repository:a:pull',
      'repository:b:pull',
    ]);
  });

  it('reads token or access_token and keeps a margin on expires_in', () => {
    const now = 1_000_000;
    const token = parseTokenResponse(Buffer.from('{"token":"t1","expires_in":300}'), now);
    expect(token).to.deep.equal({ token: 't1', expiresAt: now + 290_000 });
    const oauth = parseTokenResponse(Buffer.from('{"access_token":"t2"}'), now);
    expect(oauth?.token).to.equal('t2');
  });

  it('finds no token in an answer without one', () => {
    expect(parseTokenResponse(Buffer.from('{"details":"no"}'), 0)).to.equal(undefined);
    expect(parseTokenResponse(Buffer.from('<html>'), 0)).to.equal(undefined);
  });
});

describe('credentials in text', () => {
  it('encodes basic credentials', () => {
    const header = basicAuthorization({ username: 'alice', password: 'pw:x', source: 's' });
    expect(header).to.equal(`Basic ${Buffer.from('alice:pw:x').toString('base64')}`);
  });

  it('redacts every occurrence of a secret', () => {
    expect(redact('bad pw hunter2 and hunter2', ['hunter2'])).to.equal(
      'bad pw [redacted] and [redacted]',
    );
  });
});
