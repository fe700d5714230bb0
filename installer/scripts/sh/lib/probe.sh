# shellcheck shell=sh
# probe URL KUBECONFIG [PURPOSE]: prints "CODE VIA"; VIA is anonymous, admin-token or admin-cert. The admin
# credentials go to curl through stdin or private temp files, never through argv. Every request carries
# the user agent "kaudit/VERSION (PURPOSE)" (probe, or verify for a change's verification request), by
# which `kaudit logs` tells kaudit's own requests from others (with their shape: filters.own_request).
probe() {
  url=$1 kc=$2 ua="kaudit/@KAUDIT_VERSION@ (${3:-probe})"
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -sk -A "$ua" -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
  elif command -v wget >/dev/null 2>&1; then
    code=$(wget -q -S -U "$ua" --no-check-certificate -T 2 -O /dev/null "$url" 2>&1 \
      | awk '/HTTP\//{c=$2} END{print c+0}')
  else
    echo "000 no-curl-or-wget"; return
  fi
  [ -n "$code" ] || code=000
  # Credentials only with a kubeconfig (kaudit passes none for a probe that does not ask the API server
  # itself), and only over TLS verified against that kubeconfig's cluster CA: never `curl -k` with them.
  if { [ "$code" = 401 ] || [ "$code" = 403 ]; } && [ -n "$kc" ] && [ -r "$kc" ] && command -v curl >/dev/null 2>&1; then
    d=$(umask 077; mktemp -d)
    ca=$(sed -n 's/^[[:space:]]*certificate-authority-data:[[:space:]]*//p' "$kc" | head -n 1)
    if [ -n "$ca" ]; then
      printf %s "$ca" | base64 -d > "$d/ca" 2>/dev/null
    else
      caf=$(sed -n 's/^[[:space:]]*certificate-authority:[[:space:]]*//p' "$kc" | head -n 1 | tr -d "\"'")
      case "$caf" in /*) cat -- "$caf" > "$d/ca" 2>/dev/null ;; esac
    fi
    if [ ! -s "$d/ca" ]; then
      rm -rf "$d"; echo "$code no-cluster-ca"; return
    fi
    token=$(sed -n 's/^[[:space:]]*token:[[:space:]]*//p' "$kc" | head -n 1 | tr -d "\"'")
    if [ -n "$token" ]; then
      code=$(printf 'header = "Authorization: Bearer %s"\n' "$token" \
        | curl -s -A "$ua" --cacert "$d/ca" -K - -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
      rm -rf "$d"
      echo "$code admin-token"; return
    fi
    cert=$(sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$kc" | head -n 1)
    key=$(sed -n 's/^[[:space:]]*client-key-data:[[:space:]]*//p' "$kc" | head -n 1)
    if [ -n "$cert" ] && [ -n "$key" ]; then
      printf %s "$cert" | base64 -d > "$d/c" 2>/dev/null
      printf %s "$key" | base64 -d > "$d/k" 2>/dev/null
      code=$(curl -s -A "$ua" --cacert "$d/ca" --cert "$d/c" --key "$d/k" -o /dev/null -w '%{http_code}' --max-time 2 "$url" \
        2>/dev/null) || code=000
      rm -rf "$d"
      echo "$code admin-cert"; return
    fi
    rm -rf "$d"
  fi
  echo "$code anonymous"
}
