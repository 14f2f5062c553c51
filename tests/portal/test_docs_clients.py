"""The quickstart's Codex CLI and Claude Code settings, and the home page's promises."""

import html
import re
import tomllib

import pytest

from accounts.models import ApiKey
from tests import factories

HOST = "relay.example.org"


@pytest.fixture
def page(client, db, settings):
    settings.ALLOWED_HOSTS = [HOST]

    def get(path: str = "/docs/") -> str:
        response = client.get(path, HTTP_HOST=HOST)
        assert response.status_code == 200
        return response.content.decode()

    return get


def code_block(page_html: str, block_id: str) -> str:
    match = re.search(rf'<code id="{block_id}">(.*?)</code>', page_html, re.S)
    assert match, f"no code block {block_id}"
    return html.unescape(match.group(1))


def test_the_codex_config_parses_and_points_at_the_responses_api(page):
    docs = page()
    config = tomllib.loads(code_block(docs, "codex-config"))
    assert config["model"] == "gpt-4.1-mini"
    provider = config["model_providers"][config["model_provider"]]
    assert provider == {
        "name": "Switchboard",
        "base_url": f"http://{HOST}/v1",
        "env_key": "SWITCHBOARD_API_KEY",
        "wire_api": "responses",
    }
    run = code_block(docs, "codex-run").splitlines()
    assert run[0] == "export SWITCHBOARD_API_KEY=sk-sb-..."
    assert run[1].startswith('codex exec "')


def test_claude_code_gets_the_site_without_v1_and_a_bearer_token(page):
    lines = code_block(page(), "claude-code-env").splitlines()
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in lines
        if line.startswith("export ")
    )
    assert exported == {
        "ANTHROPIC_BASE_URL": f"http://{HOST}",
        "ANTHROPIC_AUTH_TOKEN": "sk-sb-...",
        "ANTHROPIC_MODEL": "gpt-4.1-mini",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "gpt-4.1-nano",
        "ANTHROPIC_SMALL_FAST_MODEL": "gpt-4.1-nano",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    assert lines[-1].startswith('claude -p "')


def test_a_signed_in_customer_sees_the_address_but_never_a_key(page, client):
    alice = factories.customer("alice")
    client.force_login(alice.user)
    docs = page()
    key = ApiKey.objects.get(tenant=alice.tenant)
    assert alice.secret not in docs
    assert key.prefix not in docs
    assert f'base_url = "http://{HOST}/v1"' in code_block(docs, "codex-config")
    assert "ANTHROPIC_AUTH_TOKEN=sk-sb-...\n" in code_block(docs, "claude-code-env")


def test_the_home_page_names_the_agents_endpoints_and_links_their_setup(page):
    home = page("/")
    for promise in ("/v1/responses", "/v1/messages", "embeddings", "images"):
        assert promise in home
    assert 'href="/docs/#codex"' in home
