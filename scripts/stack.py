#!/usr/bin/env python3
"""Herald's local AWS stack: a moto emulator provisioned from infra/template.yaml.

Run with the project toolchain (scripts/toolchain.sh): `.venv/bin/python scripts/stack.py`.

  up   --state-dir DIR [--param K=V ...] [--exit-with-parent PID] [--template FILE]
       Starts moto on a free 127.0.0.1 port, creates the `herald-local` CloudFormation
       stack from the template's data resources (tables, KMS, SNS, SQS), applies what the
       emulator's CloudFormation ignores, and writes DIR/stack.env and DIR/stack.json
       (endpoint, env, functions, deployments, per-channel queues, resources; see
       infra/README.md). stdout's last line is stack.json; everything else goes to stderr.
  down --state-dir DIR   stops the emulator started by `up`.
  env  --state-dir DIR   prints DIR/stack.env.

The template stays the one description of the resources ("Local = AWS"): nothing here
names a table or queue; every physical name comes from the stack.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "infra" / "template.yaml"
STACK_NAME = "herald-local"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

START_TIMEOUT_S = 30.0
STACK_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3

# Resource types created through the emulator's CloudFormation API.
CFN_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
}
# Types moto's CloudFormation silently skips ("No Moto CloudFormation support"): created
# by this script with the service APIs once the stack exists.
DIRECT_TYPES = {
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::SecretsManager::Secret",
}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}


def created_directly(spec: dict[str, Any]) -> bool:
    """Whether this script creates the resource with the service API rather than the
    emulator's CloudFormation: the types moto skips, and asymmetric KMS keys (moto's
    CloudFormation ignores KeySpec and would make a symmetric key, which cannot sign)."""
    kind = spec.get("Type")
    if kind in DIRECT_TYPES:
        return True
    spec_name = (spec.get("Properties") or {}).get("KeySpec", "SYMMETRIC_DEFAULT")
    return kind == "AWS::KMS::Key" and spec_name != "SYMMETRIC_DEFAULT"


# Function environment variables whose value legitimately differs between functions (the
# dispatch function's CHANNEL). stack.env holds one value per key, so these are left out of it
# (a local binary serving several functions must do without: dispatch then serves every
# channel) and appear only per function, under `deployments` in stack.json.
PER_FUNCTION_KEYS = {"CHANNEL"}
# The SNS message attribute whose subscription filter names a queue in stack.json's `queues`.
QUEUE_KEY_ATTRIBUTE = "channel"
EMPTY_KEY_POLICY = json.dumps({"Version": "2012-10-17", "Statement": []})


class StackError(Exception):
    """A failure with a message meant for the person running the script."""


def log(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Template loading: CloudFormation YAML with short-form intrinsics.
# --------------------------------------------------------------------------------------

def load_template(path: Path) -> dict[str, Any]:
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    # CloudFormation keeps dates like AWSTemplateFormatVersion as strings.
    CfnLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_mapping(node, deep=True)

    def add(tag: str, build: Callable[[Any], Any]) -> None:
        CfnLoader.add_constructor(tag, lambda loader, node: build(construct(loader, node)))

    add("!Ref", lambda v: {"Ref": v})
    add("!Condition", lambda v: {"Condition": v})
    add("!GetAtt", lambda v: {"Fn::GetAtt": v.split(".", 1) if isinstance(v, str) else v})
    for name in ("Sub", "Join", "If", "Equals", "Select", "Split", "FindInMap", "GetAZs",
                 "Base64", "ImportValue", "Not", "And", "Or", "Cidr", "Length", "ToJsonString"):
        add(f"!{name}", lambda v, name=name: {f"Fn::{name}": v})

    try:
        with path.open(encoding="utf-8") as handle:
            template = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError) as error:
        raise StackError(f"cannot read template {path}: {error}") from error
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise StackError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def references(value: Any) -> tuple[set[str], set[str]]:
    """Names used by Ref/GetAtt/Sub (first set) and by Condition/Fn::If (second set)."""
    refs: set[str] = set()
    conditions: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, inner in node.items():
                if key == "Ref" and isinstance(inner, str):
                    refs.add(inner)
                elif key == "Fn::GetAtt":
                    target = inner.split(".", 1)[0] if isinstance(inner, str) else inner[0]
                    refs.add(target)
                elif key == "Fn::Sub":
                    text = inner if isinstance(inner, str) else inner[0]
                    local = set(inner[1]) if isinstance(inner, list) and len(inner) > 1 else set()
                    for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                        base = name.split(".", 1)[0]
                        if base not in local:
                            refs.add(base)
                elif key == "Condition" and isinstance(inner, str):
                    conditions.add(inner)
                elif key == "Fn::If" and isinstance(inner, list) and inner:
                    conditions.add(inner[0])
                walk(inner)
        elif isinstance(node, list):
            for inner in node:
                walk(inner)

    walk(value)
    return refs, conditions


# --------------------------------------------------------------------------------------
# Intrinsic function evaluation (for the parts the emulator does not see).
# --------------------------------------------------------------------------------------

_NO_VALUE = object()


class Unresolvable(StackError):
    pass


class Resolver:
    """Evaluates CloudFormation intrinsics against parameters and the created stack."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str],
                 pseudo: dict[str, Any]) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.attributes: dict[str, dict[str, Any]] = {}  # logical id -> {"Ref": .., "Arn": ..}
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = self.template.get("Conditions", {}).get(name)
            if definition is None:
                raise StackError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(definition))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Parameters", {}):
            raise Unresolvable(f"parameter {name} has no default; pass --param {name}=...")
        if name in self.attributes:
            return self.attributes[name]["Ref"]
        kind = self.template["Resources"].get(name, {}).get("Type")
        if kind:
            raise Unresolvable(f"{name} ({kind}) does not exist in the local stack")
        raise Unresolvable(f"unknown reference {name!r}")

    def get_att(self, name: str, attribute: str) -> Any:
        if name not in self.attributes:
            self.ref(name)  # raises with the reason
        values = self.attributes[name]
        if attribute not in values:
            raise Unresolvable(f"attribute {name}.{attribute} is not available locally")
        return values[attribute]

    def sub(self, text: str, local: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                base, attribute = name.split(".", 1)
                return str(self.get_att(base, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self.function(key[4:], arg)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            base, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(base, self.resolve(attribute))
        if name == "Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            return self.sub(arg[0], self.resolve(arg[1]))
        if name == "Join":
            delimiter, items = arg
            return delimiter.join(str(item) for item in self.resolve(items))
        if name == "Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if name == "Split":
            delimiter, text = self.resolve(arg)
            return text.split(delimiter)
        if name == "If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if name == "Not":
            return not self.resolve(arg)[0]
        if name == "And":
            return all(self.resolve(arg))
        if name == "Or":
            return any(self.resolve(arg))
        if name == "FindInMap":
            mapping, first, second = self.resolve(arg)
            try:
                return self.template["Mappings"][mapping][first][second]
            except KeyError as error:
                raise StackError(f"Fn::FindInMap {mapping}/{first}/{second}: no such entry") from error
        if name == "Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if name == "GetAZs":
            return [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abc"]
        if name == "ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if name == "Length":
            return len(self.resolve(arg))
        raise Unresolvable(f"Fn::{name} is not supported locally")


# --------------------------------------------------------------------------------------
# The emulator process.
# --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_start_time(pid: int) -> str | None:
    """Start time of a process (Linux), to tell a live parent from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent has yet to reap it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


def serve(port: int, parent: int | None, parent_started: str | None) -> None:
    """Body of the emulator process: moto_server, plus a watchdog on the parent."""
    if parent is not None:
        def same_parent() -> bool:
            if not alive(parent):
                return False
            # A different start time means the pid now belongs to another process.
            return parent_started is None or process_start_time(parent) in (parent_started, None)

        def watch() -> None:
            while same_parent():
                time.sleep(1.0)
            os._exit(0)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()

    # The first CloudFormation call would import every service model moto's CloudFormation
    # knows (~1s); do it before serving, in one thread (moto's modules import in cycles).
    import moto.cloudformation.parsing  # noqa: F401
    from moto.server import (DomainDispatcherApplication, MotoRequestHandler,
                             create_backend_app)
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, serialized_dynamodb(app), threaded=True,
               request_handler=MotoRequestHandler)


def serialized_dynamodb(app: Callable[..., Any]) -> Callable[..., Any]:
    """Runs DynamoDB requests one at a time, as moto_server would with threading off for them.

    moto applies a TransactWriteItems (its condition checks, then its writes) without any lock,
    so two concurrent transactions can both pass a condition one of them should fail. DynamoDB
    isolates transactions (serializable); Herald's audit chains rely on that. Everything else
    (SQS long polls in particular) stays concurrent."""
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                # Consume the response inside the lock: moto computes it lazily in places.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def start_emulator(state_dir: Path, parent: int | None,
                   meanwhile: Callable[[int], None]) -> tuple[int, int]:
    """Starts moto detached from this process; returns (pid, port) once it answers.
    `meanwhile(port)` runs while the emulator is still starting."""
    log_path = state_dir / "moto.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        command = [sys.executable, str(Path(__file__).resolve()), "_serve", "--port", str(port)]
        if parent is not None:
            command += ["--parent", str(parent), "--parent-started", process_start_time(parent) or ""]
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=state_dir,
                start_new_session=True,  # survives this script and the terminal's Ctrl-C
                close_fds=True,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
            )
        (state_dir / "moto.pid").write_text(f"{process.pid}\n")
        meanwhile(port)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if answers(port):
                return process.pid, port
            time.sleep(0.05)
        else:
            stop_pid(process.pid)
            raise StackError(f"moto did not answer on port {port} within {START_TIMEOUT_S:.0f}s; "
                             f"see {log_path}")
        log(f"moto exited during start (attempt {attempt}, port {port}); retrying")
    tail = log_path.read_text(errors="replace")[-2000:]
    raise StackError(f"moto failed to start {PORT_ATTEMPTS} times; {log_path} ends with:\n{tail}")


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1) as reply:
            return reply.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, urllib.error.URLError):
        return False


def our_emulator(pid: int) -> bool:
    """True if pid is an emulator started by this script (guards against pid reuse)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return alive(pid)  # no /proc: trust the pid file
    return b"_serve" in command and any(part.endswith(b"stack.py") for part in command)


def stop_pid(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)  # the emulator leads its own session/group
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_emulator(state_dir: Path) -> bool:
    pid_file = state_dir / "moto.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    stopped = False
    if alive(pid) and our_emulator(pid):
        stop_pid(pid)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------------------
# Provisioning.
# --------------------------------------------------------------------------------------

def clients(endpoint: str) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    config = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint, config=config)
        return cache[service]

    return client


def parameter_values(template: dict[str, Any], overrides: list[str]) -> dict[str, str]:
    declared = template.get("Parameters", {}) or {}
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise StackError(f"--param {item!r}: expected Key=Value")
        if name not in declared:
            raise StackError(f"--param {name}: the template declares no such parameter "
                             f"(known: {', '.join(sorted(declared))})")
        values[name] = value
    for name, value in values.items():
        spec = declared[name]
        allowed = [str(v) for v in spec.get("AllowedValues", [])]
        if allowed and value not in allowed:
            raise StackError(f"parameter {name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            raise StackError(f"parameter {name}={value!r} does not match {pattern}")
    return values


def emulator_template(template: dict[str, Any], parameters: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The subset of the template the emulator's CloudFormation creates."""
    resources = {name: copy.deepcopy(spec) for name, spec in template["Resources"].items()
                 if spec.get("Type") in CFN_TYPES and not created_directly(spec)}
    for spec in resources.values():
        depends = spec.get("DependsOn")
        if depends is not None:
            depends = [depends] if isinstance(depends, str) else depends
            kept = [name for name in depends if name in resources]
            if kept:
                spec["DependsOn"] = kept
            else:
                del spec["DependsOn"]

    # moto's CloudFormation stores an object KeyPolicy where its KMS API expects JSON text
    # (every call on the key then fails with a 500), and a real key policy may name roles
    # that only exist in AWS: create keys with an empty policy, put the real one afterwards.
    for spec in resources.values():
        if spec["Type"] == "AWS::KMS::Key":
            spec.setdefault("Properties", {})["KeyPolicy"] = EMPTY_KEY_POLICY

    # Keep the parameters and conditions these resources use (transitively).
    all_conditions = template.get("Conditions", {}) or {}
    refs, conditions = references(resources)
    pending = list(conditions)
    while pending:
        name = pending.pop()
        if name not in all_conditions:
            raise StackError(f"unknown condition {name!r}")
        more_refs, more_conditions = references(all_conditions[name])
        refs |= more_refs
        pending += [c for c in more_conditions if c not in conditions]
        conditions |= more_conditions

    for name in refs:
        if "::" in name or name in resources or name in (template.get("Parameters") or {}):
            continue
        kind = template["Resources"].get(name, {}).get("Type", "unknown")
        raise StackError(f"a local resource references {name} ({kind}), which the emulator "
                         "cannot create; keep data resources free of such references")

    declared = template.get("Parameters", {}) or {}
    used = {name: spec for name, spec in declared.items() if name in refs}
    missing = [name for name in used if name not in parameters]
    if missing:
        raise StackError("parameters without a default: " +
                         ", ".join(f"--param {name}=..." for name in sorted(missing)))

    body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
    if used:
        body["Parameters"] = used
    if conditions:
        body["Conditions"] = {name: all_conditions[name] for name in conditions}
    if template.get("Mappings"):
        body["Mappings"] = template["Mappings"]
    return body, {name: parameters[name] for name in used}


def create_stack(client: Callable[[str], Any], body: dict[str, Any], parameters: dict[str, str]) -> str:
    cfn = client("cloudformation")
    try:
        stack_id = cfn.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        )["StackId"]
    except Exception as error:  # botocore.exceptions.ClientError and friends
        raise StackError(f"create_stack failed: {error}") from error
    deadline = time.monotonic() + STACK_TIMEOUT_S
    while True:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack_id
        if not status.endswith("IN_PROGRESS"):
            reason = stack.get("StackStatusReason", "")
            events = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
            failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                      for e in events if e.get("ResourceStatus", "").endswith("FAILED")]
            raise StackError(f"stack {STACK_NAME} ended in {status} {reason}\n" + "\n".join(failed))
        if time.monotonic() > deadline:
            raise StackError(f"stack {STACK_NAME} still {status} after {STACK_TIMEOUT_S:.0f}s")
        time.sleep(0.2)


def put_key_policies(client: Callable[[str], Any], template: dict[str, Any],
                     physical: dict[str, str], resolver: Resolver) -> None:
    """The template's key policies, as JSON text (see emulator_template)."""
    for name, pid in physical.items():
        spec = template["Resources"][name]
        if spec["Type"] != "AWS::KMS::Key":
            continue
        policy = (spec.get("Properties") or {}).get("KeyPolicy")
        if policy is None:
            continue
        try:
            text = policy if isinstance(policy, str) else attribute_string(resolver.resolve(policy))
        except Unresolvable as error:
            log(f"{name}: key policy not applied locally ({error})")
            continue
        client("kms").put_key_policy(KeyId=pid, PolicyName="default", Policy=text)


def collect_attributes(client: Callable[[str], Any], template: dict[str, Any],
                       physical: dict[str, str], resolver: Resolver) -> None:
    """Ref and GetAtt values of every created resource, as the emulator reports them."""
    for name, pid in physical.items():
        kind = template["Resources"][name]["Type"]
        if kind == "AWS::DynamoDB::Table":
            table = client("dynamodb").describe_table(TableName=pid)["Table"]
            values = {"Ref": pid, "Arn": table["TableArn"]}
            if table.get("LatestStreamArn"):
                values["StreamArn"] = table["LatestStreamArn"]
        elif kind == "AWS::SQS::Queue":
            queue_name = pid.rstrip("/").rsplit("/", 1)[-1]
            url = client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
            arn = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            values = {"Ref": url, "QueueUrl": url, "QueueName": queue_name,
                      "Arn": arn["Attributes"]["QueueArn"]}
        elif kind == "AWS::SNS::Topic":
            values = {"Ref": pid, "TopicArn": pid, "TopicName": pid.rsplit(":", 1)[-1]}
        elif kind == "AWS::KMS::Key":
            key = client("kms").describe_key(KeyId=pid)["KeyMetadata"]
            values = {"Ref": key["KeyId"], "KeyId": key["KeyId"], "Arn": key["Arn"]}
        else:
            values = {"Ref": pid}
        resolver.attributes[name] = values


def desired_properties(resolver: Resolver, spec: dict[str, Any]) -> dict[str, Any]:
    return resolver.resolve(spec.get("Properties", {}) or {})


def enabled(resolver: Resolver, spec: dict[str, Any]) -> bool:
    condition = spec.get("Condition")
    return condition is None or resolver.condition(condition)


def verify_tables(client: Callable[[str], Any], template: dict[str, Any], resolver: Resolver) -> None:
    """Applies TTL and PITR (ignored by moto's CloudFormation) and checks keys and indexes."""
    dynamodb = client("dynamodb")
    problems: list[str] = []
    for name, spec in template["Resources"].items():
        if spec.get("Type") != "AWS::DynamoDB::Table" or name not in resolver.attributes:
            continue
        props = desired_properties(resolver, spec)
        table_name = resolver.attributes[name]["Ref"]

        ttl = props.get("TimeToLiveSpecification") or {}
        if str(ttl.get("Enabled", False)).lower() == "true":
            current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
                    "AttributeName": ttl["AttributeName"], "Enabled": True})
            current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
            if current.get("AttributeName") != ttl["AttributeName"]:
                problems.append(f"{name}: TTL attribute is {current.get('AttributeName')!r}, "
                                f"template says {ttl['AttributeName']!r}")

        pitr = props.get("PointInTimeRecoverySpecification") or {}
        if str(pitr.get("PointInTimeRecoveryEnabled", False)).lower() == "true":
            try:
                dynamodb.update_continuous_backups(
                    TableName=table_name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
            except Exception as error:  # not every emulator version has it; it changes no behaviour
                log(f"{name}: point-in-time recovery not applied locally ({error})")

        table = dynamodb.describe_table(TableName=table_name)["Table"]
        problems += compare_table(name, props, table)
    if problems:
        raise StackError("tables differ from the template:\n  " + "\n  ".join(problems))


def compare_table(name: str, props: dict[str, Any], table: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    def keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    if keys(table["KeySchema"]) != keys(props.get("KeySchema", [])):
        problems.append(f"{name}: key schema {keys(table['KeySchema'])} != {keys(props['KeySchema'])}")
    want_types = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}
    have_types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    if want_types != have_types:
        problems.append(f"{name}: attribute definitions {have_types} != {want_types}")
    for kind, key in (("global", "GlobalSecondaryIndexes"), ("local", "LocalSecondaryIndexes")):
        want = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"],
                                 sorted(i["Projection"].get("NonKeyAttributes", [])))
                for i in props.get(key, []) or []}
        have = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"],
                                 sorted(i["Projection"].get("NonKeyAttributes", [])))
                for i in table.get(key, []) or []}
        if want != have:
            problems.append(f"{name}: {kind} secondary indexes {have} != {want}")
    billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    if props.get("BillingMode", "PROVISIONED") != billing:
        problems.append(f"{name}: billing mode {billing} != {props.get('BillingMode')}")
    return problems


def attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def same_attribute(have: str | None, want: str) -> bool:
    if have is None:
        return False
    if have == want:
        return True
    try:
        return json_numbers(json.loads(have)) == json_numbers(json.loads(want))
    except ValueError:
        return have.lower() == want.lower()


def json_numbers(value: Any) -> Any:
    """JSON with numeric strings as numbers: a `!Ref` of a Number parameter is text in
    CloudFormation ({"maxReceiveCount": "5"}), which AWS and the emulator store as 5."""
    if isinstance(value, dict):
        return {key: json_numbers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [json_numbers(inner) for inner in value]
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


# Queue properties that are not SetQueueAttributes attributes.
QUEUE_NON_ATTRIBUTES = {"QueueName", "Tags", "FifoQueue"}
# Attributes that change what a consumer sees: the local queue must have them. Others
# (RedriveAllowPolicy, KMS settings, ...) are applied when the emulator knows them.
QUEUE_BEHAVIOUR = {"RedrivePolicy", "VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                   "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "ContentBasedDeduplication"}


def apply_queues(client: Callable[[str], Any], template: dict[str, Any], resolver: Resolver) -> None:
    """Makes every queue attribute (RedrivePolicy, timeouts, ...) match the template."""
    sqs = client("sqs")
    for name, spec in template["Resources"].items():
        if spec.get("Type") != "AWS::SQS::Queue" or name not in resolver.attributes:
            continue
        url = resolver.attributes[name]["Ref"]
        props = desired_properties(resolver, spec)
        want = {key: attribute_string(value) for key, value in props.items()
                if key not in QUEUE_NON_ATTRIBUTES}
        if not want:
            continue
        have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        for key, value in want.items():
            if same_attribute(have.get(key), value):
                continue
            try:
                sqs.set_queue_attributes(QueueUrl=url, Attributes={key: value})
            except Exception as error:  # the emulator rejects attributes it does not model
                if key in QUEUE_BEHAVIOUR:
                    raise StackError(f"{name}: cannot set {key} locally: {error}") from error
            have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
            if not same_attribute(have.get(key), value):
                if key in QUEUE_BEHAVIOUR:
                    raise StackError(f"{name}: the emulator does not keep the queue attribute {key}")
                log(f"{name}: {key} is not supported by the emulator; ignored locally")


def apply_direct(client: Callable[[str], Any], template: dict[str, Any], resolver: Resolver,
                 physical: dict[str, str]) -> None:
    """Creates the resource types moto's CloudFormation skips, in template order."""
    for name, spec in template["Resources"].items():
        kind = spec.get("Type")
        if not created_directly(spec) or not enabled(resolver, spec):
            continue
        try:
            props = desired_properties(resolver, spec)
        except Unresolvable as error:
            log(f"{name} ({kind}) not created locally: {error}")
            continue
        if kind == "AWS::SQS::QueuePolicy":
            policy = attribute_string(props["PolicyDocument"])
            for url in props["Queues"]:
                client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
            physical[name] = name
        elif kind == "AWS::SNS::TopicPolicy":
            policy = attribute_string(props["PolicyDocument"])
            for arn in props["Topics"]:
                client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy",
                                                   AttributeValue=policy)
            physical[name] = name
        elif kind == "AWS::SNS::Subscription":
            physical[name] = subscribe(client, name, props)
        elif kind == "AWS::SecretsManager::Secret":
            physical[name] = create_secret(client, name, props)
        elif kind == "AWS::KMS::Key":
            key = client("kms").create_key(
                KeySpec=props["KeySpec"], KeyUsage=props.get("KeyUsage", "SIGN_VERIFY"),
                Description=str(props.get("Description", name)))["KeyMetadata"]
            physical[name] = key["KeyId"]
            resolver.attributes[name] = {"Ref": key["KeyId"], "KeyId": key["KeyId"],
                                         "Arn": key["Arn"]}
            continue
        resolver.attributes[name] = {"Ref": physical[name]}


