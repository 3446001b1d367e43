#!/bin/sh
# The chaos suite's agent: one command for the builder, judge and doctor roles, run by Loom's
# `command` runtime. It behaves as its issue's plan file says (written by the harness from
# test/chaos/scenario.ts) and journals when it starts and ends.
#
# Usage: sh agent.sh <run dir>
dir=$1
n=${LOOM_ISSUE:-0}
role=${LOOM_ROLE:-unknown}
attempt=${LOOM_ATTEMPT:-1}
BUILDER=commit
JUDGE=approve
DELAY=0.3
CRASH=
REASON=none
[ -f "$dir/plan/issue-$n" ] && . "$dir/plan/issue-$n"

now() { date +%s%3N; }
journal() { echo "$1 $role $n $(now) $$" >> "$dir/journal"; }
# True the first time crash point $1 is reached for this issue, false ever after.
once() { mkdir "$dir/fired/agent-$1-$n" 2>/dev/null; }
# SIGKILLs the nearest ancestor that is a Loom shepherd, shepherd host or role process.
kill_owner() {
  p=$$
  while [ "$p" -gt 1 ]; do
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -Eq 'main\.js (shepherd|shepherd-host|role) '; then
      echo "$(now) $1 $n killed $p $(tr '\0' ' ' < "/proc/$p/cmdline")" >> "$dir/fired.log"
      kill -9 "$p"
      return 0
    fi
    p=$(sed 's/^.*) //' "/proc/$p/stat" | cut -d' ' -f2)
  done
}
commit() { git add -A && git -c user.name=Chaos -c user.email=chaos@localhost commit -qm "$1"; }

# Two agents writing one issue's worktree at once must never happen: the second journals `overlap`.
if [ "$role" = builder ] || [ "$role" = doctor ]; then
  mkdir -p "$dir/locks"
  exec 9>"$dir/locks/issue-$n"
  flock -n 9 || journal overlap
fi
journal start

case "$role" in
  builder)
    echo "building #$n ($BUILDER, attempt $attempt)"
    case "$BUILDER" in
      silent) exec sleep 3600 ;;
      chatty) while :; do echo "still thinking about #$n"; sleep 0.2; done ;;
      fail) echo "cannot build #$n"; journal end; exit 1 ;;
      nothing) sleep "$DELAY"; echo "done"; journal end; exit 0 ;;
      no-change) sleep "$DELAY"; echo "NO CHANGES NEEDED: $REASON"; journal end; exit 0 ;;
    esac
    sleep "$DELAY"
    mkdir -p chaos
    printf 'issue %s\n' "$n" > "chaos/issue-$n.txt"
    [ "$BUILDER" = commit ] && commit "#$n: chaos change"
    if [ "$CRASH" = builder-committed ] && once "$CRASH"; then kill_owner "$CRASH"; fi
    echo "built #$n"
    ;;
  judge)
    sleep 0.1
    if [ "$CRASH" = judge-killed ] && once "$CRASH"; then
      echo "$(now) judge-killed $n killed $$ the judge agent itself" >> "$dir/fired.log"
      kill -9 $$
    fi
    if [ "$CRASH" = judging ] && once "$CRASH"; then kill_owner "$CRASH"; fi
    echo "Reviewed #$n."
    if [ "$JUDGE" = changes-once ] && [ "$attempt" = 1 ]; then echo "VERDICT: REQUEST_CHANGES"; else echo "VERDICT: APPROVE"; fi
    ;;
  doctor)
    sleep 0.2
    mkdir -p chaos
    printf 'issue %s, doctor attempt %s\n' "$n" "$attempt" >> "chaos/issue-$n.doctor.txt"
    commit "#$n: address the review"
    if [ "$CRASH" = doctor-committed ] && once "$CRASH"; then kill_owner "$CRASH"; fi
    echo "fixed #$n"
    ;;
esac
journal end
