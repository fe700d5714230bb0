# shellcheck shell=sh
# probe URL KUBECONFIG: prints "CODE VIA"; VIA is anonymous, admin-token or admin-cert. The admin
# credentials go to curl through stdin or private temp files, never through argv.
probe() {
  url=$1 kc=$2
  if command -v curl >/dev/null 2>&1; then
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
  elif command -v wget >/dev/null 2>&1; then
    code=$(wget -q -S --no-check-certificate -T 2 -O /dev/null "$url" 2>&1 | awk '/HTTP\//{c=$2} END{print c+0}')
  else
    echo "000 no-curl-or-wget"; return
  fi
  [ -n "$code" ] || code=000
  if { [ "$code" = 401 ] || [ "$code" = 403 ]; } && [ -r "$kc" ] && command -v curl >/dev/null 2>&1; then
    token=$(sed -n 's/^[[:space:]]*token:[[:space:]]*//p' "$kc" | head -n 1 | tr -d "\"'")
    if [ -n "$token" ]; then
      code=$(printf 'header = "Authorization: Bearer %s"\n' "$token" \
        | curl -sk -K - -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || code=000
      echo "$code admin-token"; return
    fi
    cert=$(sed -n 's/^[[:space:]]*client-certificate-data:[[:space:]]*//p' "$kc" | head -n 1)
    key=$(sed -n 's/^[[:space:]]*client-key-data:[[:space:]]*//p' "$kc" | head -n 1)
    if [ -n "$cert" ] && [ -n "$key" ]; then
      d=$(umask 077; mktemp -d)
      printf %s "$cert" | base64 -d > "$d/c" 2>/dev/null
      printf %s "$key" | base64 -d > "$d/k" 2>/dev/null
      code=$(curl -sk --cert "$d/c" --key "$d/k" -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) \
        || code=000
      rm -rf "$d"
      echo "$code admin-cert"; return
    fi
  fi
  echo "$code anonymous"
}
