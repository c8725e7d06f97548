#!/usr/bin/env bash
# Builds and runs a throwaway crate outside the workspace that depends on the engine the
# way a user would, by version (`strata-kv = "0.1.0"`), resolved to the packaged
# `.crate` files of this checkout. Nothing is published: `[patch.crates-io]` points
# each package name at its unpacked `.crate`, so the build sees exactly what
# `cargo publish` would upload (manifests rewritten, only the packaged files), not the
# workspace's sources. It catches what the workspace cannot: a file left out of a
# package, a dependency declared only by path, a re-export that is not public.
#
# Usage: .ci/external-crate.sh   (from anywhere; honours CARGO_TARGET_DIR for packaging)
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every package that may be published, read from the manifests (publish = false shows
# as an empty registry list) so a new publishable crate is covered without editing this.
mapfile -t packages < <(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["publish"] is None or p["publish"]:
        print(p["name"], p["version"])
')
if [ "${#packages[@]}" -eq 0 ]; then
    echo "external-crate: no publishable packages found" >&2
    exit 1
fi

# Package them (the dry run in .ci/run has already verified that each one builds on its
# own; here only the archives are needed). --allow-dirty: a developer may run this
# before committing.
specs=()
for p in "${packages[@]}"; do specs+=(-p "${p%% *}"); done
cargo package --quiet --no-verify --allow-dirty "${specs[@]}"

target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$tmp/packages"
patches=""
for p in "${packages[@]}"; do
    name=${p%% *}
    version=${p##* }
    tar -xzf "$target_dir/package/$name-$version.crate" -C "$tmp/packages"
    patches+="$name = { path = \"$tmp/packages/$name-$version\" }"$'\n'
done
engine_version=$(printf '%s\n' "${packages[@]}" | sed -n 's/^strata-kv \(.*\)$/\1/p')
if [ -z "$engine_version" ]; then
    echo "external-crate: the engine package strata-kv is not publishable" >&2
    exit 1
fi

mkdir -p "$tmp/app/src"
cat >"$tmp/app/Cargo.toml" <<EOF
[package]
name = "strata-user-app"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
strata-kv = "=$engine_version"

# Nothing is on crates.io yet: each package name resolves to its packaged archive.
[patch.crates-io]
$patches
# Outside every workspace, like a user's own crate.
[workspace]
EOF

# Uses only what the README promises: the engine's crate root, no other dependency.
cat >"$tmp/app/src/main.rs" <<'EOF'
use strata::{Bytes, Db, DbBuilder, WriteBatch, WriteOptions};

fn main() -> Result<(), strata::Error> {
    let dir = std::env::temp_dir().join(format!("strata-user-app-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let db = Db::open(&dir)?;
    db.put("user:1", "ada")?;
    let mut batch = WriteBatch::new();
    batch.put("user:2", "grace").delete("user:1");
    db.write(batch, WriteOptions { sync: true })?;
    db.flush()?;
    db.close()?;

    // Reopened from disk: the flushed table and the WAL both read back.
    let db = Db::open(&dir)?;
    let value: Option<Bytes> = db.get("user:2")?;
    assert_eq!(value.as_deref(), Some(&b"grace"[..]));
    assert_eq!(db.get("user:1")?, None);
    assert_eq!(db.prefix("user:").count(), 1);
    db.close()?;
    std::fs::remove_dir_all(&dir).map_err(|e| strata::Error::io("cleanup", e))?;

    let mem = DbBuilder::in_memory().open()?;
    mem.put("k", "v")?;
    assert_eq!(mem.get("k")?.as_deref(), Some(&b"v"[..]));

    println!("external crate: strata-kv opened, wrote and read back a database");
    Ok(())
}
EOF

# Its own target directory: the workspace's profiles do not apply out here, so nothing
# could be shared with the workspace's build anyway.
cd "$tmp/app"
CARGO_TARGET_DIR="$tmp/target" cargo run --quiet
