#!/usr/bin/env bash
# Herald's whole test suite, exactly as CI runs it (.ci/run calls this script):
# formatting, lints (Rust and the SAM template), unit, property, handler and integration tests
# (against the AWS emulator provisioned from infra/template.yaml and local provider stand-ins),
# the benchmarks compiled, and the local end-to-end run under cargo lambda watch.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
scripts/toolchain.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "SAM template lint (cfn-lint, sam validate --lint)"
scripts/lint-template.sh
step "cargo test (unit, property, handler, integration)"
cargo test --workspace
step "benchmarks build"
cargo bench --workspace --no-run
step "end to end: scripts/run-local.sh"
scripts/run-local.sh
