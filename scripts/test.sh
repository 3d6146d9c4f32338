#!/usr/bin/env bash
# Herald's whole test suite, exactly as CI runs it (.ci/run calls this script):
# formatting, lints (Rust and the SAM template), unit, property, handler and integration tests
# (against the AWS emulator provisioned from infra/template.yaml and local provider stand-ins;
# clippy --all-targets type-checks the benchmarks), and the local end-to-end run under
# cargo lambda watch, ending with a real browser (headless chromium) calling the API across
# origins (CORS) and Schemathesis sending generated requests to every route, each answer checked
# against docs/openapi.json.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A clean CI machine gains nothing from incremental artifacts (GBs on disk) or a pip cache.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0 PIP_NO_CACHE_DIR=1
fi

# Disk is the scarce resource of a fresh build (about 4 GB of target/ for this suite): say what
# there is, so that a linker killed by a full disk is recognised as such.
step "disk: $(df -h . | awk 'NR == 2 { print $4 " free of " $2 }')"
step "toolchain"
scripts/toolchain.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "SAM template lint (cfn-lint, sam validate --lint)"
scripts/lint-template.sh
step "OpenAPI document lint (openapi-spec-validator)"
scripts/lint-openapi.sh
step "cargo test (unit, property, handler, integration)"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
cargo test --workspace 2>&1 | tee "$results"
step "end to end: scripts/run-local.sh, then the browser CORS check and Schemathesis against the same run"
HERALD_BROWSER_CHECK=1 HERALD_API_CHECK=1 scripts/run-local.sh

# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nsuite: %d passed, %d failed\n", p, f }' "$results"
