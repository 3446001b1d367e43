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

/** `{{=text}}` is not a placeholder but the literal `{{text}}` (an escape for prompts that need braces). */
export const LITERAL_PREFIX = '=';

/**
 * The template with every `{{ name }}` replaced by `vars[name]` (an empty string when absent),
 * and every `{{=text}}` by the literal `{{text}}`.
 */
export function fillTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (match, placeholder: string) => {
    if (placeholder.startsWith(LITERAL_PREFIX)) return match.replace(/^\{\{([ \t]*)=/, '{{$1');
    return Object.hasOwn(vars, placeholder) ? (vars[placeholder] ?? '') : '';
  });
}
