"""
Run the real coding agents, Codex CLI and Claude Code, against a live relay.

Each run gets a home of its own (no developer's config, login or history can
leak in), talks only to the base URL it is given, and is bounded in time. The
npm packages in this folder bring the native binaries; `make test` installs
them with `npm ci`.
"""

import json
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing.models import Wallet
from relay.models import UsageRecord
from tests.conftest import CLAUDE_PRICES, PRICES

HERE = Path(__file__).resolve().parent
CODEX = HERE / "node_modules" / ".bin" / "codex"
CLAUDE = HERE / "node_modules" / ".bin" / "claude"
# A healthy run takes well under two seconds; the clients' retries are off, so
# only a hang gets anywhere near this.
RUN_TIMEOUT = 60
# Loopback is reached directly; anything else goes to the canary proxy.
NO_PROXY = "127.0.0.1,localhost,::1"
PROMPT = "Say hello"


def require_binaries() -> None:
    """Fail, never skip, when the npm clients are not installed."""
    missing = [path.name for path in (CODEX, CLAUDE) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed in {HERE / 'node_modules'}: "
            "run `make test`, which installs the npm clients (npm ci)",
            pytrace=False,
        )


class ProxyCanary:
    """
    A proxy on loopback that serves nothing and remembers who asked.

    Both clients honour HTTP(S)_PROXY for every host not in NO_PROXY, so with
    this set as their proxy an attempt to reach anything but loopback (update
    checks, telemetry, plugin sync) arrives here instead of leaving the machine,
    and is refused.
    """

    PROBE = "PROBE"

    def __init__(self) -> None:
        # One entry per connection, in the order accepted; a handler thread
        # replaces it with the request line ("CONNECT host:443 HTTP/1.1").
        self._seen: list[str] = []
        seen, order = self._seen, {}

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                order[client_address] = len(seen)
                seen.append("(connected, sent nothing yet)")
                return True

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                try:
                    head = self.request.recv(4096)
                except OSError:
                    head = b""
                if head:
                    line = head.split(b"\r\n", 1)[0].decode("latin-1")
                    seen[order[self.client_address]] = line
                self.request.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )

        self._server = Server(("127.0.0.1", 0), Handler)
        self.address = self._server.server_address
        self.url = f"http://127.0.0.1:{self.address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "ProxyCanary":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self) -> list[str]:
        """
        Return the request lines received, counting every connection made
        before the call: connections are accepted in order, so once a probe
        of its own is answered, all earlier ones are in.
        """
        with socket.create_connection(self.address, timeout=5) as probe:
            probe.sendall(self.PROBE.encode() + b"\r\n\r\n")
            probe.recv(1)
        return [line for line in self._seen if line != self.PROBE]


@dataclass(repr=False)
class ClientRun:
    """What one client run printed, parsed."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    reply: str = ""
    # Tokens as the client reports them: (input incl. cached, cached, output).
    usage: tuple[int, int, int] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    # The errors the client reported, first in a failed assertion's message.
    errors: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # What pytest shows when an assertion on a run fails.
        return (
            f"exit {self.returncode} after {self.seconds:.1f}s: {self.errors}\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


def client_env(home: Path, proxy: str, path: str | None = None) -> dict[str, str]:
    """
    A client program's environment, built from nothing: a developer's
    OPENAI_API_KEY, ANTHROPIC_* or CODEX_HOME must not change what the test
    runs. Anything not on loopback goes to `proxy` (a ProxyCanary, which
    refuses it). `path`: the PATH (this process's by default).
    """
    env = {
        "PATH": path or os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,
    }
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy
    return env


def run_bounded(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run `argv` to its end; fail the test if it takes over `timeout`
    seconds. In a session of its own, so that a timeout kills the whole
    tree: on Node < 23 the codex wrapper stays as the parent of the native
    binary."""
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"{argv[0]} did not finish in {timeout}s\n"
            f"--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
        )
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> ClientRun:
    require_binaries()
    started = time.monotonic()
    done = run_bounded(argv, cwd=cwd, env=env)
    return ClientRun(
        done.returncode, done.stdout, done.stderr, time.monotonic() - started
    )


def codex_config(*, base_url: str, model: str) -> str:
    """
    Return a config.toml for one quiet `codex exec` against `base_url`.

    Left at Codex's defaults: the request itself (tools, reasoning, include,
    store: false...), which is what customers send. Turned off: analytics
    (a lookup of ab.chatgpt.com) and plugins (a `git ls-remote` of a GitHub
    repository and a chatgpt.com lookup), the only traffic Codex 0.171 starts
    beyond the provider; history, the update check, feedback and the
    snapshot of the user's login shell for good measure; retries, which
    would turn one relay error into 30 requests over 25 seconds.
    """
    return f"""\
model = "{model}"
model_provider = "switchboard"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[history]
persistence = "none"

[features]
plugins = false
shell_snapshot = false

[model_providers.switchboard]
name = "Switchboard"
base_url = "{base_url}"
env_key = "SWITCHBOARD_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000
"""


