"""
Where one relayed request's CPU goes, without HTTP noise on the client side.

Drives `config.asgi:application` in-process (no uvicorn, no wrk): builds the
ASGI scope, feeds the body and collects the response messages, so what is
measured is the relay's own work, upstream call and PostgreSQL round trips
included. The fake upstream runs as a separate process on loopback.

    .venv/bin/python bench/profile_request.py --requests 2000            # timing
    .venv/bin/python bench/profile_request.py --cprofile 30              # top 30
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
        .venv/bin/python bench/profile_request.py --requests 300 --instructions

`--instructions` prints nothing but a marker around the measured loop, so
`callgrind_annotate` figures can be divided by the request count; compare
two runs with the same count (warm-up is outside the count, not outside
callgrind: subtract a `--requests 0` run for the per-request figure).

The database (`switchboard_bench_profile` by default) is dropped and seeded
as bench/run.py does.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402

MODEL = bench.MODEL


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--cprofile", type=int, default=0, metavar="TOP")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="switchboard_bench_profile")
    parser.add_argument("--redis-url", default=None)
    return parser.parse_args()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def prepare_environment(args) -> tuple[subprocess.Popen, str]:
    env = bench.relay_env(f"{args.postgres}/{args.database}", args.redis_url)
    port = bench.free_port()
    upstream = subprocess.Popen(
        [bench.PYTHON, "-m", "tests.fakes.upstream", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not _listening(port):
        if time.monotonic() > deadline or upstream.poll() is not None:
            raise SystemExit("the fake upstream did not start")
        time.sleep(0.05)
    bench.reset_database(args.postgres, args.database)
    bench.run_checked(
        [bench.PYTHON, "manage.py", "migrate", "--no-input", "--verbosity", "0"], env
    )
    seeded = bench.run_checked(
        [
            bench.PYTHON,
            "bench/fixtures.py",
            "seed",
            f"http://127.0.0.1:{port}/v1",
            MODEL,
        ],
        env,
    )
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import json

    return upstream, json.loads(seeded.splitlines()[-1])["api_key"]


def scope_for(key: str, body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def one(application, scope: dict, body: bytes) -> int:
    sent = []
    delivered = False
    finished = asyncio.Event()

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            finished.set()

    await application(scope, receive, send)
    finished.set()
    return sent[0]["status"]


async def drive(args, key: str) -> None:
    import orjson

    from config.asgi import application

    body = orjson.dumps(
        bench.request_body(
            "stream" if args.stream else "nonstream", direct=False, max_tokens=16
        )
    )
    scope = scope_for(key, body)
    for _ in range(args.warmup):
        status = await one(application, scope, body)
        if status != 200:
            raise SystemExit(f"warm-up request answered {status}")
    profiler = None
    if args.cprofile:
        import cProfile

        # CPU time, not wall time: on a busy machine a socket write that
        # wakes the peer can be preempted and look expensive.
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    if args.instructions:
        print("measure: start", flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(args.requests):
        await one(application, scope, body)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if args.instructions:
        print("measure: end", flush=True)
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats("tottime")
        stats.print_stats(args.cprofile)
        stats.sort_stats("cumulative").print_stats(args.cprofile)
    if args.requests:
        print(
            f"{args.requests} requests: {elapsed / args.requests * 1000:.3f} ms "
            f"each, {cpu / args.requests * 1000:.3f} ms of relay CPU each"
        )
    from relay.background import drain

    await drain()


def main() -> None:
    args = parse_args()
    upstream, key = prepare_environment(args)
    try:
        import django

        django.setup(set_prefix=False)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(drive(args, key))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


if __name__ == "__main__":
    main()
