"""Loads cloud code from a file or a package directory into a fresh registry.

Each load imports the code anew (modules from the cloud code's directory are dropped from
``sys.modules`` first), so a reload in --dev sees every edited file. A file that fails to import
becomes a ``CloudLoadError`` naming the file and line, which start-up prints before exiting.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

from bastion.cloud._runtime.context import collecting
from bastion.cloud._runtime.registry import CloudRegistry


class CloudLoadError(Exception):
    """Cloud code that cannot be loaded; the message names the file and line."""


def entry_file(path: str | Path) -> tuple[Path, Path, bool]:
    """(the file to run, the directory that holds the cloud code, whether it is a package)."""
    target = Path(path).expanduser().resolve()
    if target.is_dir():
        init = target / "__init__.py"
        if not init.is_file():
            raise CloudLoadError(f"{target}: a cloud code directory must be a package with an __init__.py")
        return init, target, True
    if not target.is_file():
        raise CloudLoadError(f"{target}: no such cloud code file or package")
    if target.suffix != ".py":
        raise CloudLoadError(f"{target}: cloud code must be a .py file or a package directory")
    return target, target.parent, False


def _installed_roots() -> list[Path]:
    """Where installed code lives (the environment, Bastion itself): never cloud code, even when the
    cloud code's directory holds them (a project's own .venv, a checkout of Bastion)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(__file__).resolve().parents[2])}
    return [Path(root).resolve() for root in roots]


def _forget_modules(directory: Path) -> None:
    """Drops modules loaded from ``directory`` so the next import reads their files again."""
    installed = _installed_roots()
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not origin:
            continue
        path = Path(origin).resolve()
        if path.is_relative_to(directory) and not any(path.is_relative_to(root) for root in installed):
            del sys.modules[name]


def _where(exc: BaseException, directory: Path) -> str:
    """``file:line`` of the innermost frame inside the cloud code (where the error was raised)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    place = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve().is_relative_to(directory):
            place = f"{frame.filename}:{frame.lineno}"
    return place or str(directory)


def load_cloud(path: str | Path) -> CloudRegistry:
    file, directory, is_package = entry_file(path)
    module_name = directory.name if is_package else f"bastion_cloud_{file.stem}"
    if not module_name.isidentifier():
        raise CloudLoadError(f"{directory}: a cloud code package needs a name Python can import")
    _forget_modules(directory)
    sys.modules.pop(module_name, None)
    # Sibling modules (a file's neighbours, a package by its own name) import as usual.
    search_root = str(directory.parent if is_package else directory)
    if search_root not in sys.path:
        sys.path.insert(0, search_root)
    spec = importlib.util.spec_from_file_location(
        module_name, file, submodule_search_locations=[str(directory)] if is_package else None)
    if spec is None or spec.loader is None:
        raise CloudLoadError(f"{file}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    registry = CloudRegistry(source=str(file))
    sys.modules[module_name] = module
    with collecting(registry):
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(module_name, None)
            raise CloudLoadError(f"{_where(exc, directory)}: SyntaxError: {exc.msg}") from None
        except Exception as exc:  # noqa: BLE001 - any failure of user code is reported the same way
            sys.modules.pop(module_name, None)
            raise CloudLoadError(f"{_where(exc, directory)}: {type(exc).__name__}: {exc}") from exc
    return registry
