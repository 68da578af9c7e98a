/**
 * Label matching: Service `selector` and ServiceEntry `workloadSelector` (equality on every key)
 * and Kubernetes `metav1.LabelSelector` for Gateway `allowedRoutes.namespaces.selector`.
 */
import type { LabelSelector, LabelSelectorRequirement } from "./resources.ts";

type Labels = Readonly<Record<string, string>>;

/**
 * Whether `labels` has every key of `want` with the same value. An empty `want` selects nothing,
 * as a Service without a selector gets no endpoints from Pods.
 */
export function matchesLabels(want: Labels | undefined, labels: Labels): boolean {
  const entries = Object.entries(want ?? {});
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

/**
 * Whether `labels` satisfies a LabelSelector. As in `metav1.LabelSelectorAsSelector`, an absent
 * selector matches nothing and an empty one (`{}`) matches everything.
 */
export function matchesSelector(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (!selector) return false;
  const exact = Object.entries(selector.matchLabels ?? {});
  return exact.every(([key, value]) => labels[key] === value) &&
    (selector.matchExpressions ?? []).every((requirement) =>
      matchesRequirement(requirement, labels)
    );
}

function matchesRequirement(requirement: LabelSelectorRequirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, requirement.key);
  const inValues = has && (requirement.values ?? []).includes(labels[requirement.key]);
  switch (requirement.operator) {
    case "In":
      return inValues;
    case "NotIn":
      return !inValues;
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}
