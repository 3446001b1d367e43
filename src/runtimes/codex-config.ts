/**
 * What Loom needs to know from a Codex `config.toml`: which model provider a run will use, and
 * whether it is one the config declares (`[model_providers.<id>]`) — only a declared provider's
 * retry settings can be changed; the CLI refuses to override its built-in providers (`openai`,
 * `ollama`, ...). A small line scanner, not a TOML parser: it reads top-level and table-level
 * `key = "string"` / `key = 123` pairs, which is how these settings are written.
 */

/** A provider the config declares, with the retry settings it gives (undefined: the CLI's default). */
export interface DeclaredProvider {
  id: string;
  requestMaxRetries: number | undefined;
  streamMaxRetries: number | undefined;
}

type Table = Map<string, string | number>;

/** Top-level pairs under `''`, each `[table]`'s under its dotted name with quotes removed. */
function scan(text: string): Map<string, Table> {
  const tables = new Map<string, Table>([['', new Map()]]);
  let current = tables.get('')!;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[([^[\]]+)\]\s*(?:#.*)?$/.exec(line);
    if (header !== null) {
      const name = header[1]!
        .split('.')
        .map((part) => part.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'))
        .join('.');
      current = tables.get(name) ?? new Map<string, string | number>();
      tables.set(name, current);
      continue;
    }
    if (line.startsWith('[')) {
      // An array of tables (`[[...]]`): nothing Loom reads, and its pairs must not land in the previous table.
      current = new Map();
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(-?\d+))\s*(?:#.*)?$/.exec(line);
    if (pair === null) continue;
    const value = pair[2] ?? pair[3] ?? Number(pair[4]);
    current.set(pair[1]!, value);
  }
  return tables;
}

/** The value of `-c key=value` / `--config key=value` in `args` (the last one wins), unquoted. */
function configOverride(args: readonly string[], key: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    let pair: string | undefined;
    if ((arg === '-c' || arg === '--config') && i + 1 < args.length) pair = args[i + 1];
    else if (arg.startsWith('--config=')) pair = arg.slice('--config='.length);
    if (pair === undefined) continue;
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === key) found = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return found;
}

/** The `--profile P` / `-p P` in `args`, if any. */
function profileArg(args: readonly string[]): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if ((arg === '--profile' || arg === '-p') && i + 1 < args.length) found = args[i + 1];
    else if (arg.startsWith('--profile=')) found = arg.slice('--profile='.length);
  }
  return found;
}

/**
 * The provider a `codex exec` with `args` and this `config.toml` text uses, when the config
 * declares it; null for a built-in provider (or one Loom cannot tell). Precedence as in the CLI:
 * `-c model_provider=…`, then the selected profile's `model_provider`, then the top level.
 */
export function declaredProvider(configText: string, args: readonly string[]): DeclaredProvider | null {
  const tables = scan(configText);
  const top = tables.get('')!;
  const profile = profileArg(args) ?? configOverride(args, 'profile') ?? stringOf(top.get('profile'));
  const fromProfile = profile === undefined ? undefined : stringOf(tables.get(`profiles.${profile}`)?.get('model_provider'));
  const id = configOverride(args, 'model_provider') ?? fromProfile ?? stringOf(top.get('model_provider')) ?? 'openai';
  const table = tables.get(`model_providers.${id}`);
  if (table === undefined) return null;
  return { id, requestMaxRetries: countOf(table.get('request_max_retries')), streamMaxRetries: countOf(table.get('stream_max_retries')) };
}

/**
 * `-c` overrides capping a declared provider's own retries at `limit` (a lower setting in the
 * config is kept); none for a built-in provider, or an id the `-c` syntax cannot address.
 */
export function codexRetryOverrides(configText: string, args: readonly string[], limit: number): string[] {
  const provider = declaredProvider(configText, args);
  if (provider === null || !/^[A-Za-z0-9_-]+$/.test(provider.id)) return [];
  const request = Math.min(limit, provider.requestMaxRetries ?? limit);
  const stream = Math.min(limit, provider.streamMaxRetries ?? limit);
  return ['-c', `model_providers.${provider.id}.request_max_retries=${request}`, '-c', `model_providers.${provider.id}.stream_max_retries=${stream}`];
}

function stringOf(value: string | number | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function countOf(value: string | number | undefined): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}
