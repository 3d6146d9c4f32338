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

# Every example in the document (request bodies and path parameters, taken from events/) is
# valid under the schema it illustrates: the samples and the types agree.
"$bin/python" - "$root/docs/openapi.json" <<'PY'
import json, sys
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

document = json.load(open(sys.argv[1]))
registry = Registry().with_resource("urn:herald", Resource.from_contents(
    {"$schema": "https://json-schema.org/draft/2020-12/schema", **document}))

def errors(schema, value):
    schema = json.loads(json.dumps(schema).replace('"#/components/', '"urn:herald#/components/'))
    return [e.message for e in Draft202012Validator(schema, registry=registry).iter_errors(value)]

checked, failed = 0, []
for path, item in document["paths"].items():
    for method, operation in item.items():
        where = f"{method.upper()} {path}"
        for parameter in operation.get("parameters", []):
            if "example" in parameter:
                checked += 1
                failed += [f"{where} {parameter['name']}: {m}" for m in errors(parameter["schema"], parameter["example"])]
        content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        for name, example in content.get("examples", {}).items():
            checked += 1
            failed += [f"{where} body ({name}): {m}" for m in errors(content["schema"], example["value"])]
for line in failed:
    print(f"lint-openapi: example not valid: {line}", file=sys.stderr)
if failed:
    sys.exit(1)
print(f"lint-openapi: {checked} examples valid under their schemas")
PY
