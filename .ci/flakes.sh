#!/usr/bin/env bash
# Runs the whole all-features test suite several times in a row with more test threads than the
# machine has cores, to show that no test depends on timing under load or on another test.
#
#   bash .ci/flakes.sh [RUNS (5)] [THREADS (cores × 4)]
#
# Not in CI (5 runs take about 40 minutes on 2 cores). The test binaries are built once and
# copied, so building something else meanwhile cannot swap them mid-run; any failure stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
threads="${2:-$(($(nproc) * 4))}"
copy="$(mktemp -d)"
trap 'rm -rf "$copy"' EXIT
# The test harnesses only (cargo's artifacts built with the test profile), not the command; each
# runs in its package's directory, as `cargo test` runs it.
cargo test --all-features --locked --no-run --message-format=json 2>/dev/null |
    grep -E '"profile":\{[^}]*"test":true' |
    sed -E 's/.*"manifest_path":"([^"]+)".*"executable":"([^"]+)".*/\1 \2/' |
    while read -r manifest binary; do
        cp "$binary" "$copy/"
        echo "$(dirname "$manifest") $copy/$(basename "$binary")" >>"$copy/list"
    done
echo "$(wc -l <"$copy/list") test binaries, $runs runs, --test-threads=$threads"
for run in $(seq "$runs"); do
    started=$(date +%s)
    while read -r dir binary; do
        (cd "$dir" && "$binary" --test-threads="$threads" -q) >"$copy/log" 2>&1 || {
            cat "$copy/log"
            echo "run $run: $(basename "$binary") FAILED"
            exit 1
        }
    done <"$copy/list"
    echo "run $run: every test binary passed in $(($(date +%s) - started)) s"
done
