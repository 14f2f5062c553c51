"""
Every quickstart runs as printed, against a live Switchboard serving the demo
channel: the examples of the `demo_setup` banner (what `make run` prints),
the README's code blocks marked `<!-- quickstart -->` (or
`<!-- quickstart: ~/.codex/config.toml -->` for a file to write), and the
blocks of the rendered /docs/ page marked `<pre data-quickstart="KIND">`
(sh, python, node, install, or the file to write).

They are filled in as a user fills them in:
- the banner prints the real address and the demo key: run as printed;
- README: the placeholders `http://127.0.0.1:8000` (the address) and
  `sk-sb-...` (the key) replaced, every occurrence;
- /docs/ prints the site's own address: `sk-sb-...` replaced.

What a fresh machine has to install first is never installed here (no
network in tests): the lines that create and activate a virtual environment
and `pip install` are left out of the run, Python runs on the project's
virtual environment (which has openai and anthropic), the Node.js example
finds tests/clients' openai package, and codex and claude come from
tests/clients as `npm i -g` would put them on the PATH. The install steps are
checked instead: each one comes before the code that needs it.
"""

import html
import io
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import Tenant
from billing.models import LedgerEntry
from billing.money import usd_to_nano
from billing.services import wallet_credit
from relay.management.commands.demo_setup import DEMO_TENANT
from relay.models import UsageRecord
from tests import factories
from tests.clients.harness import (
    CLAUDE,
    CODEX,
    ProxyCanary,
    client_env,
    run_bounded,
)

ROOT = Path(settings.BASE_DIR)
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
NODE_MODULES = ROOT / "tests" / "clients" / "node_modules"
README_ADDRESS = "http://127.0.0.1:8000"
KEY_PLACEHOLDER = "sk-sb-..."

# Lines of a shell example that install what it needs: shown to the user,
# not run here.
INSTALL_LINE = re.compile(r"^(python3 -m venv \S+|\. \S+/bin/activate|pip install .+)$")
# What a piece of code needs installed first, and the instruction that says how.
NEEDS = [
    ("from openai import", "pip install openai"),
    ("import anthropic", "pip install anthropic"),
    ('from "openai"', "npm install openai"),
    ("codex exec", ("npm i -g @openai/codex", "npm install -g @openai/codex")),
    (
        "claude -p",
        (
            "npm i -g @anthropic-ai/claude-code",
            "npm install -g @anthropic-ai/claude-code",
        ),
    ),
]


@dataclass
class Snippet:
    source: str
    # "sh", "python", "node", "install" or the path of a file to write.
    kind: str
    code: str
    # What the reader has seen before it: the document up to the snippet.
    before: str

    def __repr__(self) -> str:
        return f"<{self.source} {self.kind}: {self.code[:60]!r}>"


