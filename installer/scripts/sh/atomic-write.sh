#!/bin/sh
# Write stdin to a file atomically (put: dotfile temp beside the target, fsync, rename, fsync the dir),
# only when it arrived whole: its sha256 is `sum`.
set -eu
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
target=$1 mode=$2 owner=$3 sum=$4
dir=$(dirname -- "$target") base=$(basename -- "$target")
mkdir -p -- "$dir"
umask 077
staged="$dir/.$base.kaudit-in.$$"
trap 'rm -f -- "$staged"' EXIT
cat > "$staged"
[ "$(sha "$staged")" = "$sum" ] || { echo "the data did not arrive whole" >&2; exit "$EXIT_PAYLOAD"; }
put "$staged" "$target" "$mode" "$owner"
