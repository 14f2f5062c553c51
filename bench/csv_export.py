"""
Measure the memory a customer's usage export costs the server.

For each source tree given (default: this one), recreate a scratch
PostgreSQL database, migrate it, seed one tenant with --rows usage records
and a signed-in session, start that tree's Switchboard as production runs it
(uvicorn, one process, DEBUG off), download /app/usage/export.csv in 64 KiB
reads, and report the server process's resident memory before the request
and at its peak during it, with the time to the first byte and to the last.

    .venv/bin/python bench/csv_export.py [--rows 100000] [--trees DIR,DIR]

To compare with an earlier commit, check it out beside this tree with the
same virtualenv and name both trees:

    git worktree add /tmp/before HEAD && ln -s "$PWD/.venv" /tmp/before/.venv
    .venv/bin/python bench/csv_export.py --trees /tmp/before,.

Everything stays on 127.0.0.1; each download is bounded in time (--timeout)
and in size (--max-mib).
"""

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from run import (
    HOST,
    PYTHON,
    ROOT,
    BenchError,
    Children,
    free_port,
    port_open,
    relay_env,
    reset_database,
    run_checked,
    wait_until,
)

EXPORT_PATH = "/app/usage/export.csv"
# Dropped and created again on every run.
DATABASE = "switchboard_csv_bench"
READ_BYTES = 64 * 1024
SEED_BATCH = 5000
KIB = 1024


def seed(tree: Path, rows: int) -> dict:
    """
    In `tree`'s code: a tenant owned by a person, its key, `rows` usage
    records, and a session of that person; print the session key.
    """
    sys.path.insert(0, str(tree))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User
    from accounts.services import api_key_create
    from onboarding.tenants import tenant_create
    from relay.models import UsageRecord

    user = User.objects.create_user("bench@example.com", "bench-password-1")
    tenant = tenant_create(name="CSV bench", owner=user)
    key, _ = api_key_create(tenant=tenant, name="bench")
    for first in range(0, rows, SEED_BATCH):
        UsageRecord.objects.bulk_create(
            UsageRecord(
                request_id=f"req_csv_bench_{n}",
                tenant=tenant,
                api_key=key,
                model="gpt-4.1-mini",
                status="ok",
                http_status=200,
                usage_source="reported",
                prompt_tokens=1200,
                cached_tokens=200,
                completion_tokens=300,
                cost=1_234_567,
                charged=1_234_567,
            )
            for n in range(first, min(first + SEED_BATCH, rows))
        )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"session": session.session_key}


def memory_kib(pid: int) -> dict[str, int]:
    """The process's resident set now (VmRSS) and at its peak (VmHWM)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def reset_peak(pid: int) -> None:
    # Linux: writing 5 to clear_refs resets VmHWM to the current VmRSS.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def download(port: int, session: str, query: str, args) -> dict:
    """GET the export, read in chunks; bytes, lines and timings."""
    conn = http.client.HTTPConnection(HOST, port, timeout=args.timeout)
    started = time.monotonic()
    deadline = started + args.timeout
    first_byte = None
    size = lines = 0
    try:
        conn.request("GET", f"{EXPORT_PATH}{query}", headers={"Cookie": session})
        response = conn.getresponse()
        if response.status != 200:
            raise BenchError(f"export answered {response.status}: {response.read(500)}")
        while chunk := response.read1(READ_BYTES):
            if first_byte is None:
                first_byte = time.monotonic() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            if size > args.max_mib * KIB * KIB or time.monotonic() > deadline:
                raise BenchError("the export exceeded --max-mib or --timeout")
    finally:
        conn.close()
    return {
        "bytes": size,
        "lines": lines,
        "first_byte_s": round(first_byte or 0.0, 3),
        "total_s": round(time.monotonic() - started, 3),
    }


def in_tree(tree: Path, argv: list[str]) -> list[str]:
    # Run from inside `tree`: Celery's Django fixup puts the working
    # directory first on sys.path, so it decides whose code is imported.
    return ["env", "-C", str(tree), *argv]


def measure(tree: Path, args, children: Children) -> dict:
    """Seed a fresh database for `tree`, serve it, and measure one export."""
    env = relay_env(f"{args.postgres}/{DATABASE}", None)
    progress(f"{tree}: database {DATABASE}: recreate, migrate, seed")
    reset_database(args.postgres, DATABASE)
    run_checked(in_tree(tree, [PYTHON, "manage.py", "migrate", "--no-input"]), env)
    seeded = run_checked(
        in_tree(
            tree,
            [PYTHON, str(Path(__file__).resolve()), "seed", str(tree), str(args.rows)],
        ),
        env,
        timeout=600,
    )
    session = f"sessionid={json.loads(seeded.splitlines()[-1])['session']}"

    port = free_port()
    # uvicorn picks uvloop and httptools itself when they are installed.
    serve = [PYTHON, "-m", "uvicorn", "config.asgi:application", "--no-access-log"]
    listen = ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    server = children.start("server", in_tree(tree, serve + listen), env)
    try:
        wait_until(lambda: port_open(port), "server", children)
        # Warm up: every module imported, a database connection open.
        download(port, session, "?model=none", args)
        time.sleep(0.5)
        before = memory_kib(server.pid)["VmRSS"]
        reset_peak(server.pid)
        progress(f"{tree}: exporting {args.rows:,} rows")
        result = download(port, session, "", args)
        peak = memory_kib(server.pid)["VmHWM"]
    finally:
        children.stop("server")
    if result["lines"] != args.rows + 1:
        raise BenchError(f"expected {args.rows + 1} lines, got {result['lines']}")
    return {
        "tree": str(tree),
        "rows": args.rows,
        **result,
        "rss_before_mib": round(before / KIB, 1),
        "rss_peak_mib": round(peak / KIB, 1),
        "growth_mib": round((peak - before) / KIB, 1),
    }


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--trees",
        default=str(ROOT),
        help="comma-separated source trees to measure in turn (this one)",
    )
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432",
        help=f"PostgreSQL server URL; its database {DATABASE} is recreated",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds (300)")
    parser.add_argument("--max-mib", type=int, default=512, help="MiB read (512)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 1_000_000:
        parser.error("--rows must be from 1 to 1,000,000")
    args.trees = [Path(t).resolve() for t in args.trees.split(",") if t.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    if sys.argv[1:2] == ["seed"]:
        print(json.dumps(seed(Path(sys.argv[2]), int(sys.argv[3]))))
        return 0
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = []
    with tempfile.TemporaryDirectory(prefix="switchboard-csv-bench-") as tmp:
        children = Children(Path(tmp))
        try:
            for tree in args.trees:
                results.append(measure(tree, args, children))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            print(children.log_tail("server"), file=sys.stderr)
            return 1
        finally:
            children.stop_all()
    print(
        f"{'tree':<40} {'MiB sent':>9} {'1st byte s':>10} {'total s':>8} "
        f"{'RSS before':>10} {'peak':>7} {'growth MiB':>10}"
    )
    for r in results:
        print(
            f"{r['tree']:<40} {r['bytes'] / KIB / KIB:>9.1f} {r['first_byte_s']:>10}"
            f" {r['total_s']:>8} {r['rss_before_mib']:>10} {r['rss_peak_mib']:>7}"
            f" {r['growth_mib']:>10}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
