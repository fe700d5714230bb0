# shellcheck shell=sh
# Exit codes with a meaning for kaudit (installer/scripts/exitcodes.py has the same names and values).
# shellcheck disable=SC2034  # each script uses some of them
EXIT_MISSING=44 EXIT_CONFLICT=65 EXIT_NO_BACKUP=66 EXIT_GUARD_RESTORED=67 EXIT_TAMPERED=68 EXIT_PAYLOAD=69 EXIT_UNSAFE=70 EXIT_LOCK_HELD=75
