#!/bin/sh
# Stream a node's audit log files for `kaudit simulate TARGET`: each rotated file (lumberjack's
# <stem>-<timestamp><ext>[.gz], globbed, never word-split; a name with a newline skipped), then the live
# log, as `@file gz|raw PATH`, base64 lines, `@end`; `@missing PATH` when there is no live log; `@done`.
set -u
p=$1
LC_ALL=C; export LC_ALL
nl='
'
d=$(dirname -- "$p"); b=$(basename -- "$p")
case $b in *.*) stem=${b%.*}; ext=.${b##*.};; *) stem=$b; ext=;; esac
z=0; command -v gzip >/dev/null 2>&1 && z=1
if base64 -w 0 </dev/null >/dev/null 2>&1; then enc() { base64 -w 65536; }; else enc() { base64; }; fi
send() {
  case $1 in
    *.gz) echo "@file gz $1"; enc < "$1" ;;
    *) if [ "$z" = 1 ]; then echo "@file gz $1"; gzip -1c < "$1" | enc; else echo "@file raw $1"; enc < "$1"; fi ;;
  esac
  echo "@end"
}
for f in "$d/$stem"-*; do
  case $f in *"$nl"*) continue;; *"$ext"|*"$ext".gz) ;; *) continue;; esac
  [ -f "$f" ] && send "$f"
done
if [ -f "$p" ]; then send "$p"; else echo "@missing $p"; fi
echo "@done"
