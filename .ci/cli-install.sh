#!/usr/bin/env bash
# The command-line tool installs with `cargo install --path` and inspects a database the
# engine made (issue 19: "the CLI installs ... and inspects a database made by the
# engine"). Reuses the workspace's build directory, so it costs an install, not a build.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo install --quiet --locked --debug --path crates/cli --root "$work/install" --target-dir "${CARGO_TARGET_DIR:-target}"
strata="$work/install/bin/strata"

# A database made by the engine (the demo keeps its files with --dir).
cargo run --quiet -p xtask -- demo --keys 20000 --records 10 --dir "$work/demo" >/dev/null

"$strata" --version
"$strata" stats "$work/demo/db"
"$strata" verify "$work/demo/db" | tail -n 1
"$strata" scan "$work/demo/db" --limit 3
echo "cli-install: ok"
