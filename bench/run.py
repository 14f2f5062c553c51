"""
Measure what Switchboard adds to a chat completion.

Start the fake upstream and one Switchboard process configured as in
production (PostgreSQL, DEBUG off, uvicorn with uvloop and httptools, no
access log), drive both with wrk, and report requests/s and p50/p99 latency
of non-streaming and streaming chat completions at each concurrency, directly
against the fake and through the relay, with the relay process's CPU time per
request. Afterwards check that every request was accounted for and that the
ledger balances.

    .venv/bin/python bench/run.py [--duration 5] [--concurrency 1,16,64]

See bench/README.md for how to read the output.
"""

import argparse
import base64
import ctypes
import http.client
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
MODEL = "gpt-4.1-mini"
CHAT_PATH = "/v1/chat/completions"
SCENARIOS = ("nonstream", "stream")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Acceptance targets from the issue, on the 2-core reference machine.
TARGET_ADDED_P50_MS = 3.0
TARGET_RELAY_RPS = 500.0
TARGET_P50_CONCURRENCY = 1
TARGET_RPS_CONCURRENCY = 64

# Environment that would point the relay at other services or change its
# behaviour; the relay gets only what this script sets.
_DROPPED_PREFIXES = ("SWITCHBOARD_", "STRIPE_", "CELERY_")
_DROPPED_NAMES = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")

# wrk's Lua API: a fixed request, and a cap on requests per thread (passed as
# the script's argument) so every run is bounded in count as well as time.
WRK_SCRIPT = """\
local limit, sent = math.huge, 0
local req = wrk.format("POST", "{path}", {{
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer {key}",
}}, [==[{body}]==])

function init(args)
  if args[1] then limit = tonumber(args[1]) end
end

function request()
  sent = sent + 1
  if sent > limit then wrk.thread:stop() end
  return req
end
"""

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class BenchError(Exception):
    """A failure that makes the measurement meaningless."""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    capped: bool = False

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


@dataclass
class Measurement:
    scenario: str
    concurrency: int
    direct: WrkResult | None = None
    relay: WrkResult | None = None
    relay_cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    machine_busy_pct: float = 0.0
    warmup_requests: dict[str, int] = field(default_factory=dict)

    @property
    def relay_cpu_ms_per_request(self) -> float | None:
        if not self.relay or not self.relay.requests:
            return None
        return 1000 * self.relay_cpu_seconds / self.relay.requests

    @property
    def relay_cpu_pct(self) -> float | None:
        if not self.wall_seconds:
            return None
        return 100 * self.relay_cpu_seconds / self.wall_seconds

    @property
    def added_p50_ms(self) -> float | None:
        if not (self.direct and self.relay):
            return None
        return self.relay.p50_ms - self.direct.p50_ms

    @property
    def throughput_ratio(self) -> float | None:
        if not (self.direct and self.relay and self.direct.rps):
            return None
        return self.relay.rps / self.direct.rps

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "direct": asdict(self.direct) if self.direct else None,
            "relay": asdict(self.relay) if self.relay else None,
            "added_p50_ms": _round(self.added_p50_ms),
            "throughput_ratio": _round(self.throughput_ratio, 3),
            "relay_cpu_ms_per_request": _round(self.relay_cpu_ms_per_request),
            "relay_cpu_pct": _round(self.relay_cpu_pct, 1),
            "machine_busy_pct": _round(self.machine_busy_pct, 1),
            "warmup_requests": self.warmup_requests,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# -- child processes ----------------------------------------------------------