# GenerateSecretString options that GetRandomPassword takes under the same names.
PASSWORD_OPTIONS = ("PasswordLength", "ExcludeCharacters", "ExcludeNumbers", "ExcludePunctuation",
                    "ExcludeUppercase", "ExcludeLowercase", "IncludeSpace", "RequireEachIncludedType")


def create_secret(client: Callable[[str], Any], name: str, props: dict[str, Any]) -> str:
    """A secret as CloudFormation makes one: a GenerateSecretString value comes from the
    emulator's GetRandomPassword with the same options. Returns the ARN (its Ref)."""
    sm = client("secretsmanager")
    args: dict[str, Any] = {
        "Name": f"{STACK_NAME}-{name}-{os.urandom(6).hex().upper()}",
        "Description": props.get("Description", ""),
    }
    generate = props.get("GenerateSecretString")
    if generate is not None:
        unsupported = sorted(set(generate) - set(PASSWORD_OPTIONS))
        if unsupported:
            raise StackError(f"{name}: GenerateSecretString {unsupported} not supported locally")
        args["SecretString"] = sm.get_random_password(**generate)["RandomPassword"]
    elif "SecretString" in props:
        args["SecretString"] = props["SecretString"]
    return sm.create_secret(**args)["ARN"]


# Subscription attributes that decide what reaches a queue: the local subscription must
# have them. Others (DeliveryPolicy, ...) are applied when the emulator knows them.
SUBSCRIPTION_BEHAVIOUR = ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
SUBSCRIPTION_OTHER = ("DeliveryPolicy", "SubscriptionRoleArn", "ReplayPolicy")


