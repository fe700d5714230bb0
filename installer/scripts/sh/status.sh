#!/bin/sh
# For `kaudit status`: stat each path (after the named parameters, each prefixed "h:" to hash it, a
# policy or webhook config of a few KiB, or "s:" for its size only: the audit log can be hundreds of
# MB, not worth reading), then probe the API server once.
# shellcheck source=lib/probe.sh
. "$(dirname "$0")/lib/probe.sh"  # kaudit:include
url=$1 kubeconfig=$2
shift 2
for a in "$@"; do
  f=${a#?:}
  if [ -e "$f" ]; then
    kind='file'; [ -d "$f" ] && kind='dir'
    sum=-; [ "$kind" = file ] && [ "${a%%:*}" = h ] && sum=$(sha256sum -- "$f" 2>/dev/null | cut -d' ' -f1)
    echo "stat=$(stat -c '%Y %s' -- "$f") $kind ${sum:--} $f"
  else
    echo "stat=- - missing - $f"
  fi
done
echo "probe=$(probe "$url" "$kubeconfig")"
