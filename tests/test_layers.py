"""
Dependencies point one way, from the screens to the domain. The domain apps
are layered: each may import only the layers below it, never a screen.
Admin modules are screens too (the Django admin), wherever they live.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENS = {"portal", "console", "api"}
# Highest first: an app may import the apps after it.
DOMAIN = ["relay", "onboarding", "billing", "accounts", "audit"]
# Shared utilities: import no app above them but billing's money formats.
UTILITIES = {"exports": set(), "charts": {"billing"}}
PROJECT = SCREENS | set(DOMAIN) | set(UTILITIES)


def imported_apps(path: Path) -> set[str]:
    """Every project app that `path` imports, at any depth of the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found & PROJECT


def modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.parts or path.name == "admin.py":
            continue
        yield path


def allowed(app: str) -> set[str]:
    if app in UTILITIES:
        return {app} | UTILITIES[app]
    return set(DOMAIN[DOMAIN.index(app) :]) | set(UTILITIES)


@pytest.mark.parametrize("app", [*DOMAIN, *UTILITIES])
def test_an_app_imports_only_the_layers_below_it(app):
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_apps(path) - allowed(app))
        for path in modules(app)
    }
    assert {path: apps for path, apps in wrong.items() if apps} == {}


def test_the_check_sees_an_import_of_a_screen(tmp_path):
    module = tmp_path / "example.py"
    module.write_text(
        "import os\nfrom console.roles import can\n"
        "def late():\n    from billing import money\n"
    )
    assert imported_apps(module) == {"console", "billing"}
