"""
What the benchmark reads about processes: CPU time and memory from /proc,
PostgreSQL's backends serving one database, Redis's own CPU counters, and
the CPU pinning of the servers and load generators.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def memory_kb(pid: int) -> dict[str, int]:
    """Return the resident set now (VmRSS) and at its peak (VmHWM), in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return {"rss_kb": found.get("VmRSS", 0), "hwm_kb": found.get("VmHWM", 0)}


# -- PostgreSQL ---------------------------------------------------------------


class PostgresCpu:
    """
    CPU time of the PostgreSQL backends connected to one database.

    The relay keeps its connections in a pool, so the same backends serve a
    whole run and a before/after difference of their CPU time is what the
    run cost PostgreSQL. A backend that appears during the run counts from
    zero; one that exits during it is lost (the pool does not close
    connections within a run). Background processes (WAL writer,
    checkpointer, autovacuum) are left out: the server is shared with other
    databases, and their share of them cannot be told apart.
    """

    def __init__(self, server_url: str, database: str) -> None:
        import psycopg

        self.database = database
        # Connected to `postgres`, so this connection is not one of the
        # backends it measures.
        self.conn = psycopg.connect(
            f"{server_url}/postgres", autocommit=True, connect_timeout=5
        )
        self.readable = True

    def snapshot(self) -> dict[int, float]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
        ).fetchall()
        found = {}
        for (pid,) in rows:
            try:
                found[pid] = process_cpu_seconds(pid)
            except FileNotFoundError:
                pass  # exited since the query
            except PermissionError:
                # PostgreSQL on another host or in another PID namespace.
                self.readable = False
        return found

    def delta(self, before: dict[int, float]) -> float | None:
        after = self.snapshot()
        if not self.readable or not (after or before):
            return None
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())

    def close(self) -> None:
        self.conn.close()


# -- Redis ----------------------------------------------------------------------


class RedisCpu:
    """
    CPU time of the whole Redis server, from its own INFO counters.

    Redis serves every database number of every user of the server: on a
    shared machine this figure includes other work.
    """

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)

    def seconds(self) -> float | None:
        try:
            info = self.client.info("cpu")
        except Exception:  # noqa: BLE001 - a missing figure, not a failed run
            return None
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def close(self) -> None:
        self.client.close()


# -- pinning ----------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Which CPU each process runs on; empty when nothing is pinned."""

    server_cpu: int | None = None
    load_cpu: int | None = None
    reason: str = ""

    @property
    def pinned(self) -> bool:
        return self.server_cpu is not None

    def server(self, argv: list[str]) -> list[str]:
        """`argv` run on the proxy's CPU (the relay, LiteLLM)."""
        return self._on(self.server_cpu, argv)

    def load(self, argv: list[str]) -> list[str]:
        """`argv` run on the load CPU (the fake upstream, wrk, stream client)."""
        return self._on(self.load_cpu, argv)

    @staticmethod
    def _on(cpu: int | None, argv: list[str]) -> list[str]:
        # taskset execs the command: the child's pid is the server's own.
        return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]

    def describe(self) -> str:
        if not self.pinned:
            return f"not pinned ({self.reason})"
        return (
            f"relay / LiteLLM on CPU {self.server_cpu}; fake upstream, wrk and "
            f"the stream client on CPU {self.load_cpu}; PostgreSQL and Redis "
            "not pinned"
        )

    def as_dict(self) -> dict:
        return {
            "pinned": self.pinned,
            "server_cpu": self.server_cpu,
            "load_cpu": self.load_cpu,
            "note": self.describe(),
        }


def choose_layout(enabled: bool) -> Layout:
    """Pin to the first two CPUs this process may use, when taskset exists."""
    if not enabled:
        return Layout(reason="--no-pin")
    if not shutil.which("taskset"):
        return Layout(reason="taskset not found")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return Layout(reason=f"only {len(cpus)} CPU available")
    return Layout(server_cpu=cpus[0], load_cpu=cpus[1])
