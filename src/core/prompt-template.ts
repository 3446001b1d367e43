/**
 * Prompt templates: the Markdown of a role file with `{{ name }}` placeholders. Which names exist,
 * and how they are filled: one pass, so text inside a substituted value is never expanded again.
 */

/** Names a prompt template may use as `{{ name }}`. */
export const TEMPLATE_VARIABLES: readonly string[] = [
  'repo',
  'role',
  'attempt',
  'issue.number',
  'issue.title',
  'issue.body',
  'pr.number',
  'branch',
  'base',
  'diff',
  'review',
  'test_command',
  'test_output',
  'open_issues',
  'open_proposals',
  'max_proposals',
];

/** `{{ name }}`: anything between double braces on one line is a placeholder, known or not. */
export const PLACEHOLDER = /\{\{[ \t]*([^{}\r\n]*?)[ \t]*\}\}/g;

/** The template with every `{{ name }}` replaced by `vars[name]` (an empty string when absent). */
export function fillTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (_match, placeholder: string) => (Object.hasOwn(vars, placeholder) ? (vars[placeholder] ?? '') : ''));
}
