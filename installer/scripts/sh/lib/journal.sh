# shellcheck shell=sh
# The journal (STATE/journal): one JSON object per line, in the one form installer/change/journal.py
# `encode` makes: compact, id, state and at first. Older kaudit versions wrote spaced lines
# ({"id": "X", "state": "S", ...}): the readers match either.

# journal_add FILE ID STATE: append {"id":"ID","state":"STATE","at":NOW} (`now` of common.sh; ids and
# states are kaudit's own: no character JSON would escape).
journal_add() {
  printf '{"id":"%s","state":"%s","at":%s}\n' "$2" "$3" "$(now)" >> "$1" || return 1
  sync -- "$1" 2>/dev/null || sync
}
# journal_append FILE LINE: append an entry kaudit encoded (journal.encode), as it is.
journal_append() {
  printf '%s\n' "$2" >> "$1" || return 1
  sync -- "$1" 2>/dev/null || sync
}
# journal_match FILE ID STATE: the entries with that id and state ("" for any), oldest first. The
# `"id":"ID"` and `"state":"STATE"` tokens are found wherever they stand, spaces around the colon
# ignored. (Inside a JSON string every quote is escaped, so a value cannot fake a token.)
journal_match() {
  [ -f "$1" ] || return 0
  jm_id=$2 jm_state=$3 awk '
    function has(key, value) { return value == "" || index(tokens, "\"" key "\":\"" value "\"") > 0 }
    { tokens = $0; gsub(/"[ \t]*:[ \t]*"/, "\":\"", tokens) }
    has("id", ENVIRON["jm_id"]) && has("state", ENVIRON["jm_state"])' "$1"
}
# journal_has FILE ID STATE: whether such an entry exists (exit status).
journal_has() { [ -n "$(journal_match "$@" | head -n 1)" ]; }
