#!/usr/bin/env bash
# Checks docs/openapi.json is a valid OpenAPI 3.1 document with openapi-spec-validator from the
# project toolchain in .venv (run scripts/toolchain.sh first). That the file is what the code
# generates is the contract test's job (cargo test -p herald-cli --test contract).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
bin="$root/.venv/bin"

[[ -x "$bin/openapi-spec-validator" ]] || {
  echo "lint-openapi: toolchain missing; run scripts/toolchain.sh" >&2
  exit 1
}
"$bin/openapi-spec-validator" "$root/docs/openapi.json"
