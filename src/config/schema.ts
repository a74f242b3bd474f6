import { Type, type Static } from '@sinclair/typebox';

import { stringEnum, stringKeyedMap, strictObject } from '../api/index.js';

/**
 * The node config file, every key optional. It is checked with the manifest checker, so an
 * unknown key is an error with a "did you mean".
 */

export const XDP_MODES = ['native', 'skb'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

// A host name or an IP address (IPv6 in brackets), then the port.
const HOST = '(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)';
const PORT = '[0-9]{1,5}';
const REGISTRY = `^${HOST}(?::${PORT})?$`;
const INTERFACE_NAME = '^(?!\\.\\.?$)[^/:\\s]{1,15}$';
const NODE_NAME = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

const Directory = Type.String({ minLength: 1, description: 'Relative to the config file' });
const XdpMode = stringEnum(XDP_MODES);

const RegistriesSchema = strictObject({
  insecure: Type.Optional(
    Type.Array(
      Type.String({
        pattern: REGISTRY,
        errorMessage: 'must be a registry host or host:port, e.g. registry.local:5000',
      }),
      { description: 'Registries reached over plain HTTP' },
    ),
  ),
  caFiles: Type.Optional(
    Type.Record(Type.String({ pattern: REGISTRY }), Type.String({ minLength: 1 }), {
      additionalProperties: false,
      errorMessage: 'keys must be a registry host or host:port, e.g. registry.local:5000',
      description: 'Registry host:port to a PEM file of extra CAs',
    }),
  ),
});

const MetricsSchema = strictObject({
  listen: Type.Optional(
    Type.String({
      pattern: `^${HOST}:${PORT}$`,
      errorMessage: 'must be host:port, e.g. 127.0.0.1:9474 or [::1]:9474',
    }),
  ),
});

export const ConfigFileSchema = strictObject({
  nodeName: Type.Optional(
    Type.String({
      maxLength: 253,
      pattern: NODE_NAME,
      errorMessage: 'must be a Kubernetes node name (lower-case DNS-1123 subdomain)',
    }),
  ),
  nodeLabels: Type.Optional(stringKeyedMap(Type.String())),
  manifestDir: Type.Optional(Directory),
  statusDir: Type.Optional(Directory),
  bpffsRoot: Type.Optional(Directory),
  stateDir: Type.Optional(Directory),
  secretsDir: Type.Optional(Directory),
  registries: Type.Optional(RegistriesSchema),
  metrics: Type.Optional(MetricsSchema),
  resync: Type.Optional(Type.String({ description: 'Cron schedule of the full resync' })),
  xdpMode: Type.Optional(XdpMode),
  xdpModeByInterface: Type.Optional(
    Type.Record(Type.String({ pattern: INTERFACE_NAME }), XdpMode, {
      additionalProperties: false,
      errorMessage: 'keys must be interface names',
    }),
  ),
  bytecodeRoots: Type.Optional(
    Type.Array(Type.String({ pattern: '^/', errorMessage: 'must be an absolute directory path' })),
  ),
  strictModes: Type.Optional(Type.Boolean()),
  logLevel: Type.Optional(stringEnum(LOG_LEVELS)),
});

export type ConfigFile = Static<typeof ConfigFileSchema>;

/** The node name rule, also applied to `--node-name` and to the host name default. */
export const NODE_NAME_PATTERN = new RegExp(NODE_NAME);
