"""Command line.

``python -m simulators serve [options] [--faults FILE.json]``
    run the simulators until SIGINT/SIGTERM (exit code 0), with the fault profile's rules on from the start.
``python -m simulators drop-files --dir DIR --date YYYY-MM-DD [--seed S] [--products N] [--bad-rows K]``
    write a day's supplier CSV feed and print a JSON summary (file, rows, malformed lines).
``python -m simulators run [options] -- COMMAND [ARGS...]``
    start the simulators in this process, run COMMAND (with ``SIMULATORS_URL`` set in its
    environment), stop the simulators when it ends and exit with its exit code. COMMAND runs in its
    own process group; SIGINT and SIGTERM received here are passed on to that whole group once, and
    the simulators keep serving until COMMAND has exited.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, default=8900, help="0 picks a free port (printed on start)")
    common.add_argument("--products", type=int, default=1000, help="number of products in the world")
    common.add_argument("--seed", type=int, default=42)
    common.add_argument("--project-key", default="beauty-hub")
    common.add_argument("--client-id", default="hub-client")
    common.add_argument("--client-secret", default="hub-secret")
    common.add_argument("--token-ttl", type=int, default=172_800, help="token lifetime in seconds")
    common.add_argument("--quiet", action="store_true", help="print only the 'serving on' line and errors")
    common.add_argument("--log-requests", action="store_true", help="log one line per request to stderr")
    common.add_argument("--faults", metavar="FILE.json", help="fault rules on from the start (docs/simulators.md)")
    common.add_argument(
        "--churn-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="churn a few products, inventory entries, orders, payments and stock movements this often",
    )

    parser = argparse.ArgumentParser(prog="python -m simulators", description="Simulated external systems.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", parents=[common], help="serve every simulated system on one HTTP port")
    run = sub.add_parser("run", parents=[common], help="serve while running a command: run [options] -- CMD ...")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command to run (after --)")
    drop = sub.add_parser("drop-files", help="write a day's supplier CSV feed (suppliers_<date>.csv)")
    drop.add_argument("--dir", default="data/landing/suppliers", help="landing directory (created if missing)")
    drop.add_argument("--date", default=None, help="feed date YYYY-MM-DD (default: today, UTC)")
    drop.add_argument("--products", type=int, default=1000, help="number of products in the world")
    drop.add_argument("--seed", type=int, default=42)
    drop.add_argument("--bad-rows", type=int, default=5, help="rows deliberately malformed")
    return parser


def _server_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "products": args.products,
        "seed": args.seed,
        "project_key": args.project_key,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "token_ttl": args.token_ttl,
        "log_requests": args.log_requests,
        "churn_every": args.churn_every,
    }


def load_faults(path: str | None) -> list:
    """The fault rules of a profile file: a JSON list of rules, or ``{"faults": [...]}``."""
    if path is None:
        return []
    import json

    from simulators.faults import FaultConfigError, FaultEngine

    try:
        profile = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FaultConfigError(f"--faults {path}: cannot read a JSON fault profile ({exc})") from None
    faults = profile.get("faults") if isinstance(profile, dict) else profile
    try:
        FaultEngine().configure(faults)
    except FaultConfigError as exc:
        raise FaultConfigError(f"--faults {path}: {exc}") from None
    return faults


def _run(args: argparse.Namespace) -> int:
    from simulators.server import start_in_thread

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("run: give the command to run after --", file=sys.stderr)
        return 2
    handle = start_in_thread(**_server_kwargs(args))
    handle.state.faults.configure(args.faults)
    print(
        f"simulators serving on {handle.url} (commerce project {args.project_key}, {args.products} products, "
        f"seed {args.seed})",
        flush=True,
    )
    child: subprocess.Popen | None = None
    stopping: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signum)  # the child's whole process group (e.g. dagster dev)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        if stopping:
            return 128 + stopping[0]
        try:
            # own process group: a terminal's Ctrl-C reaches only us, and we pass it on exactly once
            child = subprocess.Popen(cmd, env={**os.environ, "SIMULATORS_URL": handle.url}, process_group=0)
        except OSError as exc:
            print(f"run: cannot start {cmd[0]!r}: {exc}", file=sys.stderr)
            return 127
        if stopping:
            forward(stopping[0], None)
        rc = int(child.wait())
        return 128 - rc if rc < 0 else rc
    finally:
        handle.stop()
        if not args.quiet:
            print("simulators stopped", flush=True)


def _drop_files(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC, datetime

    from simulators.feeds import write_supplier_feed
    from simulators.world import World

    day = args.date or datetime.now(UTC).date().isoformat()
    try:
        feed = write_supplier_feed(args.dir, day, World(seed=args.seed, products=args.products), args.bad_rows)
    except ValueError as exc:
        print(f"drop-files: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(feed.summary()), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from simulators.world import MAX_PRODUCTS

    if not 0 <= args.products <= MAX_PRODUCTS:
        print(f"--products must be between 0 and {MAX_PRODUCTS}", file=sys.stderr)
        return 2
    if args.command == "drop-files":
        return _drop_files(args)
    if args.token_ttl < 0:
        print("--token-ttl must be >= 0", file=sys.stderr)
        return 2
    if args.churn_every is not None and args.churn_every <= 0:
        print("--churn-every must be a positive number of seconds", file=sys.stderr)
        return 2
    from simulators.faults import FaultConfigError

    try:
        args.faults = load_faults(args.faults)
    except FaultConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    from simulators.server import serve
    from simulators.subscriptions import SubscriptionError

    try:  # COMMERCE_SUBSCRIPTION_AMQP_URL set, but its broker cannot be reached
        if args.command == "run":
            return _run(args)
        return serve(quiet=args.quiet, faults=args.faults, **_server_kwargs(args))
    except SubscriptionError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
