#!/bin/sh
# Ask the API server once: prints "CODE VIA".
# shellcheck source=lib/probe.sh
. "$(dirname "$0")/lib/probe.sh"  # kaudit:include
url=$1 kubeconfig=$2
probe "$url" "$kubeconfig"
