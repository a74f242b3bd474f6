import { Type, type Static, type TProperties } from '@sinclair/typebox';

import { LabelSelectorSchema, ObjectMetaSchema } from './meta.js';
import { TC_PROCEED_ON_VALUES, XDP_PROCEED_ON_VALUES } from './proceed-on.js';
import {
  DNS1123_LABEL,
  DNS1123_SUBDOMAIN,
  nonEmptyString,
  stringEnum,
  stringKeyedMap,
  strictObject,
} from './schema-kit.js';

/**
 * The `bpfd.io/v1alpha1` kinds, with the limits of bpfd's generated CRD schemas (v0.2.1) and
 * the few extra checks that keep names safe to use as file paths.
 */

export const API_VERSION = 'bpfd.io/v1alpha1';

export const PROGRAM_KINDS = ['XdpProgram', 'TcProgram', 'TracepointProgram'] as const;
export type ProgramKind = (typeof PROGRAM_KINDS)[number];

const ImagePullSecretSchema = strictObject({
  // Both become a path under secretsDir, so they follow Kubernetes' naming rules strictly.
  name: Type.String({
    maxLength: 253,
    pattern: DNS1123_SUBDOMAIN,
    errorMessage: 'must be a Kubernetes secret name (DNS-1123 subdomain)',
  }),
  namespace: Type.String({
    maxLength: 63,
    pattern: DNS1123_LABEL,
    errorMessage: 'must be a Kubernetes namespace name (DNS-1123 label)',
  }),
});

const BytecodeImageSchema = strictObject({
  url: nonEmptyString({ description: 'Image reference, e.g. quay.io/org/xdp-pass:latest' }),
  imagepullpolicy: Type.Optional(
    stringEnum(['Always', 'IfNotPresent', 'Never'], { default: 'IfNotPresent' }),
  ),
  imagepullsecret: Type.Optional(ImagePullSecretSchema),
});

const BytecodeSelectorSchema = strictObject(
  {
    path: Type.Optional(nonEmptyString({ description: 'Path of an ELF object on this node' })),
    image: Type.Optional(BytecodeImageSchema),
  },
  {
    minProperties: 1,
    maxProperties: 1,
    errorMessage: 'set exactly one of "path" or "image"',
  },
);

const InterfaceSelectorSchema = strictObject(
  {
    interface: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 15,
        pattern: '^(?!\\.\\.?$)[^/:\\s]+$',
        errorMessage: 'must be a Linux interface name (1-15 characters, no "/", ":" or spaces)',
      }),
    ),
    primarynodeinterface: Type.Optional(
      Type.Literal(true, {
        errorMessage: 'only true is accepted; to pick an interface by name use "interface"',
      }),
    ),
  },
  {
    minProperties: 1,
    maxProperties: 1,
    errorMessage: 'set exactly one of "interface: <name>" or "primarynodeinterface: true"',
  },
);

const GlobalDataSchema = stringKeyedMap(
  Type.String({ format: 'byte', errorMessage: 'must be base64 (standard alphabet, "=" padded)' }),
  { description: 'Global variable name to its initial bytes, base64 encoded' },
);

const Priority = Type.Integer({
  format: 'int32',
  minimum: 0,
  maximum: 1000,
  description: 'Lower runs first; ties are broken by name',
});

// bpfd's schema says ingress/egress while its own samples wrote INGRESS: any case is accepted
// and parsing lower-cases it, so the static type is the normalised one.
const Direction = Type.Unsafe<'ingress' | 'egress'>(
  Type.String({
    pattern: '^(?:[Ii][Nn][Gg][Rr][Ee][Ss][Ss]|[Ee][Gg][Rr][Ee][Ss][Ss])$',
    errorMessage: 'must be "ingress" or "egress"',
  }),
);

const TracepointName = Type.String({
  pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$',
  errorMessage: 'must be "group/event" as under tracefs events/, e.g. syscalls/sys_enter_openat',
});

const commonSpecProperties = {
  sectionname: nonEmptyString({ description: 'Program in the object: section or function' }),
  nodeselector: LabelSelectorSchema,
  bytecode: BytecodeSelectorSchema,
  globaldata: Type.Optional(GlobalDataSchema),
};

function programSchema<K extends string, S extends TProperties>(kind: K, specProperties: S) {
  return strictObject({
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal(kind),
    metadata: ObjectMetaSchema,
    spec: strictObject({ ...commonSpecProperties, ...specProperties }),
    status: Type.Optional(Type.Unknown({ description: 'Observed state; accepted and ignored' })),
  });
}

export const XdpProgramSchema = programSchema('XdpProgram', {
  interfaceselector: InterfaceSelectorSchema,
  priority: Priority,
  proceedon: Type.Optional(
    Type.Array(stringEnum(XDP_PROCEED_ON_VALUES), {
      maxItems: 6,
      default: ['pass', 'dispatcher_return'],
    }),
  ),
});

export const TcProgramSchema = programSchema('TcProgram', {
  interfaceselector: InterfaceSelectorSchema,
  priority: Priority,
  direction: Direction,
  proceedon: Type.Optional(
    Type.Array(stringEnum(TC_PROCEED_ON_VALUES), {
      maxItems: 11,
      default: ['pipe', 'dispatcher_return'],
    }),
  ),
});

export const TracepointProgramSchema = programSchema('TracepointProgram', {
  name: TracepointName,
});

export const BpfProgramSchema = strictObject({
  apiVersion: Type.Literal(API_VERSION),
  kind: Type.Literal('BpfProgram'),
  metadata: ObjectMetaSchema,
  spec: strictObject({
    node: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
    programs: stringKeyedMap(stringKeyedMap(Type.String()), {
      description: 'Program id to map name to pin path',
    }),
  }),
  status: Type.Optional(Type.Unknown({ description: 'Observed state; accepted and ignored' })),
});

export { LabelSelectorSchema };

export type XdpProgram = Static<typeof XdpProgramSchema>;
export type TcProgram = Static<typeof TcProgramSchema>;
export type TracepointProgram = Static<typeof TracepointProgramSchema>;
export type BpfProgram = Static<typeof BpfProgramSchema>;
export type LabelSelector = Static<typeof LabelSelectorSchema>;
export type ProgramObject = XdpProgram | TcProgram | TracepointProgram;

/** Every kind a manifest may hold, by name. */
export const SCHEMAS_BY_KIND = {
  XdpProgram: XdpProgramSchema,
  TcProgram: TcProgramSchema,
  TracepointProgram: TracepointProgramSchema,
  BpfProgram: BpfProgramSchema,
} as const;

export type ManifestKind = keyof typeof SCHEMAS_BY_KIND;
export const MANIFEST_KINDS = Object.keys(SCHEMAS_BY_KIND) as ManifestKind[];