def subscribe(client: Callable[[str], Any], name: str, props: dict[str, Any]) -> str:
    sns = client("sns")
    required = {key: attribute_string(props[key]) for key in SUBSCRIPTION_BEHAVIOUR if key in props}
    arn = sns.subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                        Endpoint=props["Endpoint"], Attributes=required,
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    have = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    wrong = [key for key, value in required.items() if not same_attribute(have.get(key), value)]
    if wrong:
        raise StackError(f"{name}: the emulator does not keep subscription attributes {wrong}")
    for key in SUBSCRIPTION_OTHER:
        if key not in props:
            continue
        try:
            sns.set_subscription_attributes(SubscriptionArn=arn, AttributeName=key,
                                            AttributeValue=attribute_string(props[key]))
        except Exception as error:  # the emulator rejects attributes it does not model
            log(f"{name}: {key} is not supported by the emulator; ignored locally ({error})")
    return arn


def function_environments(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, Any]]:
    """Every function's Lambda environment, by logical id: {"binary": ..., "env": {...}}."""
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {})
    shared = globals_env.get("Variables") or {}
    deployments: dict[str, dict[str, Any]] = {}
    for name, spec in template["Resources"].items():
        if spec.get("Type") not in FUNCTION_TYPES or not enabled(resolver, spec):
            continue
        own = (((spec.get("Properties") or {}).get("Environment") or {}).get("Variables") or {})
        variables = {**shared, **own} if spec["Type"] == "AWS::Serverless::Function" else dict(own)
        binary = ((spec.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or name
        env: dict[str, str] = {}
        for key, value in variables.items():
            try:
                resolved = resolver.resolve(value)
            except Unresolvable as error:
                log(f"{name} ({binary}): {key} left out of the local environment: {error}")
                continue
            if resolved is _NO_VALUE:
                continue
            text = attribute_string(resolved)
            if "\n" in text:
                raise StackError(f"{name} ({binary}): {key} has a multi-line value; stack.env cannot hold it")
            env[key] = text
        deployments[name] = {"binary": binary, "env": dict(sorted(env.items()))}
    return deployments


def shared_environment(deployments: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The one environment every function can run with (stack.env) and, per binary, the
    variables its functions share. Keys in PER_FUNCTION_KEYS are left out of both."""
    env: dict[str, str] = {}
    owner: dict[str, str] = {}
    binaries: dict[str, dict[str, str]] = {}
    for name, deployment in deployments.items():
        common = {k: v for k, v in deployment["env"].items() if k not in PER_FUNCTION_KEYS}
        for key, value in common.items():
            if key in env and env[key] != value:
                raise StackError(
                    f"functions disagree on {key}: {env[key]!r} ({owner[key]}) vs {value!r} ({name}); "
                    "stack.env can only hold one. If the variable is meant to differ per function, "
                    "add it to PER_FUNCTION_KEYS in scripts/stack.py (see infra/README.md)")
            env[key] = value
            owner.setdefault(key, name)
        # Like stack.env, a binary deployed several times gets the union of its functions' keys.
        binaries.setdefault(deployment["binary"], {}).update(common)
    return env, {binary: dict(sorted(variables.items())) for binary, variables in binaries.items()}


def channel_queues(client: Callable[[str], Any], template: dict[str, Any], resolver: Resolver,
                   deployments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per channel: the queue an SNS subscription filtered on that channel feeds, its
    dead-letter queue and the function consuming it, read from the template's wiring (no
    logical-id conventions) and the emulator's queue attributes. Every other queue a function
    consumes through an SQS event (status webhooks) is listed under its consumer's binary."""
    resources = template["Resources"]
    queue_by_arn = {attrs["Arn"]: name for name, attrs in resolver.attributes.items()
                    if resources.get(name, {}).get("Type") == "AWS::SQS::Queue"}
    consumer: dict[str, str] = {}  # queue ARN -> function logical id
    for name, spec in resources.items():
        if spec.get("Type") != "AWS::Serverless::Function" or name not in deployments:
            continue
        for event in ((spec.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            try:
                consumer[resolver.resolve(event["Properties"]["Queue"])] = name
            except (Unresolvable, KeyError):
                continue

    sqs = client("sqs")

    def describe(queue: str) -> dict[str, Any]:
        attrs = resolver.attributes[queue]
        have = sqs.get_queue_attributes(QueueUrl=attrs["Ref"], AttributeNames=["All"])["Attributes"]
        entry: dict[str, Any] = {
            "queue": queue, "url": attrs["Ref"], "arn": attrs["Arn"],
            "visibility_timeout": int(have.get("VisibilityTimeout", "30")),
        }
        redrive = json.loads(have["RedrivePolicy"]) if have.get("RedrivePolicy") else None
        dead_letters = queue_by_arn.get((redrive or {}).get("deadLetterTargetArn", ""))
        if redrive and dead_letters:
            entry.update({
                "dlq": dead_letters, "dlq_url": resolver.attributes[dead_letters]["Ref"],
                "dlq_arn": resolver.attributes[dead_letters]["Arn"],
                "max_receive_count": int(redrive["maxReceiveCount"]),
            })
        function = consumer.get(attrs["Arn"])
        if function:
            entry.update({"function": function, "binary": deployments[function]["binary"]})
        return entry

    queues: dict[str, dict[str, Any]] = {}
    for name, spec in resources.items():
        if spec.get("Type") != "AWS::SNS::Subscription" or name not in resolver.attributes:
            continue
        props = desired_properties(resolver, spec)
        policy = props.get("FilterPolicy")
        policy = json.loads(policy) if isinstance(policy, str) else policy
        channels = (policy or {}).get(QUEUE_KEY_ATTRIBUTE) if isinstance(policy, dict) else None
        queue = queue_by_arn.get(props.get("Endpoint", ""))
        if props.get("Protocol") != "sqs" or not isinstance(channels, list) or queue is None:
            continue
        entry = describe(queue)
        for channel in channels:
            if not isinstance(channel, str):
                continue
            if channel in queues and queues[channel]["queue"] != queue:
                raise StackError(f"{QUEUE_KEY_ATTRIBUTE} {channel!r} is routed to two queues: "
                                 f"{queues[channel]['queue']} and {queue}")
            queues[channel] = entry
    listed = {entry["queue"] for entry in queues.values()}
    for arn, function in consumer.items():
        queue = queue_by_arn.get(arn)
        if queue is None or queue in listed:
            continue
        binary = deployments[function]["binary"]
        if binary in queues:
            raise StackError(f"queue key {binary!r} (consumer of {queue}) is also a channel")
        queues[binary] = describe(queue)
    return dict(sorted(queues.items()))


def dotenv_value(value: str) -> str:
    """A value for a KEY=VALUE env file: quoted when it holds more than a plain token, because
    cargo lambda's env-file parser splits unquoted values on commas."""
    if re.fullmatch(r"[A-Za-z0-9_./:@+-]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def up(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    template_path = Path(args.template).resolve() if args.template else DEFAULT_TEMPLATE
    template = load_template(template_path)
    parameters = parameter_values(template, args.param)
    body, stack_parameters = emulator_template(template, parameters)

    if args.exit_with_parent is not None and not alive(args.exit_with_parent):
        raise StackError(f"--exit-with-parent {args.exit_with_parent}: no such process")
    if stop_emulator(state_dir):
        log(f"stopped the emulator previously started in {state_dir}")
    for stale in ("stack.env", "stack.json", "moto.log"):
        (state_dir / stale).unlink(missing_ok=True)

    resolver = Resolver(template, parameters, {
        "AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID, "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK_NAME,
        "AWS::NotificationARNs": [],
    })
    made: dict[int, Callable[[str], Any]] = {}

    def make_clients(port: int) -> None:
        # Building botocore clients takes a while; do it while moto is starting.
        made[port] = clients(f"http://127.0.0.1:{port}")
        for service in ("cloudformation", "dynamodb", "kms"):
            made[port](service)

    pid, port = start_emulator(state_dir, args.exit_with_parent, make_clients)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        log(f"moto pid {pid} on {endpoint} ({time.monotonic() - started:.1f}s)")
        client = made[port]
        stack_id = create_stack(client, body, stack_parameters)
        resolver.pseudo["AWS::StackId"] = stack_id
        listed = client("cloudformation").list_stack_resources(StackName=stack_id)
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                    for r in listed["StackResourceSummaries"]
                    if r["LogicalResourceId"] in body["Resources"]}
        missing = [name for name, spec in body["Resources"].items()
                   if name not in physical and enabled(resolver, spec)]
        if missing:
            raise StackError(f"the emulator did not create {missing}")

        put_key_policies(client, template, physical, resolver)
        collect_attributes(client, template, physical, resolver)
        verify_tables(client, template, resolver)
        apply_queues(client, template, resolver)
        apply_direct(client, template, resolver, physical)
        deployments = function_environments(template, resolver)
        env, functions = shared_environment(deployments)
        queues = channel_queues(client, template, resolver, deployments)
    except BaseException:
        stop_emulator(state_dir)
        raise

    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **CREDENTIALS,
    })
    env = dict(sorted(env.items()))
    state = {
        "endpoint": endpoint,
        "port": port,
        "pid": pid,
        "region": REGION,
        "stack_name": STACK_NAME,
        "env": env,
        "functions": functions,
        # A function's whole environment is functions[binary] plus its deployments[...]["env"].
        "deployments": {name: {"binary": d["binary"],
                               "env": {k: v for k, v in d["env"].items() if k in PER_FUNCTION_KEYS}}
                        for name, d in deployments.items()},
        "queues": queues,
        "resources": {name: attrs["Ref"] for name, attrs in resolver.attributes.items()},
    }
    (state_dir / "stack.env").write_text("".join(f"{k}={dotenv_value(v)}\n" for k, v in env.items()))
    (state_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")
    log(f"stack {STACK_NAME} ready in {time.monotonic() - started:.1f}s; env in {state_dir / 'stack.env'}")
    return state


# --------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="{up,down,env}")

    up_cmd = commands.add_parser("up", help="start the emulator and provision the stack")
    up_cmd.add_argument("--state-dir", required=True)
    up_cmd.add_argument("--param", action="append", default=[], metavar="Key=Value")
    up_cmd.add_argument("--template", help="template file (default: infra/template.yaml)")
    up_cmd.add_argument("--exit-with-parent", type=int, metavar="PID",
                        help="stop the emulator when process PID exits")
    for name, text in (("down", "stop the emulator"), ("env", "print stack.env")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--state-dir", required=True)
    serve_cmd = commands.add_parser("_serve")  # internal: the emulator process itself
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--parent", type=int)
    serve_cmd.add_argument("--parent-started")

    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            state = up(args)
            sys.stdout.write(json.dumps(state, separators=(",", ":")) + "\n")
        elif args.command == "down":
            stopped = stop_emulator(Path(args.state_dir))
            log("emulator stopped" if stopped else "no emulator running")
        elif args.command == "env":
            path = Path(args.state_dir) / "stack.env"
            if not path.is_file():
                raise StackError(f"{path} not found; run `stack.py up --state-dir {args.state_dir}`")
            sys.stdout.write(path.read_text())
        elif args.command == "_serve":
            serve(args.port, args.parent, args.parent_started or None)
    except StackError as error:
        log(f"error: {error}")
        return 1
    except Exception as error:  # boto/botocore failures talking to the emulator
        log(f"error: {type(error).__name__}: {error}")
        if getattr(args, "state_dir", None):
            log(f"the emulator's log is {Path(args.state_dir) / 'moto.log'}")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def ensure_toolchain() -> None:
    """Re-runs this script with .venv's Python when started by another interpreter."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        import yaml  # noqa: F401
    except ImportError as error:
        venv_python = ROOT / ".venv" / "bin" / "python"
        if venv_python.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
            os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])
        log(f"error: {error}; run scripts/toolchain.sh, then .venv/bin/python scripts/stack.py")
        sys.exit(1)


if __name__ == "__main__":
    ensure_toolchain()
    sys.exit(main(sys.argv[1:]))
