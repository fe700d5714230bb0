#!/bin/sh
# Print a file; a missing one is EXIT_MISSING (an unreadable one is cat's own error).
# shellcheck source=lib/exit-codes.sh
. "$(dirname "$0")/lib/exit-codes.sh"  # kaudit:include
path=$1
if [ -e "$path" ]; then cat -- "$path"; else exit "$EXIT_MISSING"; fi
