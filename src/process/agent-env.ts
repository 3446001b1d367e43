/**
 * The environment an agent or role command gets: an allowlist of the caller's variables plus
 * Loom's context variables. Nothing else passes, so tracker tokens (GITHUB_TOKEN, GH_TOKEN, ...)
 * never reach an agent.
 */

const ALLOWED = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TERM', 'TMPDIR', 'TZ', 'NODE_OPTIONS', 'NODE_PATH', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
const ALLOWED_PREFIXES = ['LC_', 'GIT_AUTHOR_', 'GIT_COMMITTER_', 'XDG_'];

export function agentEnv(base: NodeJS.ProcessEnv, context: Record<string, string>, extra: readonly string[] = []): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (ALLOWED.includes(key) || extra.includes(key) || ALLOWED_PREFIXES.some((p) => key.startsWith(p))) env[key] = value;
  }
  return { ...env, ...context };
}
