#!/bin/sh
# For `kaudit status`: stat each path (after the named parameters, each prefixed "h:" to hash it, a
# policy or webhook config of a few KiB, "c:" to hash it and print its bytes (base64, one line, up to
# max_content bytes: the policy, never the webhook config, which can hold credentials), or "s:" for its
# size only: the audit log can be hundreds of MB, not worth reading; "unsafe=" when the log, its directory
# or the one above is not root's alone), then probe the API server once.
# shellcheck source=lib/common.sh
. "$(dirname "$0")/lib/common.sh"  # kaudit:include
# shellcheck source=lib/probe.sh
. "$(dirname "$0")/lib/probe.sh"  # kaudit:include
url=$1 kubeconfig=$2 max_content=$3
shift 3
for a in "$@"; do
  f=${a#?:} how=${a%%:*}
  if [ -e "$f" ]; then
    kind='file'; [ -d "$f" ] && kind='dir'
    sum=-; [ "$kind" = file ] && [ "$how" != s ] && sum=$(sha256sum -- "$f" 2>/dev/null | cut -d' ' -f1)
    size_mtime=$(stat -c '%Y %s' -- "$f")
    echo "stat=$size_mtime $kind ${sum:--} $f"
    if [ "$how" = c ] && [ "$kind" = file ] && [ "${size_mtime#* }" -le "$max_content" ]; then
      echo "content=$(base64 < "$f" 2>/dev/null | tr -d '\n') $f"
    fi
  else
    echo "stat=- - missing - $f"
  fi
  if [ "$how" = s ]; then
    for p in "$(dirname -- "$(dirname -- "$f")")" "$(dirname -- "$f")" "$f"; do
      w=$(why_unsafe "$p")
      [ -z "$w" ] || { echo "unsafe=$w"; break; }
    done
  fi
done
echo "probe=$(probe "$url" "$kubeconfig")"
