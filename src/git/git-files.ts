/**
 * Reading refs and commits straight from a repository's files (its common git directory) instead
 * of starting a git process for each look: loose ref files, then `packed-refs`; loose commit
 * objects (zlib-deflated, `objects/xx/…`).
 *
 * Every answer is either certain or `undefined` — "cannot tell from the files, ask git": another
 * ref storage (`extensions.refStorage`), a name or a file in a shape not handled here, an object
 * that is packed, replace refs or grafts that change what git sees. Callers fall back to git then.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** Ref names read here: plain path segments only. */
const SAFE_NAME = /^(?!.*(?:^|\/)\.)(?!.*\.lock(?:\/|$))[A-Za-z0-9._/-]+$/;
/** Commits a walk reads at most before it leaves the answer to git. */
const WALK_LIMIT = 256;

export interface CommitFacts {
  tree: string;
  parents: string[];
}

export class GitFiles {
  private constructor(
    /** The common git directory (real path). */
    readonly common: string,
  ) {}

  /**
   * The files of the repository whose main working tree is `root` (its `.git` directory), or null
   * when they cannot be read plainly: no `.git` directory, or refs kept in another storage.
   */
  static of(root: string): GitFiles | null {
    const dir = path.join(root, '.git');
    let common: string;
    try {
      if (!fs.lstatSync(dir).isDirectory()) return null;
      common = fs.realpathSync(dir);
    } catch {
      return null;
    }
    return GitFiles.at(common);
  }

  /** The files of the common git directory `common`, or null when its refs are kept in another storage. */
  static at(common: string): GitFiles | null {
    const config = readOr(path.join(common, 'config'));
    if (config === null || /^\s*refstorage\s*=/im.test(config)) return null;
    return new GitFiles(common);
  }

  /**
   * The commit a full ref name (`refs/heads/main`, `HEAD`) points to: null when there is no such
   * ref, undefined when the files do not say plainly. Symbolic refs are followed.
   */
  ref(name: string, depth = 0): string | null | undefined {
    if (depth > 5 || !SAFE_NAME.test(name) || !(name.startsWith('refs/') || /^[A-Z_]+$/.test(name))) return undefined;
    const loose = this.looseRef(name);
    if (loose === undefined) return undefined;
    if (loose !== null) {
      if (SHA.test(loose)) return loose;
      const target = /^ref: (\S+)$/.exec(loose)?.[1];
      return target === undefined ? undefined : this.ref(target, depth + 1);
    }
    return name.startsWith('refs/') ? this.packedRef(name) : null;
  }

  /** The ref a loose symbolic ref names (`refs/remotes/origin/HEAD` → `refs/remotes/origin/main`); null when it is not one. */
  symref(name: string): string | null | undefined {
    if (!SAFE_NAME.test(name)) return undefined;
    const loose = this.looseRef(name);
    if (loose === undefined) return undefined;
    return loose === null ? null : (/^ref: (refs\/\S+)$/.exec(loose)?.[1] ?? null);
  }

  /**
   * A branch-like name as `git rev-parse NAME^{commit}` resolves it: a full `refs/…` name, else the
   * first of `NAME`, `refs/NAME`, `refs/tags/NAME`, `refs/heads/NAME`, `refs/remotes/NAME`,
   * `refs/remotes/NAME/HEAD` that exists. A tag is left to git (it may have to be peeled).
   */
  resolve(name: string): string | null | undefined {
    if (name.startsWith('refs/')) return name.startsWith('refs/tags/') ? undefined : this.ref(name);
    const candidates: [string, boolean][] = [
      [name, /^[A-Z_]+$/.test(name)],
      [`refs/${name}`, true],
      [`refs/tags/${name}`, true],
      [`refs/heads/${name}`, true],
      [`refs/remotes/${name}`, true],
      [`refs/remotes/${name}/HEAD`, true],
    ];
    for (const [candidate, possible] of candidates) {
      if (!possible) continue;
      const sha = this.ref(candidate);
      if (sha === undefined) return undefined;
      if (sha === null) continue;
      return candidate.startsWith('refs/tags/') ? undefined : sha;
    }
    return null;
  }

  /** A loose commit object's tree and parents; undefined when it is not a loose commit (packed, say). */
  commit(sha: string): CommitFacts | undefined {
    if (!SHA.test(sha)) return undefined;
    let text: string;
    try {
      text = zlib.inflateSync(fs.readFileSync(path.join(this.common, 'objects', sha.slice(0, 2), sha.slice(2)))).toString('latin1');
    } catch {
      return undefined;
    }
    const nul = text.indexOf('\0');
    if (!text.startsWith('commit ') || nul < 0) return undefined;
    const end = text.indexOf('\n\n', nul);
    const header = text.slice(nul + 1, end < 0 ? undefined : end).split('\n');
    const tree = /^tree ([0-9a-f]+)$/.exec(header[0] ?? '')?.[1];
    if (tree === undefined || !SHA.test(tree)) return undefined;
    const parents: string[] = [];
    for (const line of header.slice(1)) {
      const parent = /^parent ([0-9a-f]+)$/.exec(line)?.[1];
      if (parent === undefined) break;
      parents.push(parent);
    }
    return { tree, parents };
  }

  /**
   * Whether `tip` strictly descends from `base` (`base` is one of its ancestors and not `tip`
   * itself), found by walking `tip`'s loose commits back to `base`. True only when the walk reached
   * it; undefined otherwise (not found, a packed commit on the way, history git would see
   * differently through replace refs, grafts or a shallow clone): then git is asked.
   */
  descends(tip: string, base: string): true | undefined {
    if (tip === base || this.rewritesHistory()) return undefined;
    const seen = new Set<string>([tip]);
    const todo = [tip];
    for (let read = 0; todo.length > 0 && read < WALK_LIMIT; read += 1) {
      const facts = this.commit(todo.shift() as string);
      if (facts === undefined) return undefined;
      for (const parent of facts.parents) {
        if (parent === base) return true;
        if (!seen.has(parent)) {
          seen.add(parent);
          todo.push(parent);
        }
      }
    }
    return undefined;
  }

  /** Replace refs, grafts or a shallow clone: git's view of the history is not the objects' own. */
  private rewritesHistory(): boolean {
    if (fs.existsSync(path.join(this.common, 'shallow')) || fs.existsSync(path.join(this.common, 'info', 'grafts'))) return true;
    let replaced: string[] = [];
    try {
      replaced = fs.readdirSync(path.join(this.common, 'refs', 'replace'));
    } catch {
      // No refs/replace directory: none loose.
    }
    return replaced.length > 0 || (readOr(path.join(this.common, 'packed-refs')) ?? '').includes(' refs/replace/');
  }

  /** A loose ref file's text: null when there is none, undefined when it cannot be read plainly. */
  private looseRef(name: string): string | null | undefined {
    try {
      return fs.readFileSync(path.join(this.common, name), 'utf8').trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // EISDIR: `refs/heads/main` is a directory when only branches under `main/` exist.
      return code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR' ? null : undefined;
    }
  }

  /** A ref in `packed-refs`: null when it is not there. */
  private packedRef(name: string): string | null | undefined {
    const text = readOr(path.join(this.common, 'packed-refs'));
    if (text === null) return null;
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || line.startsWith('^')) continue;
      const space = line.indexOf(' ');
      if (line.slice(space + 1) === name) return SHA.test(line.slice(0, space)) ? line.slice(0, space) : undefined;
    }
    return null;
  }
}

/** A file's text, or null when it cannot be read. */
function readOr(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
