"""
The `streams` scenario's client: open N chat completion streams at once and
time every chunk.

The fake upstream sends one content chunk every `--interval` seconds,
`--chunks` times per stream; this client opens the streams spread evenly
over `--ramp` seconds (so that their chunks do not all fall due at the same
instant) and keeps them all open together, then reports how many completed,
the errors, and the gaps between successive content chunks as each stream
saw them. A gap longer than the interval is delay added on the way: by the
fake and this client (the direct run measures those) and by the relay.

    python bench/streams.py --port P --path /v1/chat/completions --key K \\
        --model M --streams 1000 --chunks 100 --interval 0.1

Prints one JSON object on the last line of stdout. Bounded in time: every
stream and the whole run have a deadline.
"""

import argparse
import asyncio
import json
import math
import resource
import time
from collections import Counter

import aiohttp

HOST = "127.0.0.1"
_DATA = b"data: "
_DONE = b"data: [DONE]"
_CONTENT = b'"content":"'
_EMPTY_CONTENT = b'"content":""'


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted `values`."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


async def one_stream(
    session: aiohttp.ClientSession,
    delay: float,
    url: str,
    body: bytes,
    headers: dict,
    outcome: dict,
) -> None:
    await asyncio.sleep(delay)
    started = time.monotonic()
    times: list[float] = []
    done = False
    try:
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                cause = f"HTTP {response.status}"
                body = await response.read()
                outcome["errors"][cause] += 1
                # One answer per cause says why, without a thousand copies.
                outcome["samples"].setdefault(
                    cause, body[:300].decode(errors="replace")
                )
                return
            async for line in response.content:
                if not line.startswith(_DATA):
                    continue
                if line.startswith(_DONE):
                    done = True
                elif _CONTENT in line and _EMPTY_CONTENT not in line:
                    times.append(time.monotonic())
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        outcome["errors"][type(exc).__name__] += 1
        return
    if not done:
        outcome["errors"]["no [DONE]"] += 1
        return
    if len(times) != outcome["chunks"]:
        outcome["errors"][f"{len(times)} content chunks"] += 1
        return
    outcome["completed"] += 1
    outcome["first_chunk"].append(times[0] - started)
    outcome["gaps"].extend(b - a for a, b in zip(times, times[1:], strict=False))


async def run(args: argparse.Namespace) -> dict:
    body = {
        "model": args.model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": args.chunks,
        "stream": True,
    }
    if args.include_usage:
        body["stream_options"] = {"include_usage": True}
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {args.key}",
    }
    url = f"http://{HOST}:{args.port}{args.path}"
    outcome = {
        "chunks": args.chunks,
        "completed": 0,
        "errors": Counter(),
        "samples": {},
        "gaps": [],
        "first_chunk": [],
    }
    per_stream = args.chunks * args.interval + args.grace
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=per_stream, sock_connect=10)
    started = time.monotonic()
    # trust_env=False: proxy settings must never take this traffic off
    # loopback.
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False
    ) as session:
        step = args.ramp / args.streams
        tasks = [
            asyncio.create_task(
                one_stream(session, i * step, url, raw, headers, outcome)
            )
            for i in range(args.streams)
        ]
        _, pending = await asyncio.wait(tasks, timeout=args.ramp + per_stream + 5)
        for task in pending:
            task.cancel()
        if pending:
            outcome["errors"]["run deadline"] += len(pending)
            await asyncio.gather(*pending, return_exceptions=True)
    wall = time.monotonic() - started

    gaps = sorted(outcome["gaps"])
    first = sorted(outcome["first_chunk"])
    cadence_ms = 1000 * args.interval

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 3)

    def added(value: float | None) -> float | None:
        return None if value is None else round(1000 * value - cadence_ms, 3)

    return {
        "streams": args.streams,
        "chunks": args.chunks,
        "interval_ms": cadence_ms,
        "ramp_s": args.ramp,
        "completed": outcome["completed"],
        "errors": dict(outcome["errors"]),
        "error_count": sum(outcome["errors"].values()),
        "error_samples": outcome["samples"],
        "gaps": len(gaps),
        "gap_p50_ms": ms(percentile(gaps, 50)),
        "gap_p99_ms": ms(percentile(gaps, 99)),
        "gap_max_ms": ms(gaps[-1] if gaps else None),
        "added_p50_ms": added(percentile(gaps, 50)),
        "added_p90_ms": added(percentile(gaps, 90)),
        "added_p99_ms": added(percentile(gaps, 99)),
        "added_max_ms": added(gaps[-1] if gaps else None),
        "first_chunk_p50_ms": ms(percentile(first, 50)),
        "first_chunk_p99_ms": ms(percentile(first, 99)),
        "wall_s": round(wall, 3),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds allowed beyond the cadence"
    )
    parser.add_argument("--include-usage", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # One socket per stream, plus a margin for everything else.
    raise_open_files(args.streams + 256)
    try:
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run
    print(json.dumps(run_loop(run(args))), flush=True)


if __name__ == "__main__":
    main()
