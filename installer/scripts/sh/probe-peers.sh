#!/bin/sh
# Ask other API servers of the cluster once each, from this node: prints "CODE VIA" per URL, in order.
# The rollout's health gate runs it on the node about to change, so that checking the other nodes
# costs one remote command per step, whatever the cluster's size.
# shellcheck source=lib/probe.sh
. "$(dirname "$0")/lib/probe.sh"  # kaudit:include
kubeconfig=$1
shift
for url in "$@"; do
  case "$url" in
    anon:*) probe "${url#anon:}" "" ;;  # not the API server's own address: never credentials
    *) probe "$url" "$kubeconfig" ;;
  esac
done
