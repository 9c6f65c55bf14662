#!/usr/bin/env bash
# Every feature on its own, and none, builds (library, command, tests, examples, benches) without
# a warning; then the test command a user runs first, with the default features.
#
#   bash .ci/features.sh
#
# `--lib --bins` checks exactly what a dependent gets with those features. `--all-targets` adds
# the tests, examples and benches, which always have `testing` and `middleware` too (the crate's
# dev-dependency on itself enables them).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# The fleet simulation runs at full size in the all-features tests; here it only has to pass.
export SIMULATION_HISTORIES="${SIMULATION_HISTORIES:-500}"

features=$(sed -n '/^\[features\]/,/^\[/p' Cargo.toml | grep -oE '^[a-z][a-z_-]*' | grep -vx default)
for feature in none $features; do
    if [ "$feature" = none ]; then flags=(--no-default-features); else flags=(--no-default-features --features "$feature"); fi
    echo "--- ${feature}"
    cargo clippy --locked --lib --bins "${flags[@]}" -- -D warnings
    cargo clippy --locked --all-targets "${flags[@]}" -- -D warnings
done

echo "--- default features: cargo test --locked"
cargo test --locked --quiet
