#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after the other, in one
# process each; fails if any of them crashes. Not part of CI.
#
#   bash fuzz/run.sh                    # 60 s per target
#   FUZZ_SECONDS=300 bash fuzz/run.sh   # longer
#   bash fuzz/run.sh csv_import         # some targets only
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP lets it take the
# nightly flags cargo-fuzz passes (`cargo install cargo-fuzz --locked`).
# New inputs go to a scratch corpus, so the committed one stays small;
# a crashing input lands in fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo fuzz build
failed=()
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    mkdir -p "$scratch/$target"
    if ! cargo fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crash in: ${targets[*]}"
