#!/usr/bin/env bash
# Mutation testing of the protocol driver and the decision core (`cargo mutants`): each mutant
# (a function's body replaced, an operator or a condition flipped, a match arm deleted) is built
# and the library's manager tests run against it (the driver's and the decision core's unit tests,
# and the fleet simulation at $SIMULATION_HISTORIES histories). A mutant the tests do not catch
# is listed in mutants.out/missed.txt: kill it with a test, or show it is equivalent.
#
#   bash .ci/mutants.sh                                   # everything: ~290 mutants, hours on 2 cores
#   bash .ci/mutants.sh --file src/manager/state/decide.rs  # one file
#   bash .ci/mutants.sh --shard 0/4                         # a quarter (for several machines)
#
# Not run by `.ci/run` (it takes hours); installs cargo-mutants if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export SIMULATION_HISTORIES="${SIMULATION_HISTORIES:-300}"
if ! command -v cargo-mutants >/dev/null; then
  cargo install --locked cargo-mutants
fi
files=(--file src/manager/driver.rs --file 'src/manager/state/*.rs'
  --exclude src/manager/state/tests.rs)
if [[ " $* " == *" --file "* ]]; then files=(); fi
exec cargo mutants "${files[@]}" --test-tool cargo --cargo-test-arg=--lib \
  --cargo-test-arg=-- --cargo-test-arg=manager:: --timeout 40 "$@"
