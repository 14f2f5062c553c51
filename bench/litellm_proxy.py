"""
LiteLLM's proxy as a second contender, for `bench/run.py --compare litellm`.

LiteLLM is installed from PyPI into its own virtualenv, bench/.litellm-venv/
(git-ignored, reused when it already holds the pinned version), and run as
one process: no database, one worker, the access log off, every call it
would make to the internet (model cost map, blog posts, telemetry) turned
off or pointed at loopback.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".litellm-venv"
# 1.106 is what the issue measured; newer releases' `proxy` extra pins a
# `litellm-proxy` package that PyPI does not have yet.
VERSION = "1.106.12"
REQUIREMENT = f"litellm[proxy]=={VERSION}"
MASTER_KEY = "sk-bench-litellm"

# LiteLLM fetches its model cost map, blog posts and other data from GitHub
# at start-up unless told to use the copies it ships; telemetry goes off too.
_OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "DISABLE_TELEMETRY": "True",
    "DISABLE_AUTOUPDATER": "True",
    "HF_HUB_OFFLINE": "1",
    # Anything else it tries to reach goes to a closed loopback port.
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    # WARNING also silences uvicorn's access log, as --no-access-log does
    # for the relay.
    "LITELLM_LOG": "WARNING",
}


def _python() -> Path:
    return VENV / "bin" / "python"


def installed_version() -> str | None:
    if not _python().exists():
        return None
    done = subprocess.run(
        [
            str(_python()),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_installed(progress) -> str:
    """Create the virtualenv and install LiteLLM unless already there."""
    if installed_version() == VERSION:
        return VERSION
    progress(f"installing {REQUIREMENT} into {VENV.relative_to(ROOT)} (once)...")
    if not _python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    done = subprocess.run(
        [str(_python()), "-m", "pip", "install", "--quiet", REQUIREMENT],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0 or installed_version() != VERSION:
        raise RuntimeError(
            f"pip install {REQUIREMENT} failed:\n{done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return VERSION


def write_config(path: Path, model: str, upstream_url: str) -> Path:
    """A config routing `model` to the fake upstream, OpenAI-compatible."""
    # JSON is YAML: no YAML library needed here.
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": upstream_url,
                    "api_key": "sk-fake",
                },
            }
        ],
        # A master key and no database: every request is authenticated
        # against the key alone, as the relay authenticates its own (cached).
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False},
    }
    path.write_text(json.dumps(config, indent=2))
    return path


def argv(config: Path, host: str, port: int) -> list[str]:
    return [
        str(VENV / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        host,
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def env(base: dict, workdir: Path) -> dict:
    """The relay's environment minus its secrets, plus LiteLLM's switches."""
    cleaned = {
        key: value
        for key, value in base.items()
        if not key.startswith(("SWITCHBOARD_", "DATABASE_URL", "REDIS_URL"))
    }
    # No DATABASE_URL: LiteLLM runs without a database.
    cleaned.update(_OFFLINE)
    cleaned["HOME"] = str(workdir)  # its caches and config files stay in tmp
    return cleaned
