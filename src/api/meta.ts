import { Type } from '@sinclair/typebox';

import {
  DNS1123_SUBDOMAIN,
  nonEmptyString,
  stringEnum,
  stringKeyedMap,
  strictObject,
} from './schema-kit.js';

/**
 * Kubernetes `meta/v1` types as manifests carry them. Everything `kubectl get -o yaml` prints in
 * `metadata` is accepted so its output can be dropped into the manifest dir unchanged.
 */

const StringMap = stringKeyedMap(Type.String());

// `kubectl create --dry-run -o yaml` prints `creationTimestamp: null`.
const Timestamp = Type.Union([Type.String(), Type.Null()]);

const OwnerReferenceSchema = strictObject({
  apiVersion: Type.String(),
  kind: Type.String(),
  name: Type.String(),
  uid: Type.String(),
  controller: Type.Optional(Type.Boolean()),
  blockOwnerDeletion: Type.Optional(Type.Boolean()),
});

const ManagedFieldsEntrySchema = strictObject({
  apiVersion: Type.Optional(Type.String()),
  fieldsType: Type.Optional(Type.String()),
  fieldsV1: Type.Optional(Type.Unknown({ description: 'Server-side apply bookkeeping; ignored' })),
  manager: Type.Optional(Type.String()),
  operation: Type.Optional(Type.String()),
  subresource: Type.Optional(Type.String()),
  time: Type.Optional(Timestamp),
});

export const ObjectMetaSchema = strictObject(
  {
    name: nonEmptyString({
      maxLength: 253,
      pattern: DNS1123_SUBDOMAIN,
      errorMessage:
        'must be a DNS-1123 subdomain: lower-case letters, digits, "-" and ".", ' +
        'starting and ending with a letter or digit, at most 253 characters',
    }),
    generateName: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String()),
    labels: Type.Optional(StringMap),
    annotations: Type.Optional(StringMap),
    uid: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer({ format: 'int64' })),
    creationTimestamp: Type.Optional(Timestamp),
    deletionTimestamp: Type.Optional(Timestamp),
    deletionGracePeriodSeconds: Type.Optional(Type.Integer({ format: 'int64' })),
    ownerReferences: Type.Optional(Type.Array(OwnerReferenceSchema)),
    finalizers: Type.Optional(Type.Array(Type.String())),
    managedFields: Type.Optional(Type.Array(ManagedFieldsEntrySchema)),
    selfLink: Type.Optional(Type.String()),
  },
  { description: 'Kubernetes ObjectMeta; only `name` is required' },
);

export const LABEL_SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

const LabelSelectorRequirementSchema = strictObject({
  key: nonEmptyString(),
  operator: stringEnum(LABEL_SELECTOR_OPERATORS),
  values: Type.Optional(
    Type.Array(Type.String(), {
      description: 'Non-empty for In and NotIn; absent or empty for Exists and DoesNotExist',
    }),
  ),
});

export const LabelSelectorSchema = strictObject(
  {
    matchLabels: Type.Optional(StringMap),
    matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirementSchema)),
  },
  { description: 'metav1.LabelSelector; {} selects every node' },
);
