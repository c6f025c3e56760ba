// Kubernetes metav1.LabelSelector semantics: every matchLabels pair and every expression must hold.
import type { LabelSelector } from '../config/schema.ts'

/**
 * Whether `labels` satisfy a metav1.LabelSelector: every matchLabels pair and every expression (Exists,
 * DoesNotExist, In, NotIn). An empty selector matches everything, as in Kubernetes.
 */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false
  }
  for (const expression of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, expression.key)
    const values = expression.values ?? []
    switch (expression.operator) {
      case 'Exists': if (!has) return false; break
      case 'DoesNotExist': if (has) return false; break
      case 'In': if (!has || !values.includes(labels[expression.key]!)) return false; break
      case 'NotIn': if (has && values.includes(labels[expression.key]!)) return false; break
    }
  }
  return true
}
