#!/usr/bin/env bash
# Deletes each protocol check of the manager in turn (one edit of the source, undone after) and
# requires the library's tests (the driver's and the decision core's unit tests, and the fleet
# simulation) to fail without it. A check whose deletion passes the tests is unproven.
#
#   bash .ci/protocol-checks.sh            # every check, 2,000 histories per simulation test
#   SIMULATION_HISTORIES=500 bash .ci/protocol-checks.sh "in-flight wait"
set -euo pipefail
cd "$(dirname "$0")/.."
export SIMULATION_HISTORIES="${SIMULATION_HISTORIES:-2000}"

# name | file | perl substitution (the whole file is one string: -0)
checks=(
  "lease check after the mark|src/manager/driver.rs|s/self\.keep_lease\(Check::AfterMark, now\);/self.lease_kept(Check::AfterMark);/"
  "fingerprint check|src/manager/state/decide.rs|s/if state\.knows_rotated\(&policy\.fingerprints, &tokens\.refresh_token\) \{\n            return Step::Fail\(/if false \{\n            return Step::Fail(/"
  "went-back check|src/manager/state/reconcile.rs|s/let went_back = stored\.lineage\.mark\(\) < state\.seen \|\| lost_mark;/let went_back = false && lost_mark;/"
  "lost-mark check|src/manager/state/reconcile.rs|s/let went_back = stored\.lineage\.mark\(\) < state\.seen \|\| lost_mark;/let went_back = stored.lineage.mark() < state.seen;/"
  "outage wait|src/manager/state/decide.rs|s/let after_outage = state\n        \.store_back\n        \.map\(/let after_outage = None::<Duration>\n        .map(/"
  "in-flight wait|src/manager/state/decide.rs|s/let in_flight_until =\n        seen_at\.map\(/let in_flight_until =\n        None::<Duration>.map(/"
  "read between wait slices|src/manager/driver.rs|s/if news \|\| now >= until \{/if now >= until {/"
)

unproven=0
for check in "${checks[@]}"; do
  IFS='|' read -r name file edit <<<"$check"
  if [ "$#" -gt 0 ] && [[ ! " $* " == *" $name "* ]]; then continue; fi
  cp "$file" "$file.orig"
  perl -0pi -e "$edit" "$file"
  if cmp -s "$file" "$file.orig"; then
    mv "$file.orig" "$file"
    echo "== $name: the edit no longer applies to $file (update this script)"
    unproven=1
    continue
  fi
  if cargo test --all-features --locked --lib >/tmp/protocol-check.log 2>&1; then
    echo "== $name: deleted, and the tests still pass: UNPROVEN"
    unproven=1
  elif ! grep -q '^test .* FAILED$' /tmp/protocol-check.log; then
    # A deletion that does not compile proves nothing about the tests.
    echo "== $name: deleted, but the crate did not build (update this script):"
    grep -m5 '^error' /tmp/protocol-check.log | sed 's/^/     /' || true
    unproven=1
  else
    echo "== $name: deleted, the tests fail:"
    grep -E '^test .* FAILED$|FAILURE: ' /tmp/protocol-check.log | sed 's/^/     /' | head -6 || true
  fi
  mv "$file.orig" "$file"
done
exit "$unproven"