def codex_exec(
    tmp_path: Path, *, base_url: str, api_key: str, model: str, proxy: str
) -> ClientRun:
    """Run `codex exec --json PROMPT` once and parse its JSONL events."""
    home, work = tmp_path / "home", tmp_path / "work"
    codex_home = home / ".codex"
    for folder in (codex_home, work):
        folder.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        codex_config(base_url=base_url, model=model)
    )
    env = client_env(home, proxy)
    env.update(CODEX_HOME=str(codex_home), SWITCHBOARD_API_KEY=api_key)
    argv = [str(CODEX), "exec", "--json", "--ephemeral", "--skip-git-repo-check"]
    run = _run([*argv, PROMPT], cwd=work, env=env)
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            run.events.append(json.loads(line))
    run.reply = "".join(
        event["item"].get("text", "")
        for event in run.events
        if event.get("type") == "item.completed"
        and event["item"].get("type") == "agent_message"
    )
    for event in run.events:
        if event.get("type") in ("error", "turn.failed"):
            run.errors.append(event.get("message") or str(event.get("error")))
        if event.get("type") == "turn.completed":
            usage = event["usage"]
            run.usage = (
                usage["input_tokens"],
                usage["cached_input_tokens"],
                usage["output_tokens"],
            )
    return run


def claude_print(
    tmp_path: Path,
    *,
    base_url: str,
    api_key: str,
    model: str,
    proxy: str,
    key_header: str = "authorization",
) -> ClientRun:
    """
    Run `claude -p PROMPT --output-format json` once and parse its result.

    The key goes in `Authorization: Bearer` (ANTHROPIC_AUTH_TOKEN, as for a
    gateway) or, with key_header="x-api-key", in `X-Api-Key`
    (ANTHROPIC_API_KEY).

    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC turns off the updater, telemetry,
    error reporting and the `HEAD /api/hello` probe Claude Code otherwise
    sends to the base URL first. The small/fast model is the main one, so any
    side request goes to a model the channel serves and shows up in the
    usage log. No retries: one relay error is one request.
    """
    home, work = tmp_path / "home", tmp_path / "work"
    for folder in (home / ".claude", work):
        folder.mkdir(parents=True)
    env = client_env(home, proxy)
    env.update(
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_MODEL=model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL=model,
        ANTHROPIC_SMALL_FAST_MODEL=model,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_MAX_RETRIES="0",
        API_TIMEOUT_MS="30000",
    )
    key_variable = {
        "authorization": "ANTHROPIC_AUTH_TOKEN",
        "x-api-key": "ANTHROPIC_API_KEY",
    }
    env[key_variable[key_header]] = api_key
    run = _run(
        [str(CLAUDE), "-p", PROMPT, "--output-format", "json"], cwd=work, env=env
    )
    if run.stdout.lstrip().startswith("{"):
        result = json.loads(run.stdout)
        run.events.append(result)
        if result.get("is_error"):
            run.errors.append(str(result.get("result")))
        else:
            run.reply = result.get("result", "")
        usage = result.get("usage") or {}
        cached = usage.get("cache_read_input_tokens") or 0
        written = usage.get("cache_creation_input_tokens") or 0
        run.usage = (
            usage.get("input_tokens", 0) + cached + written,
            cached,
            usage.get("output_tokens", 0),
        )
    return run


def nano_per_token(usd_per_mtok: str) -> int:
    # 1e9 nano-USD per dollar over 1e6 tokens.
    return int(Decimal(usd_per_mtok) * 1000)


def catalog_cost(model: str, *, prompt: int, completion: int) -> int:
    """Return the catalog price of uncached tokens of `model`, in nano-USD."""
    input_, _, output = (PRICES.get(model) or CLAUDE_PRICES[model])[:3]
    return prompt * nano_per_token(input_) + completion * nano_per_token(output)


def assert_billed_once(
    customer,
    balance_before: int,
    run: ClientRun,
    *,
    endpoint: str,
    model: str,
    reported: tuple[int, int],
) -> None:
    """
    Assert that the run left one usage record with the tokens the upstream
    `reported` (input, output; no cache), that the client saw the same, and
    that the wallet paid exactly their catalog price.
    """
    record = settled_record(customer.tenant)
    assert (record.endpoint, record.model, record.stream) == (endpoint, model, True)
    assert (record.status, record.usage_source) == ("ok", "reported")
    tokens = (record.prompt_tokens, record.cached_tokens, record.completion_tokens)
    assert tokens == (reported[0], 0, reported[1])
    assert run.usage == tokens, run
    cost = catalog_cost(model, prompt=reported[0], completion=reported[1])
    assert record.cost == record.charged == cost > 0
    assert balance_before - customer.wallet.balance == cost


def settled_record(tenant) -> UsageRecord:
    """
    Return the tenant's one usage record once its hold is released.

    A client may exit on the stream's last event, a moment before the relay
    has written the settlement.
    """
    deadline = time.monotonic() + 5
    while True:
        records = list(UsageRecord.objects.filter(tenant=tenant))
        held = Wallet.objects.get(tenant=tenant).held
        if (records and not held) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert held == 0, f"a hold of {held} nano-USD was never released"
    assert len(records) == 1, [(r.endpoint, r.model, r.status) for r in records]
    return records[0]
