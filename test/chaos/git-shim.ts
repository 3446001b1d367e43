/**
 * A `git` put first on the daemon's PATH: it passes every call to the real git, and fires the
 * crash windows that are armed (`<run>/arm/<point>-<issue>`) at the git step they follow or
 * precede. Firing is once (the arm file is moved to `fired/`), SIGKILLs the nearest Loom
 * shepherd, shepherd host or role process above the git call, and is logged in `<run>/fired.log`.
 *
 * - after `commit` of "Changes the builder left uncommitted" in issue-N's worktree: leftover-committed
 * - after `push ... HEAD:refs/heads/loom/issue-N`: pushed
 * - after `merge --ff-only <merge>` / `update-ref refs/heads/main <merge>` of "Merge #N:": main-moved
 * - instead of `worktree remove .../issue-N`: worktree-remove
 * - instead of `branch -D loom/issue-N`: branch-delete
 */
export function gitShim(realGit: string, runDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
REAL=${q(realGit)}
DIR=${q(runDir)}
case "$1" in
  merge|update-ref) ;;
  *) [ -n "$(ls -A "$DIR/arm" 2>/dev/null)" ] || exec "$REAL" "$@" ;;
esac

now() { date +%s%3N; }
fire() { [ -e "$DIR/arm/$1" ] && mv "$DIR/arm/$1" "$DIR/fired/$1" 2>/dev/null; }
kill_owner() {
  p=$$
  while [ "$p" -gt 1 ]; do
    if tr '\\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -Eq 'main\\.js (shepherd|shepherd-host|role) '; then
      echo "$(now) $1 killed $p $(tr '\\0' ' ' < "/proc/$p/cmdline")" >> "$DIR/fired.log"
      kill -9 "$p"
      return 0
    fi
    p=$(sed 's/^.*) //' "/proc/$p/stat" | cut -d' ' -f2)
  done
  echo "$(now) $1 found no Loom process above git" >> "$DIR/fired.log"
}
issue_of() { n=\${1##*issue-}; echo "\${n%%[!0-9]*}"; }

args="$*"
case "$args" in
  "worktree remove "*issue-*)
    n=$(issue_of "$args")
    if fire "worktree-remove-$n"; then kill_owner "worktree-remove-$n"; exit 1; fi ;;
  "branch -D loom/issue-"*)
    n=$(issue_of "$args")
    if fire "branch-delete-$n"; then kill_owner "branch-delete-$n"; exit 1; fi ;;
esac

"$REAL" "$@"
code=$?
[ "$code" -eq 0 ] || exit "$code"

case "$args" in
  *"commit "*"builder left uncommitted"*)
    case "$PWD" in
      */worktrees/issue-*) n=$(issue_of "$PWD"); if fire "leftover-committed-$n"; then kill_owner "leftover-committed-$n"; fi ;;
    esac ;;
  "push "*"HEAD:refs/heads/loom/issue-"*)
    n=$(issue_of "$args")
    if fire "pushed-$n"; then kill_owner "pushed-$n"; fi ;;
  "merge "*"--ff-only "*|"update-ref refs/heads/main "*)
    if [ "$1" = merge ]; then eval "sha=\\\${$#}"; else sha=$3; fi
    echo "$(now) $sha" >> "$DIR/main.log"
    subject=$("$REAL" log -1 --format=%s "$sha" 2>/dev/null)
    case "$subject" in
      "Merge #"*) n=\${subject#Merge #}; n=\${n%%:*}; if fire "main-moved-$n"; then kill_owner "main-moved-$n"; fi ;;
    esac ;;
esac
exit 0
`;
}
