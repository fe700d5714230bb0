#!/bin/sh
# A node's audit log, for `kaudit logs`, `simulate` and `tune` (the one node-side reader): the rotated
# files (lumberjack's <stem>-<timestamp><ext>[.gz]) whose time range overlaps since..until (lumberjack name
# form, "" for none), oldest first, then the live log, each cut to `max` bytes per line (NULs dropped
# first) and prefiltered by fixed-string groups (after the named parameters: one argument each,
# alternatives separated by newlines, every group must match; none: every line). Framing: `@file gz|raw
# PATH`, base64 lines, `@end` per file; `@missing PATH` when there is no live log; `@error KIND PATH` for
# a file that cannot be read as a log; `@done`.
# Odd files (issue 23 item 10): paths are globbed and quoted, never word-split (a space in --log-path);
# a name holding a newline (which would break the stream's framing) is skipped; every line is cut at
# `max` bytes before grep sees it (`cut -b`: GNU cut streams a long line, busybox's holds one line
# whole) and NUL bytes (a sparse file's holes; never in JSON) are dropped first (`tr` streams
# everywhere), so a sparse file is never one huge line and, with GNU coreutils, memory stays bounded.
set -u
p=$1 since=$2 until=$3 max=$4
shift 4
LC_ALL=C; export LC_ALL
nl='
'
d=$(dirname -- "$p"); b=$(basename -- "$p")
case $b in *.*) stem=${b%.*}; ext=.${b##*.};; *) stem=$b; ext=;; esac
z=0; command -v gzip >/dev/null 2>&1 && z=1
if base64 -w 0 </dev/null >/dev/null 2>&1; then enc() { base64 -w 65536; }; else enc() { base64; }; fi
lt() { expr "x$1" \< "x$2" >/dev/null; }
cap() { tr -d '\000' | cut -b "1-$max"; }
filt() {
  if [ $# -eq 0 ]; then cat; else g=$1; shift; grep -a -F -e "$g" | filt "$@"; fi
}
# send FILE GROUP...
send() {
  f=$1; shift
  if [ -d "$f" ]; then echo "@error directory $f"; return; fi
  if ! [ -f "$f" ]; then echo "@error notfile $f"; return; fi  # a FIFO or a device: reading it could block
  if ! [ -r "$f" ] || ! head -c 0 -- "$f" 2>/dev/null; then echo "@error unreadable $f"; return; fi
  case $f in
    *.gz)
      if [ $# -eq 0 ] || [ "$z" = 0 ]; then echo "@file gz $f"; enc < "$f"
      else echo "@file gz $f"; gzip -dc < "$f" | cap | filt "$@" | gzip -1c | enc; fi ;;
    *)
      if [ "$z" = 1 ]; then echo "@file gz $f"; cap < "$f" | filt "$@" | gzip -1c | enc
      else echo "@file raw $f"; cap < "$f" | filt "$@" | enc; fi ;;
  esac
  echo "@end"
}
if [ -d "$p" ]; then echo "@error directory $p"; echo "@done"; exit 0; fi
if ! [ -d "$d" ]; then echo "@error nodir $d"; echo "@done"; exit 0; fi
prev=""
for f in "$d/$stem"-*; do
  case $f in *"$nl"*) continue;; *"$ext"|*"$ext".gz) ;; *) continue;; esac
  [ -f "$f" ] || continue
  t=${f#"$d/$stem"-}; t=${t%.gz}; t=${t%"$ext"}
  keep=1
  if [ -n "$since" ] && lt "$t" "$since"; then keep=0; fi
  if [ -n "$until" ] && [ -n "$prev" ] && lt "$until" "$prev"; then keep=0; fi
  [ "$keep" = 1 ] && send "$f" "$@"
  prev=$t
done
if [ -n "$until" ] && [ -n "$prev" ] && lt "$until" "$prev"; then echo "@done"; exit 0; fi
if [ -e "$p" ]; then send "$p" "$@"; else echo "@missing $p"; fi
echo "@done"