def _die_with_parent() -> None:
    # If this script is killed outright (SIGKILL), its servers must not
    # outlive it holding ports and database connections.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Children:
    """The servers this script started, stopped on exit whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        with open(self.log_dir / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 10) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM lets uvicorn finish the requests in flight, so the relay
        # settles them before the database is checked.
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise BenchError(
                    f"{name} exited with {proc.returncode}; see "
                    f"{self.log_dir / (name + '.log')}:\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _raise_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=1):
        return True


def wait_until(check, what: str, children: Children, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        children.check_alive()
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise BenchError(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.1)


def run_checked(argv: list[str], env: dict, timeout: float = 120) -> str:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


# -- HTTP on loopback ---------------------------------------------------------


def post(port: int, body: dict, key: str, timeout: float = 10) -> tuple[int, bytes]:
    # http.client, not urllib: proxy settings in the environment must never
    # divert benchmark traffic away from loopback.
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            CHAT_PATH,
            body=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key}",
            },
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def request_body(scenario: str, *, direct: bool, max_tokens: int) -> dict:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": max_tokens,
    }
    if scenario == "stream":
        body["stream"] = True
        if direct:
            # The relay asks its upstream for usage on every stream; the
            # direct run asks too, so the fake does the same work both ways.
            body["stream_options"] = {"include_usage": True}
    return body


def smoke_test(port: int, body: dict, key: str, what: str) -> None:
    """Fail early, with the server's answer, if a request does not succeed."""
    status, raw = post(port, body, key)
    if status != 200:
        raise BenchError(f"{what}: HTTP {status}: {raw[:500]!r}")
    if body.get("stream"):
        if not raw.rstrip().endswith(b"data: [DONE]"):
            raise BenchError(f"{what}: stream did not end with [DONE]: {raw[-300:]!r}")
    elif b'"choices"' not in raw:
        raise BenchError(f"{what}: no choices in {raw[:300]!r}")


# -- wrk ----------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing the Debian package...", file=sys.stderr)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, capture_output=True, timeout=300).returncode:
            subprocess.run(
                ["apt-get", "update", "-q"], capture_output=True, timeout=300
            )
            subprocess.run(install, capture_output=True, timeout=300)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench/run.py needs wrk (https://github.com/wg/wrk). Install it with\n"
        "    sudo apt-get install wrk"
    )


def _ms(number: str, unit: str) -> float:
    return float(number) * _TIME_UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Read the figures out of wrk's --latency report."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (done and rps):
        raise BenchError(f"unexpected wrk output:\n{output}")
    percentiles = {
        int(p): _ms(n, unit)
        for p, n, unit in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M
        )
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if sockets:
        socket_errors = dict(
            zip(socket_errors, map(int, sockets.groups()), strict=True)
        )
    requests = int(done.group(1))
    return WrkResult(
        requests=requests,
        seconds=_ms(done.group(2), done.group(3)) / 1000,
        rps=float(rps.group(1)),
        # No completed request, no percentiles: report them as missing.
        p50_ms=percentiles.get(50, math.nan),
        p75_ms=percentiles.get(75, math.nan),
        p90_ms=percentiles.get(90, math.nan),
        p99_ms=percentiles.get(99, math.nan),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def run_wrk(
    port: int, script: Path, connections: int, seconds: int, max_requests: int
) -> WrkResult:
    # One wrk thread drives one connection; two (one per core) for the rest,
    # leaving the servers as much CPU as possible.
    threads = 1 if connections == 1 else 2
    per_thread = math.ceil(max_requests / threads)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout=10s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}",
        "--",
        str(per_thread),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stderr}")
    result = parse_wrk(done.stdout)
    # A stopped thread drops the requests it still had in flight.
    result.capped = result.requests >= per_thread * threads - connections
    return result


def write_script(path: Path, body: dict, key: str) -> Path:
    path.write_text(
        WRK_SCRIPT.format(
            path=CHAT_PATH, key=key, body=json.dumps(body, separators=(",", ":"))
        )
    )
    return path


