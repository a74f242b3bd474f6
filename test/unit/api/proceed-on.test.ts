import { expect } from 'chai';

import {
  decodeGlobalData,
  proceedOnMask,
  TC_PROCEED_ON,
  XDP_PROCEED_ON,
} from '../../../src/api/index.js';

describe('proceedOnMask', () => {
  it('uses [pass, dispatcher_return] for XDP when proceedon is absent or empty', () => {
    const expected = ((1 << 2) | (1 << 31)) >>> 0;

    expect(proceedOnMask('XdpProgram', undefined)).to.equal(expected);
    expect(proceedOnMask('XdpProgram', [])).to.equal(expected);
    expect(expected).to.equal(0x80000004);
  });

  it('sets bit 1 << code for explicit XDP values', () => {
    expect(proceedOnMask('XdpProgram', ['drop'])).to.equal(0b10);
    expect(proceedOnMask('XdpProgram', ['aborted', 'tx', 'redirect'])).to.equal(0b11001);
  });

  it('uses [pipe, dispatcher_return] for TC when proceedon is absent or empty', () => {
    const expected = ((1 << 4) | (1 << 31)) >>> 0;

    expect(proceedOnMask('TcProgram', undefined)).to.equal(expected);
    expect(proceedOnMask('TcProgram', [])).to.equal(0x80000010);
  });

  it('sets bit 1 << (code + 1) for TC, so unspec is bit 0', () => {
    expect(proceedOnMask('TcProgram', ['unspec'])).to.equal(1);
    expect(proceedOnMask('TcProgram', ['ok'])).to.equal(2);
    expect(proceedOnMask('TcProgram', ['trap'])).to.equal(1 << 9);
    expect(proceedOnMask('TcProgram', ['dispatcher_return'])).to.equal(0x80000000);
  });

  it('returns an unsigned 32-bit number with every value set', () => {
    const all = proceedOnMask('TcProgram', Object.keys(TC_PROCEED_ON));

    expect(all).to.equal(0x800003ff);
    expect(all).to.be.above(0);
  });

  it('refuses a value of the other hook', () => {
    expect(() => proceedOnMask('TcProgram', ['drop'])).to.throw(
      /"drop" is not valid for TcProgram/,
    );
  });
});

describe('proceedon codes', () => {
  it('match the return codes of the kernel and the dispatchers', () => {
    expect(XDP_PROCEED_ON).to.deep.equal({
      aborted: 0,
      drop: 1,
      pass: 2,
      tx: 3,
      redirect: 4,
      dispatcher_return: 31,
    });
    expect(TC_PROCEED_ON['unspec']).to.equal(-1);
    expect(TC_PROCEED_ON['trap']).to.equal(8);
    expect(TC_PROCEED_ON['dispatcher_return']).to.equal(30);
    expect(Object.keys(TC_PROCEED_ON)).to.have.length(11);
  });
});

describe('decodeGlobalData', () => {
  it('decodes each value to its bytes', () => {
    const decoded = decodeGlobalData({ threshold: 'AQAAAA==', flags: 'AQI=', empty: '' });

    expect([...decoded.keys()]).to.deep.equal(['threshold', 'flags', 'empty']);
    expect([...decoded.get('threshold')!]).to.deep.equal([1, 0, 0, 0]);
    expect([...decoded.get('flags')!]).to.deep.equal([1, 2]);
    expect(decoded.get('empty')!.length).to.equal(0);
  });

  it('gives an empty map without globaldata', () => {
    expect(decodeGlobalData(undefined).size).to.equal(0);
  });

  it('refuses what is not strict base64', () => {
    expect(() => decodeGlobalData({ x: 'AQI' })).to.throw(/"x" is not valid base64/);
    expect(() => decodeGlobalData({ x: 'A=QI' })).to.throw(/base64/);
    expect(() => decodeGlobalData({ x: 'AQ-_' })).to.throw(/base64/);
  });
});