# -- reading the snippets ------------------------------------------------------


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; a here-document stays whole."""
    paragraphs, current, heredoc = [], [], None
    for line in text.splitlines():
        if heredoc is None and not line.strip():
            if current:
                paragraphs.append("\n".join(current))
            current = []
            continue
        current.append(line)
        if heredoc is not None and line == heredoc:
            heredoc = None
        elif match := re.search(r"<<'(\w+)'$", line):
            heredoc = match.group(1)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def banner_snippets(banner: str) -> list[Snippet]:
    """The banner's examples: each one the code after a paragraph of prose
    ending in a colon (demo_setup.banner's layout)."""
    text = banner[banner.index("\nTry it") :]
    snippets, seen, code, intro = [], [], [], ""

    def close():
        if code:
            path = re.search(r"~/\S+\.toml", intro)
            snippets.append(
                Snippet(
                    "banner",
                    path.group(0) if path else "sh",
                    "\n\n".join(code) + "\n",
                    "\n\n".join(seen[: -len(code)]),
                )
            )
            code.clear()

    for paragraph in _paragraphs(text):
        seen.append(paragraph)
        if paragraph.endswith(":"):
            close()
            intro = paragraph
        else:
            code.append(paragraph)
    close()
    return snippets


def readme_snippets(readme: str, base_url: str, key: str) -> list[Snippet]:
    filled = readme.replace(README_ADDRESS, base_url).replace(KEY_PLACEHOLDER, key)
    marked = re.compile(
        r"<!-- quickstart(?:: (?P<path>\S+))? -->\n```(?P<lang>\w+)\n(?P<code>.*?)```",
        re.S,
    )
    return [
        Snippet(
            "README",
            match["path"] or "sh",
            match["code"],
            filled[: match.start()],
        )
        for match in marked.finditer(filled)
    ]


def docs_snippets(page: str, key: str) -> list[Snippet]:
    marked = re.compile(
        r'<pre data-quickstart="([^"]+)"><code(?: id="[^"]*")?>(.*?)</code></pre>', re.S
    )
    return [
        Snippet(
            "docs",
            html.unescape(match.group(1)),
            html.unescape(match.group(2)).replace(KEY_PLACEHOLDER, key) + "\n",
            html.unescape(re.sub(r"<[^>]+>", " ", page[: match.start()])),
        )
        for match in marked.finditer(page)
    ]


# -- the live site -------------------------------------------------------------


@dataclass
class Printed:
    """What a user reads: the banner, the README and the /docs/ page of a
    site at `base_url`, whose key is `key`."""

    base_url: str
    key: str
    banner: str
    docs_page: str

    def snippets(self, source: str) -> list[Snippet]:
        if source == "banner":
            return banner_snippets(self.banner)
        if source == "README":
            return readme_snippets(README.read_text(), self.base_url, self.key)
        return docs_snippets(self.docs_page, self.key)


def _demo_setup(base_url: str) -> tuple[str, str]:
    """Run `make run`'s demo_setup; return its output and the demo key."""
    factories.publish(factories.PRICES)
    factories.publish(factories.CLAUDE_PRICES)
    factories.gpt_image_price()
    factories.model_price("text-embedding-3-small", input_per_mtok="0.02")
    out = io.StringIO()
    call_command("demo_setup", base_url=base_url, stdout=out)
    banner = out.getvalue()
    return banner, re.search(r"demo API key: (sk-sb-\S+)", banner).group(1)


@dataclass
class Site:
    printed: Printed
    tenant: Tenant
    canary: ProxyCanary


@pytest.fixture
def site(relay_server, transactional_db, settings):
    """A live Switchboard set up as `make run` sets it up (demo_setup), with
    money enough for every example (the image ones included)."""
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    base_url = relay_server.base_url
    banner, key = _demo_setup(base_url)
    tenant = Tenant.objects.get(name=DEMO_TENANT)
    wallet_credit(
        tenant_id=tenant.pk,
        amount=usd_to_nano("20.00"),
        kind=LedgerEntry.Kind.GRANT,
        reference=f"quickstarts:{tenant.pk}",
    )
    page = httpx.get(f"{base_url}/docs/", timeout=10)
    assert page.status_code == 200
    canary = ProxyCanary().start()
    yield Site(Printed(base_url, key, banner, page.text), tenant, canary)
    canary.stop()


@pytest.fixture
def printed(db, client, settings) -> Printed:
    """The same texts without a live server, for reading only."""
    settings.SWITCHBOARD_DEMO_PROVIDER = True
    settings.ALLOWED_HOSTS = ["relay.test"]
    banner, key = _demo_setup("http://relay.test")
    page = client.get("/docs/", HTTP_HOST="relay.test")
    assert page.status_code == 200
    return Printed("http://relay.test", key, banner, page.content.decode())


# -- running them --------------------------------------------------------------


def _environment(home: Path, proxy: str) -> dict[str, str]:
    """A user's shell on a fresh machine that has installed what the
    examples say: the SDKs' python first on the PATH, then codex and claude.
    Anything not on loopback goes to the canary proxy, which refuses it."""
    path = os.pathsep.join(
        [str(VENV_BIN), str(NODE_MODULES / ".bin"), os.environ["PATH"]]
    )
    return client_env(home, proxy, path)


def without_install_lines(code: str) -> str:
    return (
        "\n".join(line for line in code.splitlines() if not INSTALL_LINE.match(line))
        + "\n"
    )


def run_snippet(snippet: Snippet, *, home: Path, work: Path, env: dict):
    """Run one example the way its text says; None for a file it writes."""
    if snippet.kind == "install":
        return None
    if snippet.kind.startswith("~/"):
        target = home / snippet.kind.removeprefix("~/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(snippet.code)
        return None
    if snippet.kind == "sh":
        script = work / "snippet.sh"
        script.write_text(without_install_lines(snippet.code))
        return run_bounded(["bash", "-e", str(script)], cwd=work, env=env)
    if snippet.kind == "python":
        (work / "quickstart.py").write_text(snippet.code)
        return run_bounded(["python", "quickstart.py"], cwd=work, env=env)
    if snippet.kind == "node":
        (work / "quickstart.mjs").write_text(snippet.code)
        return run_bounded(["node", "quickstart.mjs"], cwd=work, env=env)
    raise AssertionError(f"unknown kind of snippet: {snippet!r}")


@pytest.mark.parametrize("source", ["banner", "README", "docs"])
def test_every_quickstart_runs_as_printed(site, source, tmp_path):
    snippets = site.printed.snippets(source)
    runnable = [s for s in snippets if s.kind != "install"]
    assert len(runnable) >= 4, snippets
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # Where "Explain what this repository does" is asked: in a repository.
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    if source == "docs":
        # `npm install openai` in the folder of quickstart.mjs.
        (work / "node_modules").symlink_to(NODE_MODULES)
    env = _environment(home, site.canary.url)
    records = UsageRecord.objects.filter(tenant=site.tenant)

    for snippet in snippets:
        before = records.count()
        result = run_snippet(snippet, home=home, work=work, env=env)
        if result is None:
            continue
        shown = f"{snippet!r}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        assert result.returncode == 0, shown
        assert '"error"' not in result.stdout, shown
        if "/v1/models" in snippet.code and "/v1/chat" not in snippet.code:
            assert '"object": "list"' in result.stdout.replace('":"', '": "'), shown
        else:
            # It reached the relay and was served (the demo channel answers).
            assert records.count() > before, shown
        assert not records.exclude(status=UsageRecord.Status.OK).exists(), shown


@pytest.mark.parametrize("source", ["banner", "README", "docs"])
def test_every_snippet_says_first_how_to_install_what_it_needs(printed, source):
    snippets = printed.snippets(source)
    needing = 0
    for snippet in snippets:
        if snippet.kind == "install":
            continue
        for trigger, instructions in NEEDS:
            if trigger not in snippet.code:
                continue
            needing += 1
            if isinstance(instructions, str):
                instructions = (instructions,)
            # The page before it, and its own lines before the code.
            read = snippet.before + snippet.code[: snippet.code.index(trigger)]
            assert any(i in read for i in instructions), (snippet, instructions)
            if instructions[0].startswith("pip install"):
                # A fresh Debian or Ubuntu refuses pip outside a virtual
                # environment: one is made and activated before it.
                venv = read.rfind("python3 -m venv")
                activate = read.rfind("/bin/activate")
                pip = max(read.rfind(i) for i in instructions)
                assert -1 < venv < activate < pip, snippet
    assert needing >= 3, snippets


def test_the_readme_names_its_placeholders_and_every_block_uses_them():
    readme = README.read_text()
    assert f"`{README_ADDRESS}`" in readme and f"`{KEY_PLACEHOLDER}`" in readme
    blocks = readme_snippets(readme, "http://relay.test", "sk-sb-real")
    assert len(blocks) >= 5
    joined = "".join(block.code for block in blocks)
    assert README_ADDRESS not in joined and KEY_PLACEHOLDER not in joined
    assert "http://relay.test" in joined and "sk-sb-real" in joined


def test_the_clients_are_installed():
    """Fail, never skip, when tests/clients' npm packages are missing."""
    missing = [
        str(path)
        for path in (CODEX, CLAUDE, NODE_MODULES / "openai" / "package.json")
        if not path.exists()
    ]
    assert missing == [], "run `make test`, which installs tests/clients (npm ci)"
    assert shutil.which("node"), "the Node.js example needs node"