# -- CPU accounting -------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """Return user + system CPU time of `pid`, all its threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces; the fields after it do not.
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def machine_cpu() -> tuple[int, int]:
    """Return (busy, total) jiffies summed over every core."""
    values = [
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


# -- the run --------------------------------------------------------------------


def reset_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    try:
        conn = psycopg.connect(
            f"{server_url}/postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL at {server_url}: {exc}") from None
    with conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def relay_env(database_url: str, redis_url: str | None) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED_NAMES and not key.startswith(_DROPPED_PREFIXES)
    }
    env.update(
        DATABASE_URL=database_url,
        SWITCHBOARD_SECRET_KEY=secrets.token_urlsafe(48),
        # A Fernet key is 32 random bytes in url-safe base64.
        SWITCHBOARD_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        SWITCHBOARD_DEBUG="0",
        # Production refuses to start without SMTP; the bench sends no email.
        SWITCHBOARD_EMAIL_BACKEND="console",
        SWITCHBOARD_ALLOWED_HOSTS=f"{HOST},localhost",
        SWITCHBOARD_LOG_LEVEL="WARNING",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark Switchboard against the fake upstream it relays to."
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per measurement (5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="seconds of warm-up before each (1)"
    )
    parser.add_argument(
        "--concurrency",
        default="1,16,64",
        help="comma-separated connection counts (1,16,64)",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--skip-direct",
        action="store_true",
        help="measure only through the relay (no added latency or ratio)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="cap on requests per measurement, a safety bound (200000)",
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL, without a database name",
    )
    parser.add_argument(
        "--database",
        default="switchboard_bench",
        help="database to drop and recreate; its name must contain 'bench'",
    )
    parser.add_argument("--redis-url", help="REDIS_URL for the relay (default: none)")
    parser.add_argument(
        "--app",
        default="config.asgi:application",
        help="ASGI app uvicorn serves, to compare a variant (config.asgi:application)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench" / "results" / "latest.json",
        help="where to write the results (bench/results/latest.json)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive integers")
    if unknown := set(args.scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.duration < 1 or args.warmup < 0:
        parser.error("--duration must be at least 1 and --warmup at least 0")
    # The database is dropped without asking: refuse anything not obviously
    # a scratch benchmark database.
    if not re.fullmatch(r"[a-z0-9_]*bench[a-z0-9_]*", args.database):
        parser.error("--database must be lower-case [a-z0-9_] and contain 'bench'")
    return args


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(
    args: argparse.Namespace,
    children: Children,
    relay: subprocess.Popen,
    ports: dict[str, int],
    scripts: dict[tuple[str, str], Path],
) -> list[Measurement]:
    targets = ["relay"] if args.skip_direct else ["direct", "relay"]
    measurements = []
    for scenario in args.scenarios:
        for concurrency in args.concurrency:
            m = Measurement(scenario=scenario, concurrency=concurrency)
            for target in targets:
                script = scripts[target, scenario]
                if args.warmup:
                    warm = run_wrk(
                        ports[target],
                        script,
                        concurrency,
                        args.warmup,
                        args.max_requests,
                    )
                    m.warmup_requests[target] = warm.requests
                children.check_alive()
                cpu_before = process_cpu_seconds(relay.pid)
                busy_before, total_before = machine_cpu()
                started = time.monotonic()
                result = run_wrk(
                    ports[target], script, concurrency, args.duration, args.max_requests
                )
                if target == "relay":
                    m.wall_seconds = time.monotonic() - started
                    m.relay_cpu_seconds = process_cpu_seconds(relay.pid) - cpu_before
                    busy_after, total_after = machine_cpu()
                    m.machine_busy_pct = (
                        100 * (busy_after - busy_before) / (total_after - total_before)
                    )
                setattr(m, target, result)
                progress(
                    f"  {scenario:9} c={concurrency:<3} {target:6} "
                    f"{result.rps:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
                    f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                )
            measurements.append(m)
    return measurements


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def table(measurements: list[Measurement]) -> str:
    header = (
        f"{'scenario':9} {'conc':>4} | {'direct rps':>10} {'p50 ms':>7} "
        f"{'p99 ms':>7} | {'relay rps':>9} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'+p50 ms':>7} {'ratio':>5} | {'CPU ms/req':>10} {'relay CPU':>9}"
    )
    lines = [header, "-" * len(header)]
    for m in measurements:
        d, r = m.direct, m.relay
        lines.append(
            f"{m.scenario:9} {m.concurrency:>4} | "
            f"{_fmt(d and d.rps, '10.0f'):>10} {_fmt(d and d.p50_ms, '7.2f'):>7} "
            f"{_fmt(d and d.p99_ms, '7.2f'):>7} | "
            f"{_fmt(r and r.rps, '9.0f'):>9} {_fmt(r and r.p50_ms, '7.2f'):>7} "
            f"{_fmt(r and r.p99_ms, '7.2f'):>7} | "
            f"{_fmt(m.added_p50_ms, '+7.2f'):>7} "
            f"{_fmt(m.throughput_ratio, '5.3f'):>5} | "
            f"{_fmt(m.relay_cpu_ms_per_request, '10.2f'):>10} "
            f"{_fmt(m.relay_cpu_pct, '8.0f') + '%':>9}"
        )
    return "\n".join(lines)


def evaluate_targets(measurements: list[Measurement], scenarios: list[str]) -> list:
    by_key = {(m.scenario, m.concurrency): m for m in measurements}
    targets = []
    for scenario in scenarios:
        m = by_key.get((scenario, TARGET_P50_CONCURRENCY))
        added = m.added_p50_ms if m else None
        targets.append(
            {
                "name": f"{scenario}: added p50 at c={TARGET_P50_CONCURRENCY}",
                "limit": f"<= {TARGET_ADDED_P50_MS} ms",
                "value": _round(added),
                "met": None if added is None else added <= TARGET_ADDED_P50_MS,
            }
        )
        m = by_key.get((scenario, TARGET_RPS_CONCURRENCY))
        rps = m.relay.rps if m and m.relay else None
        targets.append(
            {
                "name": f"{scenario}: relay req/s at c={TARGET_RPS_CONCURRENCY}",
                "limit": f">= {TARGET_RELAY_RPS:.0f}",
                "value": _round(rps, 1),
                "met": None if rps is None else rps >= TARGET_RELAY_RPS,
            }
        )
    return targets


def evaluate_checks(
    measurements: list[Measurement],
    stats: dict,
    audit: dict,
    relay_requests: int,
    in_flight_bound: int,
) -> list:
    runs = [
        (m.scenario, m.concurrency, target, result)
        for m in measurements
        for target, result in (("direct", m.direct), ("relay", m.relay))
        if result
    ]
    errors = sum(result.errors for *_, result in runs)
    capped = [f"{s} c={c} {t}" for s, c, t, result in runs if result.capped]
    records = stats["usage_records"]
    by_status = stats["by_status"]
    # wrk abandons the requests still in flight when a run ends: the relay
    # records those too (usually as client_closed), at most one per connection.
    unexpected = {
        status: n
        for status, n in by_status.items()
        if status not in ("ok", "client_closed")
    }
    expected_balance = stats["granted_nano_usd"] - stats["charged_nano_usd"]
    return [
        {
            "name": "wrk: no non-2xx responses or socket errors",
            "value": errors,
            "met": errors == 0,
        },
        {
            "name": "wrk: no run hit --max-requests",
            "value": capped,
            "met": not capped,
        },
        {
            "name": "usage records cover every relayed request",
            "value": f"{records} records for {relay_requests} completed "
            f"(+ at most {in_flight_bound} cut off by wrk)",
            "met": relay_requests <= records <= relay_requests + in_flight_bound,
        },
        {
            "name": "usage records: only ok / client_closed",
            "value": by_status,
            "met": not unexpected
            and by_status.get("client_closed", 0) <= in_flight_bound,
        },
        {
            "name": "no holds left open",
            "value": stats["open_holds"],
            "met": stats["open_holds"] == 0 and stats["wallet_held_nano_usd"] == 0,
        },
        {
            "name": "wallet balance = grant - charged",
            "value": stats["wallet_balance_nano_usd"],
            "met": stats["wallet_balance_nano_usd"] == expected_balance,
        },
        {
            "name": "manage.py billing_audit",
            "value": audit["output"],
            "met": audit["returncode"] == 0,
        },
    ]


def machine_info() -> dict:
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.split("\n", 1)[0]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "wrk": wrk_version.strip(),
        "commit": commit,
        # Other work on the machine skews every figure: note how busy it was.
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
    }


def print_checks(title: str, items: list) -> None:
    print(f"\n{title}")
    for item in items:
        mark = {True: "PASS", False: "FAIL", None: "n/a "}[item["met"]]
        limit = f" (target {item['limit']})" if "limit" in item else ""
        print(f"  [{mark}] {item['name']}: {item['value']}{limit}")


def run(args: argparse.Namespace, children: Children, tmp: Path) -> dict:
    ports = {"direct": free_port(), "relay": free_port()}
    upstream_url = f"http://{HOST}:{ports['direct']}/v1"
    database_url = f"{args.postgres}/{args.database}"
    env = relay_env(database_url, args.redis_url)

    progress(f"fake upstream on {upstream_url}")
    children.start(
        "upstream",
        [PYTHON, "-m", "tests.fakes.upstream", "--port", str(ports["direct"])],
        env,
    )
    progress(f"database {args.database}: recreate, migrate, seed")
    reset_database(args.postgres, args.database)
    run_checked([PYTHON, "manage.py", "migrate", "--no-input", "--verbosity", "0"], env)
    seeded = json.loads(
        run_checked(
            [PYTHON, "bench/fixtures.py", "seed", upstream_url, MODEL], env
        ).splitlines()[-1]
    )
    key = seeded["api_key"]

    progress(f"switchboard on http://{HOST}:{ports['relay']}")
    relay = children.start(
        "relay",
        [
            PYTHON,
            "-m",
            "uvicorn",
            args.app,
            "--host",
            HOST,
            "--port",
            str(ports["relay"]),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "5",
        ],
        env,
    )

    scripts = {}
    smoke = 0
    for scenario in args.scenarios:
        for target in ("direct", "relay"):
            body = request_body(
                scenario, direct=target == "direct", max_tokens=args.max_tokens
            )
            target_key = "sk-fake" if target == "direct" else key
            what = f"{target} {scenario}"
            port = ports[target]
            wait_until(lambda port=port: port_open(port), what, children)
            smoke_test(ports[target], body, target_key, what)
            if target == "relay":
                smoke += 1
            scripts[target, scenario] = write_script(
                tmp / f"{target}-{scenario}.lua", body, target_key
            )

    progress(
        f"measuring: {args.duration}s each (+{args.warmup}s warm-up), "
        f"concurrency {args.concurrency}"
    )
    measurements = measure(args, children, relay, ports, scripts)

    relay_requests = smoke + sum(
        m.relay.requests + m.warmup_requests.get("relay", 0) for m in measurements
    )
    in_flight_bound = sum(
        m.concurrency * (2 if args.warmup else 1) for m in measurements
    )
    children.check_alive()
    children.stop("relay")
    stats = json.loads(
        run_checked([PYTHON, "bench/fixtures.py", "stats"], env).splitlines()[-1]
    )
    done = subprocess.run(
        [PYTHON, "manage.py", "billing_audit"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    audit = {
        "returncode": done.returncode,
        "output": (done.stdout + done.stderr).strip(),
    }
    return {
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "scenarios": args.scenarios,
            "model": MODEL,
            "max_tokens": args.max_tokens,
            "database": args.database,
            "redis": bool(args.redis_url),
            "server": "uvicorn, 1 process, uvloop, httptools, DEBUG off",
            "app": args.app,
        },
        "measurements": measurements,
        "relay_requests": relay_requests,
        "in_flight_bound": in_flight_bound,
        "stats": stats,
        "audit": audit,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_wrk()
    # A shell starts background jobs with SIGINT ignored; Ctrl-C or kill -INT
    # must still stop the run and its servers.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGHUP, _raise_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        children = Children(Path(tmp))
        try:
            outcome = run(args, children, Path(tmp))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            for name in children.procs:
                print(f"--- {name} log ---\n{children.log_tail(name)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; stopping the servers", file=sys.stderr)
            return 130
        finally:
            children.stop_all()

    measurements = outcome.pop("measurements")
    targets = evaluate_targets(measurements, args.scenarios)
    checks = evaluate_checks(
        measurements,
        outcome["stats"],
        outcome["audit"],
        outcome["relay_requests"],
        outcome["in_flight_bound"],
    )
    print()
    print(table(measurements))
    print_checks("Targets", targets)
    print_checks("Correctness", checks)

    report = {
        **outcome,
        "results": [m.as_dict() for m in measurements],
        "targets": targets,
        "checks": checks,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    # NaN (no completed request) is not JSON: write null instead.
    args.json.write_text(json.dumps(_nan_to_none(report), indent=2, default=str) + "\n")
    print(f"\nJSON written to {args.json}")

    if not all(check["met"] for check in checks):
        return 1
    if args.strict and not all(target["met"] for target in targets):
        return 1
    return 0


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
