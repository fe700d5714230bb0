#!/bin/sh
# Write stdin to a file atomically (put: dotfile temp beside the target, fsync, rename, fsync the dir).
set -eu
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
target=$1 mode=$2 owner=$3
dir=$(dirname -- "$target") base=$(basename -- "$target")
mkdir -p -- "$dir"
umask 077
staged="$dir/.$base.kaudit-in.$$"
trap 'rm -f -- "$staged"' EXIT
cat > "$staged"
put "$staged" "$target" "$mode" "$owner"
