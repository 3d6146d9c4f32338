#!/usr/bin/env bash
# Herald's main job, locally and for real: installs the pinned toolchain, builds the functions,
# brings up the AWS emulator provisioned from infra/template.yaml, provider stand-ins and an SMTP
# server, runs the functions under `cargo lambda watch` with the channel queues feeding dispatch
# and the status-webhooks queue its worker (tools/sqs-event-source), serves the template's HTTP API
# in front of them with its JWT authorizer (tools/local-gateway), prints the API's URL with a
# ready curl line, and walks the wizard and sending scenario end to end over that API with a token
# per caller, as a front end would (tools/herald-local). Everything listens on 127.0.0.1 on free
# ports and stops when this script exits. State and logs: .local/run/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.local/run"
rm -rf "$state" && mkdir -p "$state"

say() { printf '%s\n' "$*" >&2; }
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

watch_pid=""
gateway_pid=""
cleanup() {
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null || true
  [ -n "$watch_pid" ] && kill -- "-$watch_pid" 2>/dev/null || true
  .venv/bin/python scripts/stack.py down --state-dir "$state/stack" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "toolchain (.venv: moto, cargo-lambda, cfn-lint, aiosmtpd)..."
scripts/toolchain.sh

# HERALD_BROWSER_CHECK=1 (the test suite sets it): at the end, while everything is still up, a
# real browser calls the API from an allowed and from a refused origin (tests/browser/cors.mjs).
browser_check="${HERALD_BROWSER_CHECK:-0}"
# HERALD_API_CHECK=1 (the test suite sets it): last, Schemathesis sends generated requests to every
# route and checks each answer against docs/openapi.json (tests/api/schemathesis.sh).
api_check="${HERALD_API_CHECK:-0}"
if [ "$browser_check" = 1 ]; then
  say "browser toolchain (Debian's chromium, playwright-core from tests/browser/package-lock.json)..."
  scripts/browser-toolchain.sh
fi

say "building the functions and local tools..."
cargo build --quiet --workspace --bins

say "provider stand-ins and SMTP server..."
target/debug/provider-standins --exit-with-parent="$$" >"$state/standins.json" 2>"$state/standins.log" &
smtp_user=herald-demo
smtp_password="local-$(date +%s)-$RANDOM"
.venv/bin/python scripts/smtp_server.py --port 0 --user "$smtp_user" --password "$smtp_password" \
  --spool "$state/smtp-spool.jsonl" --exit-with-parent "$$" >"$state/smtp.json" 2>"$state/smtp.log" &
for _ in $(seq 1 100); do [ -s "$state/standins.json" ] && [ -s "$state/smtp.json" ] && break; sleep 0.1; done
standins_url=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$state/standins.json")
urls() { .venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$state/standins.json" "$1"; }
smtp_port=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$state/smtp.json")

# Browser pages from these origins may call the API (the template's CorsAllowedOrigins; its
# default is the wizard's development server).
cors_origins="http://localhost:5173"
if [ "$browser_check" = 1 ]; then
  browser_port=$(free_port)
  cors_origins="$cors_origins,http://127.0.0.1:$browser_port"
fi

# The ports are chosen first. The gateway starts before the stack: its API URL (the template's
# stage included, e.g. /v1) is Herald's public URL, the one receipt URLs given to providers point
# at (its /webhooks/... routes reach delivery-webhooks, as on AWS).
port=$(free_port)
gateway_port=$(free_port)

# The integration timeout is above API Gateway's 30 s: the first call to each function waits for
# cargo lambda watch to start it.
say "HTTP API (the template's routes, JWT authorizer, CORS) on 127.0.0.1:$gateway_port (log: .local/run/gateway.log)..."
target/debug/local-gateway --functions-url "http://127.0.0.1:$port" --port "$gateway_port" \
  --param "CorsAllowedOrigins=$cors_origins" \
  --integration-timeout-secs 120 --exit-with-parent="$$" >"$state/gateway.json" 2>"$state/gateway.log" &
gateway_pid=$!
# A first run makes the development issuer's RSA key, slow in a debug build on a busy machine.
for _ in $(seq 1 1200); do
  [ -s "$state/gateway.json" ] && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$state/gateway.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$state/gateway.json" ] || { say "the local gateway did not start (log: .local/run/gateway.log)"; exit 1; }
api_url=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_url"])' "$state/gateway.json")

say "AWS emulator, provisioned from infra/template.yaml..."
.venv/bin/python scripts/stack.py up --state-dir "$state/stack" --exit-with-parent "$$" \
  --param "TwilioApiBaseUrl=$(urls twilio)" --param "AfricasTalkingApiBaseUrl=$(urls africastalking)" \
  --param "BrevoApiBaseUrl=$(urls brevo)" --param "MetaGraphApiBaseUrl=$(urls meta)" \
  --param "TwilioContentApiBaseUrl=$(urls twilio_content)" \
  --param "PublicApiUrl=$api_url" --param "CorsAllowedOrigins=$cors_origins" \
  --param WebhooksAllowLoopback=true --param StatusWebhookRetrySchedule=1,2,4 \
  >"$state/stack.json" 2>"$state/stack.log"

say "functions under cargo lambda watch on 127.0.0.1:$port (log: .local/run/watch.log)..."
setsid .venv/bin/cargo-lambda lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
  --env-file "$state/stack/stack.env" --ignore-changes --quiet >"$state/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { cat "$state/watch.log" >&2; exit 1; }
  sleep 0.2
done

say "channel queues feeding dispatch, the status-webhooks queue its worker (Lambda's SQS event source, locally)..."
target/debug/sqs-event-source --stack-json "$state/stack/stack.json" --invoke-url "http://127.0.0.1:$port" \
  --exit-with-parent="$$" 2>"$state/event-source.log" &

token=$(target/debug/herald dev-token --tenant acme-events --role tenant_admin --ttl 1h --gateway-state "$state/gateway.json")
cat <<EOF

Herald's API, locally (while this run lasts): $api_url
   curl -H "Authorization: Bearer $token" $api_url/tenant/brand
   that token: tenant acme-events as tenant_admin, valid 1 h; more tokens (roles tenant_admin,
   event_manager, platform_admin; --sub S for another user):
     cargo run -q -p herald-cli -- dev-token --tenant acme-events --role event_manager
   browser apps: pages from $cors_origins may call it (CORS, the template's CorsAllowedOrigins)

EOF

target/debug/herald-local demo --gateway-state "$state/gateway.json" --herald-cli target/debug/herald \
  --invoke-url "http://127.0.0.1:$port" --standins-url "$standins_url" \
  --smtp-port "$smtp_port" --smtp-user "$smtp_user" --smtp-password "$smtp_password" \
  --smtp-spool "$state/smtp-spool.jsonl"

# The audit trail of everything above: the scheduled audit-anchor function run once (as its
# EventBridge schedule would), then the operator CLI verifying the tenant's whole log, its
# hash chains and signed anchors, exactly as an auditor would.
printf '\n== 9. Audit: the anchoring run, then the whole log verified\n'
.venv/bin/python - "http://127.0.0.1:$port/2015-03-31/functions/audit-anchor/invocations" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=b'{"source": "aws.events", "detail-type": "Scheduled Event"}',
                                 headers={"content-type": "application/json"})
with urllib.request.urlopen(request, timeout=120) as answer:
    run = json.load(answer)
print(f"   audit-anchor (scheduled)  scopes {run['scopes']}, anchored {run['anchored']}, failed {run['failed']}")
if run["failed"] or not run["anchored"]:
    sys.exit("the anchoring run failed")
PY
(set -a; . "$state/stack/stack.env"; set +a; target/debug/herald audit verify --tenant acme-events) \
  | sed 's/^/   herald audit verify  /'

if [ "$browser_check" = 1 ]; then
  printf '\n== 10. A browser: the API from a page of an allowed origin, and of a refused one (CORS)\n'
  HERALD_TOKEN="$token" timeout 180 node tests/browser/cors.mjs --api "$api_url" \
    --allowed-port "$browser_port" --gateway-log "$state/gateway.log" \
    || { say "the browser CORS check failed (above; the gateway's log: .local/run/gateway.log)"; exit 1; }
  printf '   and a recipient in a browser: the preference page of a signed link, in French, without JavaScript\n'
  HERALD_TOKEN="$token" timeout 180 node tests/browser/preferences.mjs --api "$api_url" \
    || { say "the browser preference-page check failed (above)"; exit 1; }
fi

if [ "$api_check" = 1 ]; then
  printf '\n== 11. The contract: Schemathesis against this API (docs/openapi.json, generated requests)\n'
  HERALD_TOKEN="$token" timeout 1500 tests/api/schemathesis.sh --api "$api_url" --out "$state/schemathesis" \
    || { say "the API does not keep its contract (above; the run's requests: .local/run/schemathesis/run.har)"; exit 1; }
fi
