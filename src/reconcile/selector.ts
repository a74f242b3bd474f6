import { BpfdError } from '../errors.js';

/**
 * The shape of a metav1.LabelSelector as `nodeselector` carries it. Declared structurally so the
 * matcher stays independent of how src/api builds its schema; the API's `LabelSelector` type is
 * assignable to it.
 */
export interface LabelSelectorLike {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: ReadonlyArray<LabelSelectorRequirementLike>;
}

export interface LabelSelectorRequirementLike {
  readonly key: string;
  readonly operator: string;
  readonly values?: ReadonlyArray<string>;
}

type Requirement =
  | { readonly key: string; readonly operator: 'Equals'; readonly value: string }
  | { readonly key: string; readonly operator: 'In' | 'NotIn'; readonly values: readonly string[] }
  | { readonly key: string; readonly operator: 'Exists' | 'DoesNotExist' };

/**
 * Whether a node with `labels` is selected, with metav1 semantics: every `matchLabels` pair and
 * every `matchExpressions` requirement must hold; a selector without requirements (`{}`) selects
 * every node; `NotIn` and `DoesNotExist` hold when the node lacks the key.
 */
export function matchesNodeSelector(
  selector: LabelSelectorLike,
  labels: Readonly<Record<string, string>>,
): boolean {
  return requirementsOf(selector).every((requirement) => holds(requirement, labels));
}

/**
 * The selector in Kubernetes' string form, for condition messages:
 * `role=edge,zone in (a,b),zone notin (c),gpu,!legacy`. Requirements keep the manifest's order;
 * a selector that selects every node gives the empty string.
 */
export function describeSelector(selector: LabelSelectorLike): string {
  return requirementsOf(selector).map(describeRequirement).join(',');
}

function requirementsOf(selector: LabelSelectorLike): Requirement[] {
  const fromLabels: Requirement[] = Object.entries(selector.matchLabels ?? {}).map(
    ([key, value]) => ({ key, operator: 'Equals', value }),
  );
  const fromExpressions = (selector.matchExpressions ?? []).map(checkedRequirement);
  return [...fromLabels, ...fromExpressions];
}

function checkedRequirement(expression: LabelSelectorRequirementLike): Requirement {
  const { key, operator } = expression;
  const values = expression.values ?? [];

  switch (operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) {
        throw selectorError(`operator ${operator} on key "${key}" needs at least one value`);
      }
      return { key, operator, values };
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) {
        throw selectorError(`operator ${operator} on key "${key}" takes no values`);
      }
      return { key, operator };
    default:
      throw selectorError(
        `unknown operator "${operator}" on key "${key}"; use In, NotIn, Exists or DoesNotExist`,
      );
  }
}

function holds(requirement: Requirement, labels: Readonly<Record<string, string>>): boolean {
  // Own properties only: a label named "constructor" must not match Object.prototype.
  const present = Object.hasOwn(labels, requirement.key);

  switch (requirement.operator) {
    case 'Equals':
      return present && labels[requirement.key] === requirement.value;
    case 'In':
      return present && requirement.values.includes(labels[requirement.key]!);
    case 'NotIn':
      return !present || !requirement.values.includes(labels[requirement.key]!);
    case 'Exists':
      return present;
    case 'DoesNotExist':
      return !present;
  }
}

function describeRequirement(requirement: Requirement): string {
  switch (requirement.operator) {
    case 'Equals':
      return `${requirement.key}=${requirement.value}`;
    case 'In':
      return `${requirement.key} in (${requirement.values.join(',')})`;
    case 'NotIn':
      return `${requirement.key} notin (${requirement.values.join(',')})`;
    case 'Exists':
      return requirement.key;
    case 'DoesNotExist':
      return `!${requirement.key}`;
  }
}

function selectorError(message: string): BpfdError {
  return new BpfdError('BPFD_E_SELECTOR', `nodeselector: ${message}`);
}
