#!/usr/bin/env bash
# The command tools/demo runs under `credbroker exec`. It is the untrusted
# side: it has no API key and must still reach the API. Each step checks what
# it shows, and the script exits non-zero if a step does not hold.
#
# From tools/demo (not secrets): DEMO_DIRECT_URL (the mock API itself) and
# DEMO_CACERT (the test CA).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONPATH=$here/../tests/e2e${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3
failed=0

step() { printf '\n== %s ==\n' "$*"; }
ok() { printf -- '-> ok: %s\n' "$*"; }
fail() { printf -- '-> FAILED: %s\n' "$*"; failed=1; }

: "${DEMO_DIRECT_URL:?set by tools/demo}" "${DEMO_CACERT:?set by tools/demo}"

step "1. This command's environment holds no API key"
echo '$ env | grep FLASHDUTY'
env | grep FLASHDUTY | sort
names=$(env | grep -o '^[^=]*FLASHDUTY[^=]*' | sort | tr '\n' ' ')
if [ "$names" = "FLASHDUTY_BASE_URL FLASHDUTY_CRED_FD " ] \
    && [ "${FLASHDUTY_CRED_FD}" = 3 ] && [ -S /proc/self/fd/3 ]; then
    ok "only FLASHDUTY_CRED_FD (fd 3, a socket to the broker) and FLASHDUTY_BASE_URL (a placeholder); no FLASHDUTY_APP_KEY"
else
    fail "expected exactly FLASHDUTY_BASE_URL and FLASHDUTY_CRED_FD=3 (a socket), got: $names"
fi

step "2. A call through the broker, with a made-up key, returns real data"
echo '$ POST /channel/list?app_key=broker-sentinel  (over a connection dialed on fd 3)'
if "$PY" - <<'EOF'
import json, sys
import brokered


def show(v, pad=""):
    """Pretty JSON, but an object of plain values stays on one line."""
    inner = pad + "  "
    if isinstance(v, dict) and any(isinstance(x, (dict, list)) for x in v.values()):
        rows = ["%s%s: %s" % (inner, json.dumps(k), show(x, inner)) for k, x in v.items()]
        return "{\n" + ",\n".join(rows) + "\n" + pad + "}"
    if isinstance(v, list) and v:
        return "[\n" + ",\n".join(inner + show(x, inner) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


conn = brokered.connection()
conn.request("POST", "/channel/list?app_key=broker-sentinel", body=b"{}",
             headers={"Content-Type": "application/json"})
resp = conn.getresponse()
body = resp.read()
print("HTTP %d" % resp.status)
try:
    print(show(json.loads(body)))
except ValueError:
    print(body.decode(errors="replace"))
sys.exit(0 if resp.status == 200 else 1)
EOF
then
    ok "200: the broker replaced the sentinel with the real key on the way out"
else
    fail "the brokered call did not return 200"
fi

step "3. The same call made directly to the API, without the broker, is refused"
echo "\$ curl -X POST '$DEMO_DIRECT_URL/channel/list?app_key=broker-sentinel' -d '{}'"
out=$(curl -sS --noproxy '*' --cacert "$DEMO_CACERT" -X POST -H 'Content-Type: application/json' \
    -d '{}' -w '\n%{http_code}' "$DEMO_DIRECT_URL/channel/list?app_key=broker-sentinel")
code=${out##*$'\n'}
echo "HTTP $code"
echo "${out%$'\n'*}"
if [ "$code" = 401 ]; then
    ok "401: this command alone cannot use the API; only its broker can"
else
    fail "expected 401 from the direct call, got '$code'"
fi

echo
if [ "$failed" -eq 0 ]; then
    echo "demo-script: all 3 steps hold: no key here, brokered call 200, direct call 401"
else
    echo "demo-script: FAILED (see the steps above)"
fi
exit "$failed"
