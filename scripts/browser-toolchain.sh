#!/usr/bin/env bash
# The browser test's toolchain: Debian's chromium (apt-get) and the Playwright driver pinned in
# tests/browser/package-lock.json (npm ci). Idempotent and quiet when nothing is missing: an
# installed /usr/bin/chromium is kept, and npm runs only when the lock file changed.
#
# chromium comes from Debian's archive, which keeps only its current (security-patched) build,
# so the package is not pinned to a version; the version used is printed by the test. Node.js
# (>= 20, for playwright-core) is taken from the system or installed the same way.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
browser="$root/tests/browser"
chromium=/usr/bin/chromium

die() { echo "browser-toolchain: $*" >&2; exit 1; }

# Root installs directly; anyone else through sudo, never waiting for a password.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}

missing=()
[[ -x "$chromium" ]] || missing+=(chromium)
node_ok() { command -v node >/dev/null 2>&1 && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; }
node_ok && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them (Debian/Ubuntu packages chromium, nodejs, npm)"
  log="$(mktemp "${TMPDIR:-/tmp}/herald-browser-toolchain.XXXXXX")"
  trap 'rm -f "$log"' EXIT
  echo "browser-toolchain: installing ${missing[*]} (apt-get)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 \
    || { cat "$log" >&2; die "apt-get install ${missing[*]} failed (as root, or with sudo -n)"; }
  [[ -x "$chromium" ]] || die "$chromium is still missing after installing chromium"
  node_ok || die "node >= 20 is needed for playwright-core; found $(node --version 2>/dev/null || echo none)"
fi

stamp="$browser/node_modules/.herald-lock.sha256"
want="$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in tests/browser failed"
  echo "$want" >"$stamp"
fi
