#!/usr/bin/env bash
# Proves that upstream's likely changes regenerate with zero hand edits: copies the crate (its
# tracked files, as a fresh clone has them), drops in each variant of openapi.json made by
# `genlogs-auth-tools variants` (tools/src/variants.rs), and builds the library on each. Every variant but
# the truncated one must build, and its change report must contain the expected line; the
# truncated one must fail with the JSON position. Prints one table row per variant. Where
# building is not proof enough, a variant names loopback tests (`tests/it`) to run on its copy.
#
#   bash .ci/variants.sh
#
# The copy shares this checkout's target directory, so dependencies are already built (with the
# features `cargo test` uses) and only the copy's crates recompile per variant. It builds the
# library and its unit tests (`cargo test --lib --no-run`).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_TERM_COLOR=never
started=$(date +%s)

cargo build --locked --quiet -p genlogs-auth-tools --bins
bin="$CARGO_TARGET_DIR/debug"
variants="$CARGO_TARGET_DIR/spec-variants/files"
copy="$CARGO_TARGET_DIR/spec-variants/crate" # a fixed path: cargo reuses its fingerprints
rm -rf "$variants" "$copy"
mkdir -p "$copy"
"$bin/genlogs-auth-tools" variants openapi.json "$variants"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$copy"
# cargo names a workspace member's artifacts by its name and its path *inside* the workspace, so
# the copy's would overwrite this checkout's in the shared target directory (and force a rebuild
# here afterwards). Renamed packages get artifacts of their own; the library names stay, so the
# code compiles exactly as it is. The lock file then changes only for these two path packages.
sed -i 's/^name = "genlogs-auth"$/name = "genlogs-auth-variant"/; s/^genlogs-auth-codegen = { path = "codegen" }$/genlogs-auth-codegen = { path = "codegen", package = "genlogs-auth-codegen-variant" }/; s/^genlogs-auth = { path = "\.", features = /genlogs-auth = { path = ".", package = "genlogs-auth-variant", features = /; s/^genlogs-auth-tools = { path = "tools" }$/genlogs-auth-tools = { path = "tools", package = "genlogs-auth-tools-variant" }/' "$copy/Cargo.toml"
sed -i 's/^name = "genlogs-auth-codegen"$/name = "genlogs-auth-codegen-variant"/' "$copy/codegen/Cargo.toml"
sed -i 's/^name = "genlogs-auth-tools"$/name = "genlogs-auth-tools-variant"/; s/^genlogs-auth-codegen = { path = "..\/codegen" }$/genlogs-auth-codegen = { path = "..\/codegen", package = "genlogs-auth-codegen-variant" }/' "$copy/tools/Cargo.toml"
# A dependency line the renames above missed would make every variant fail for the wrong reason.
if grep -qE '^genlogs-auth(-codegen|-tools)? = \{ path = "[^"]*"(, features = [^}]*)? \}$' "$copy/Cargo.toml" "$copy/tools/Cargo.toml"; then
    echo "variants.sh: a path dependency on this crate was not renamed in the copy's Cargo.toml" >&2
    exit 1
fi
printf '\n[lib]\nname = "genlogs_auth"\n' >>"$copy/Cargo.toml"
printf '\n[lib]\nname = "genlogs_auth_codegen"\n' >>"$copy/codegen/Cargo.toml"
printf '\n[lib]\nname = "genlogs_auth_tools"\n' >>"$copy/tools/Cargo.toml"

failures=0
fail() {
    echo "FAIL $1: $2" >&2
    failures=$((failures + 1))
}
printf '| variant | builds | s | change report line |\n|---|---|---|---|\n'
for expect in "$variants"/*.expect; do
    name=$(basename "$expect" .expect)
    variant_started=$(date +%s)
    builds=$(sed -n 's/^builds //p' "$expect")
    cp "$variants/$name.json" "$copy/openapi.json"
    log="$variants/$name.log"
    if cargo test --offline --lib --no-run --manifest-path "$copy/Cargo.toml" >"$log" 2>&1; then
        built=yes
    else
        built=no
    fi
    [ "$built" = "$builds" ] || fail "$name" "builds: $built, expected $builds; see $log"
    if [ "$builds" = yes ]; then
        line=$(sed -n 's/^report //p' "$expect")
        "$bin/genlogs-auth-tools" diff openapi.json "$variants/$name.json" >"$variants/$name.report" ||
            fail "$name" "genlogs-auth-tools diff exited $?"
        grep -qxF -- "$line" "$variants/$name.report" ||
            fail "$name" "the change report lacks \`$line\`: $(cat "$variants/$name.report")"
        # Loopback tests where building is not proof enough (an unlisted enum value decodes).
        for test in $(sed -n 's/^test //p' "$expect"); do
            if cargo test --offline --test it --manifest-path "$copy/Cargo.toml" -- --exact "$test" >>"$log" 2>&1 &&
                grep -q "test result: ok. 1 passed" "$log"; then
                line="$line; \`$test\` passed"
            else
                fail "$name" "the loopback test $test did not pass; see $log"
            fi
        done
    else
        line=$(sed -n 's/^error //p' "$expect")
        grep -qF -- "$line" "$log" || fail "$name" "the build did not fail with \`$line\`; see $log"
    fi
    printf '| %s | %s | %s | `%s` |\n' "$name" "$built" "$(($(date +%s) - variant_started))" "$(echo "$line" | tr -s ' ')"
done
echo "VARIANTS $(ls "$variants"/*.expect | wc -l) variants in $(($(date +%s) - started)) s, $failures failed"
[ "$failures" = 0 ]
