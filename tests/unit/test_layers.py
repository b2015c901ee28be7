"""The layers of ARCHITECTURE.md, as the imports must keep them: every module imports only its own
layer and the layers beneath it (type-only imports under TYPE_CHECKING count too), and no module
grows past the size a reader takes in at once.

Read from the source with ``ast``, so the rule holds for code no test happens to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "bastion"
MAX_LINES = 600

# Modules that import nothing of Bastion's, usable from every layer (``__init__``: the version).
BASE = {"errors", "logs", "config", "__init__"}

# Each layer and what it may import besides itself and BASE. The order is the stack, top to bottom:
# the composition root and the ASGI entry; the HTTP API; the services record; cache invalidation
# between processes; LiveQuery; cloud code; the keys a client presents; the domain services and the
# adapters (peers: neither imports the other); the ports (contracts); the core.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "ports": {"core"},
    "domain": {"core", "ports"},
    "adapters": {"core", "ports"},
    "keys": {"core"},
    "cloud": {"core", "ports", "domain"},
    "livequery": {"core", "ports", "domain", "cloud", "keys"},
    "invalidation": {"core", "ports", "domain", "cloud", "livequery"},
    "services": {"core", "ports", "domain", "adapters", "cloud", "keys", "livequery", "invalidation"},
    "http": {"core", "ports", "domain", "cloud", "keys", "services"},
    "app": {"core", "ports", "domain", "adapters", "cloud", "keys", "livequery", "invalidation", "services", "http"},
}
TOP = {"cli", "startup", "asgi", "__main__"}  # may import anything


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _layer(path: Path) -> str:
    first = path.relative_to(PACKAGE).parts[0]
    return first.removesuffix(".py")


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """The Bastion modules (or packages) ``path`` imports, absolute."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("bastion"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "bastion":
                # ``from bastion import cloud`` names a module; ``from bastion import __version__``
                # names the package's own __init__.
                found.update(f"bastion.{alias.name}" if (PACKAGE / alias.name).exists()
                             or (PACKAGE / f"{alias.name}.py").exists() else "bastion.__init__"
                             for alias in node.names)
            elif target.startswith("bastion."):
                found.add(target)
    return found


def _target_layer(module: str) -> str:
    return module.split(".")[1]


def test_the_layers_only_import_downwards() -> None:
    wrong: list[str] = []
    for path in _modules():
        layer = _layer(path)
        if layer in TOP or layer in BASE:
            if layer in BASE:
                wrong.extend(f"{_module_name(path) or 'bastion'} -> {target}" for target in _imports(path)
                             if _target_layer(target) not in BASE)
            continue
        assert layer in ALLOWED, f"{path.relative_to(PACKAGE)}: a layer ARCHITECTURE.md and this test don't know"
        allowed = ALLOWED[layer] | BASE | {layer}
        wrong.extend(f"{_module_name(path)} -> {target}" for target in sorted(_imports(path))
                     if _target_layer(target) not in allowed)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_core_imports_nothing_but_errors() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        outside = {target for target in _imports(path) if _target_layer(target) not in ("core", "errors")}
        assert not outside, f"{path.relative_to(PACKAGE)} imports {sorted(outside)}"


def test_the_http_api_and_livequery_share_keys_not_each_other() -> None:
    for path in (PACKAGE / "livequery").rglob("*.py"):
        assert not any(_target_layer(target) == "http" for target in _imports(path)), path
    for path in (PACKAGE / "http").rglob("*.py"):
        assert not any(_target_layer(target) == "livequery" for target in _imports(path)), path


@pytest.mark.parametrize("path", _modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_is_too_long_to_read(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {lines} lines: split it by job"


def test_the_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a domain module importing an adapter is caught."""
    module = tmp_path / "bastion" / "domain" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("from bastion.adapters.storage.sqlite import SqliteStorage\n"
                      "from typing import TYPE_CHECKING\n"
                      "if TYPE_CHECKING:\n    from bastion.app import Bastion\n")
    assert _imports(module, tmp_path / "bastion") == {"bastion.adapters.storage.sqlite", "bastion.app"}
