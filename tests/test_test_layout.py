"""Where test builders live (issue 16): a builder that more than one test module uses is in
``tests/helpers/`` (or is a fixture in a ``conftest.py``), so no module imports another ``test_*``
module, and test code takes from our ``tests`` package only ``tests.helpers``, ``tests.conftest``
and ``tests.fixtures``. Checked by walking every import of ``tests/`` and ``benchmarks/`` with
``ast``, function-level imports included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What test code may import from the ``tests`` package (the package itself and these, with submodules).
ALLOWED = ("tests.helpers", "tests.conftest", "tests.fixtures")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line, dotted names) of each import in ``source`` (the text of ``module``): for ``import a.b``
    ``["a.b"]``; for ``from a import b, c`` ``["a", "a.b", "a.c"]`` (``b`` may be a module).
    Relative imports are resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, [alias.name]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield node.lineno, [name, *(f"{name}.{a.name}" for a in node.names if a.name != "*")]


def _allowed(name: str) -> bool:
    return name == "tests" or any(name == a or name.startswith(a + ".") for a in ALLOWED)


def problems(source: str, module: str, is_package: bool = False) -> list[str]:
    """What is wrong with the imports of ``module``, one line per import: a ``test_*`` module
    imported, or a part of the ``tests`` package outside :data:`ALLOWED`."""
    out = []
    for line, names in imported(source, module, is_package):
        tests = [n for n in names if any(p.startswith("test_") for p in n.split("."))]
        if tests:
            out.append(f"{module}:{line} imports the test module {tests[0]}")
        elif names[0].split(".")[0] == "tests" and not _allowed(names[0]):
            out.append(f"{module}:{line} imports {names[0]} (shared builders belong in tests/helpers/)")
    return out


def python_files() -> list[Path]:
    """Every Python file of the suite, its helpers and fixture builders, and the benchmarks (not the
    apktool source trees under tests/fixtures/src)."""
    files = [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    return sorted(p for p in files if ROOT / "tests" / "fixtures" / "src" not in p.parents)


def test_no_module_imports_another_test_module() -> None:
    found = []
    for path in python_files():
        found += problems(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert found == [], "\n".join(found)


def test_the_walk_sees_the_test_modules() -> None:
    """The walk covers the suite, the helpers and the benchmarks (a walk over nothing passes)."""
    names = {module_name(p) for p in python_files()}
    assert {
        "tests.test_graph",
        "tests.traffic.test_mitmdump_e2e",
        "tests.helpers.cases",
        "benchmarks.static_speed",
    } <= names
    assert sum(n.rsplit(".", 1)[-1].startswith("test_") for n in names) >= 50


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("from tests.test_graph import make_case", "tests.test_diff", False, "test module tests.test_graph"),
        (
            "from tests.static import test_dex",
            "tests.static.test_x",
            False,
            "test module tests.static.test_dex",
        ),
        (
            "from .test_addon import http_flow",
            "tests.traffic.test_x",
            False,
            "test module tests.traffic.test_addon",
        ),
        ("from . import test_addon", "tests.traffic", True, "test module tests.traffic.test_addon"),
        (
            "def f():\n    import tests.traffic.test_addon",
            "benchmarks.b",
            False,
            "test module tests.traffic.test_addon",
        ),
        ("from tests.traffic.helpers_of_mine import x", "tests.test_x", False, "belong in tests/helpers/"),
        ("from ..enrich import mmdb", "tests.traffic.test_x", False, "imports tests.enrich (shared builders"),
    ],
)
def test_the_walk_finds_each_kind_of_import(
    source: str, module: str, is_package: bool, expected: str
) -> None:
    (problem,) = problems(source, module, is_package)
    assert expected in problem


@pytest.mark.parametrize(
    "source",
    [
        "from tests.helpers.cases import make_case",
        "from tests.helpers import locdb",
        "from tests.conftest import FIXTURES",
        "from tests.fixtures.build import build_apk",
        "from tests.fixtures import sign",
        "import tests",
        "from audit.models import Connection",
        "from mitmproxy.test import tflow",
    ],
)
def test_allowed_imports_pass(source: str) -> None:
    assert problems(source, "tests.test_x") == []
