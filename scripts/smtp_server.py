#!/usr/bin/env python3
"""A real local SMTP server standing in for Herald's SMTP (legacy fallback) email provider.

Run with the project toolchain (scripts/toolchain.sh):

  .venv/bin/python scripts/smtp_server.py [--host 127.0.0.1] [--port 0]
      [--user U --password P] [--spool FILE] [--max-spool-bytes N]
      [--max-message-bytes N] [--exit-with-parent [PID]]

Once listening it prints ONE JSON line to stdout, {"host": ..., "port": ...}; everything
else goes to stderr. With --user/--password it offers AUTH PLAIN and LOGIN without TLS
(loopback only), requires AUTH before MAIL, and answers bad credentials with 535. Every
accepted message is appended to --spool as one JSON line:
  {"received_at", "peer", "auth_user", "mail_from", "rcpt_tos", "data"}
("data" is the raw DATA as UTF-8 text; if it is not valid UTF-8, "data_base64" holds the bytes.)
The spool is bounded (--max-spool-bytes): past it, messages are refused with 452 (retryable).
Stops cleanly on SIGTERM / SIGINT, and with --exit-with-parent when the parent process
(or process PID) exits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import logging
import os
import signal
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DEFAULT_MAX_SPOOL_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
PARENT_POLL_S = 0.5
CLOSE_TIMEOUT_S = 3.0


def log(message: str) -> None:
    # Counts and sizes only: never addresses, bodies or credentials.
    print(f"smtp_server: {message}", file=sys.stderr, flush=True)


class Spool:
    """Appends accepted messages as JSON lines, refusing once the file reaches its cap."""

    def __init__(self, path: Path | None, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            self.size = path.stat().st_size

    def append(self, record: dict[str, Any]) -> bool:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        if self.size + len(line) > self.max_bytes:
            return False
        if self.path is not None:
            with self.path.open("ab") as spool:
                spool.write(line)
                spool.flush()
        self.size += len(line)
        return True


class Handler:
    """aiosmtpd handler: accepts every envelope and spools it."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.accepted = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8")
        auth_user = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        record: dict[str, Any] = {
            "received_at": datetime.now(timezone.utc).isoformat(),
            "peer": list(session.peer) if isinstance(session.peer, tuple) else session.peer,
            "auth_user": auth_user.decode("utf-8", "replace") if auth_user else None,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data": raw.decode("utf-8", "replace"),
        }
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            record["data_base64"] = base64.b64encode(raw).decode("ascii")
        if not self.spool.append(record):
            log(f"spool full ({self.spool.size} bytes); refusing a message")
            return "452 4.3.1 Insufficient system storage"
        self.accepted += 1
        log(f"accepted message #{self.accepted}: {len(raw)} bytes, {len(envelope.rcpt_tos)} recipient(s)")
        return "250 2.0.0 Message accepted for delivery"


class Authenticator:
    """Checks AUTH PLAIN / LOGIN credentials against the one configured pair."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,
                 mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == self.user and auth_data.password == self.password)
        if not ok:
            log(f"rejected AUTH {mechanism}")
        # handled=False lets aiosmtpd answer 235 / 535 itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited already; only its reaping is pending
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


async def watch_parent(pid: int | None, stop: asyncio.Event) -> None:
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(PARENT_POLL_S)
        gone = not process_alive(pid) if pid is not None else os.getppid() != parent
        if gone:
            log("parent process exited; stopping")
            stop.set()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def quiet_aiosmtpd() -> None:
    """Plain-text AUTH without TLS is deliberate here; keep aiosmtpd from warning about it on
    every connection (and about its own deprecated login_data)."""
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    logging.getLogger("mail.log").setLevel(logging.ERROR)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Local SMTP server standing in for Herald's SMTP provider.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--user", help="require AUTH PLAIN/LOGIN with this user name")
    parser.add_argument("--password", help="password for --user")
    parser.add_argument("--spool", type=Path, help="append accepted messages to this file as JSON lines")
    parser.add_argument("--max-spool-bytes", type=int, default=DEFAULT_MAX_SPOOL_BYTES,
                        help=f"refuse messages (452) once the spool reaches this size (default {DEFAULT_MAX_SPOOL_BYTES})")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
                        help=f"SMTP SIZE limit; larger messages get 552 (default {DEFAULT_MAX_MESSAGE_BYTES})")
    parser.add_argument("--exit-with-parent", nargs="?", type=int, const=0, default=None, metavar="PID",
                        help="exit when the parent process (or process PID) exits")
    args = parser.parse_args(argv)
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if args.exit_with_parent is not None and args.exit_with_parent > 0 and not process_alive(args.exit_with_parent):
        parser.error(f"--exit-with-parent {args.exit_with_parent}: no such process")
    return args


async def serve(args: argparse.Namespace) -> int:
    quiet_aiosmtpd()
    if args.user is not None and not is_loopback(args.host):
        log(f"warning: AUTH without TLS on non-loopback address {args.host}")
    loop = asyncio.get_running_loop()
    handler = Handler(Spool(args.spool, args.max_spool_bytes))
    authenticator = Authenticator(args.user, args.password) if args.user is not None else None

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname="herald-smtp.local",
            data_size_limit=args.max_message_bytes,
            enable_SMTPUTF8=True,
            authenticator=authenticator,
            auth_required=authenticator is not None,
            # Plain-text AUTH is fine on loopback; there is no TLS here. Without credentials
            # requiring TLS (which never comes) keeps AUTH out of EHLO altogether.
            auth_require_tls=authenticator is None,
            timeout=60,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=args.host, port=args.port)
    host, port = server.sockets[0].getsockname()[:2]
    print(json.dumps({"host": host, "port": port}), flush=True)
    log(f"listening on {host}:{port}" + (" (AUTH required)" if authenticator else ""))

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if args.exit_with_parent is not None:
        watcher = asyncio.create_task(watch_parent(args.exit_with_parent or None, stop))

    await stop.wait()
    started = time.monotonic()
    server.close()
    try:
        # Sessions still open are dropped once the timeout passes.
        await asyncio.wait_for(server.wait_closed(), CLOSE_TIMEOUT_S)
    except asyncio.TimeoutError:
        pass
    if watcher is not None:
        watcher.cancel()
    log(f"stopped after {time.monotonic() - started:.1f}s; {handler.accepted} message(s) accepted")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except OSError as error:
        log(f"cannot listen on {args.host}:{args.port}: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
