#!/usr/bin/env bash
# Lints infra/template.yaml with cfn-lint and `sam validate --lint`, offline, using the
# project toolchain in .venv (run scripts/toolchain.sh first). Exits non-zero on findings.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="$root/.venv/bin"
template="infra/template.yaml"

[[ -x "$bin/cfn-lint" && -x "$bin/sam" ]] || {
  echo "lint-template: toolchain missing; run scripts/toolchain.sh" >&2
  exit 1
}
cd "$root"

# Once per identity setup: the external issuer, and the stack's own Cognito user pool.
"$bin/cfn-lint" "$template" --parameters CreateUserPool=false \
  JwtIssuer=https://issuer.example/ JwtAudience=herald-api
"$bin/cfn-lint" "$template" --parameters CreateUserPool=true TenantSystemTenant=acme-events

# sam needs a region and (never used) credentials to start; give it fakes so it cannot
# pick up a developer's real profile, and keep it from phoning home.
# Quiet on success: its output is shown only when it fails.
if ! out="$(env -u AWS_PROFILE SAM_CLI_TELEMETRY=0 \
    AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$bin/sam" validate --lint --template "$template" --region eu-west-1 </dev/null 2>&1)"; then
  echo "$out" >&2
  exit 1
fi
