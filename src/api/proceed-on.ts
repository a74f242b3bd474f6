import { BpfdError } from '../errors.js';

/** XDP return codes by `proceedon` name; `dispatcher_return` means "go on to the next". */
const XDP_CODES = {
  aborted: 0,
  drop: 1,
  pass: 2,
  tx: 3,
  redirect: 4,
  dispatcher_return: 31,
} as const;

/** TC action codes by `proceedon` name; `unspec` is TC_ACT_UNSPEC (-1). */
const TC_CODES = {
  unspec: -1,
  ok: 0,
  reclassify: 1,
  shot: 2,
  pipe: 3,
  stolen: 4,
  queued: 5,
  repeat: 6,
  redirect: 7,
  trap: 8,
  dispatcher_return: 30,
} as const;

export type XdpProceedOnValue = keyof typeof XDP_CODES;
export type TcProceedOnValue = keyof typeof TC_CODES;
export const XDP_PROCEED_ON_VALUES = Object.keys(XDP_CODES) as XdpProceedOnValue[];
export const TC_PROCEED_ON_VALUES = Object.keys(TC_CODES) as TcProceedOnValue[];
export const XDP_PROCEED_ON: Record<string, number> = Object.freeze({ ...XDP_CODES });
export const TC_PROCEED_ON: Record<string, number> = Object.freeze({ ...TC_CODES });

const DEFAULT_PROCEED_ON = {
  XdpProgram: ['pass', 'dispatcher_return'],
  TcProgram: ['pipe', 'dispatcher_return'],
} as const;

/**
 * The dispatcher's bit mask for `proceedon`: bit `1 << code` for XDP and `1 << (code + 1)` for
 * TC (so TC_ACT_UNSPEC is bit 0). No values means bpfd's default set. Unsigned 32-bit.
 */
export function proceedOnMask(
  kind: 'XdpProgram' | 'TcProgram',
  values: string[] | undefined,
): number {
  const codes = kind === 'XdpProgram' ? XDP_PROCEED_ON : TC_PROCEED_ON;
  const bitOffset = kind === 'XdpProgram' ? 0 : 1;
  const names = values === undefined || values.length === 0 ? DEFAULT_PROCEED_ON[kind] : values;

  let mask = 0;
  for (const name of names) {
    const code = Object.hasOwn(codes, name) ? codes[name] : undefined;
    if (code === undefined) {
      throw new BpfdError(
        'BPFD_E_MANIFEST',
        `proceedon value "${name}" is not valid for ${kind}; use ${Object.keys(codes).join(', ')}`,
      );
    }
    mask |= 1 << (code + bitOffset);
  }
  return mask >>> 0;
}
