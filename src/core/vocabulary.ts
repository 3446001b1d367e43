/**
 * Loom's vocabulary: the names of roles and agent runtimes. Plain data shared by every layer; the
 * label names live in labels.ts.
 */
export const SUPPORT_ROLES = ['guide', 'champion', 'doctor', 'judge', 'curator'] as const;
export const GENERATOR_ROLES = ['architect', 'hermit'] as const;
export const ROLE_NAMES = ['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide', 'champion'] as const;

export type SupportRole = (typeof SUPPORT_ROLES)[number];
export type GeneratorRole = (typeof GENERATOR_ROLES)[number];
export type RoleName = (typeof ROLE_NAMES)[number];
/** Roles the daemon runs as background processes (`loom role <name>`). */
export type DaemonRole = SupportRole | GeneratorRole;
export const DAEMON_ROLES: readonly DaemonRole[] = [...GENERATOR_ROLES, ...SUPPORT_ROLES];

/** Agent runtimes a role can use. */
export const RUNTIME_NAMES = ['script', 'command', 'claude', 'codex', 'gemini', 'opencode'] as const;
export type RuntimeChoice = (typeof RUNTIME_NAMES)[number];
