"""
Dependencies point one way, from the screens to the domain. The domain apps
are layered: each may import only the layers below it, never a screen.
Admin modules are screens too (the Django admin), wherever they live, and so
are the operator's endpoints in ops (views, and the collectors that read the
domain at scrape time): the rest of ops (its metric definitions, the request
log) is a utility that domain code imports.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENS = {"portal", "console", "api"}
# Highest first: an app may import the apps after it.
DOMAIN = ["relay", "onboarding", "billing", "accounts", "audit"]
# Shared utilities: import no app above them but billing's money formats.
UTILITIES = {"exports": set(), "charts": {"billing"}, "ops": set()}
# Screens that live in a utility's package, by module name.
SCREEN_MODULES = {"ops.views", "ops.collectors"}
PROJECT = SCREENS | set(DOMAIN) | set(UTILITIES) | SCREEN_MODULES


def _app_of(name: str) -> str:
    """The app a module belongs to: a screen module counts as its own."""
    for screen in SCREEN_MODULES:
        if name == screen or name.startswith(screen + "."):
            return screen
    return name.split(".")[0]


def imported_apps(path: Path) -> set[str]:
    """Every project app that `path` imports, at any depth of the module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from ops import views` imports the module ops.views.
            names = [node.module] if node.module not in UTILITIES else []
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(_app_of(name) for name in names)
    return found & PROJECT


def modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.parts or path.name == "admin.py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if _app_of(module) in SCREEN_MODULES:
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


def test_the_check_sees_an_import_of_a_screen_inside_a_utility(tmp_path):
    module = tmp_path / "example.py"
    module.write_text(
        "from ops import metrics\nfrom ops import views\n"
        "import ops.collectors\nfrom ops.collectors import exposition\n"
    )
    assert imported_apps(module) == {"ops", "ops.views", "ops.collectors"}
    # ... which no domain app or utility may import.
    assert "ops.views" not in allowed("relay")
    assert "ops.views" not in allowed("ops")
