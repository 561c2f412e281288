"""The layers of the package, checked by walking every import (issue 16, docs/architecture.md).

Data moves one way: models/names/errors at the bottom, then enrich, static and traffic, then the
store, then the case-level operations (destinations, graph, policy, diff, rescan, corpus, batch),
then the report, then the CLI. A module may import its own layer and the layers below, never above;
function-level (lazy) imports count too, only ``if TYPE_CHECKING:`` blocks do not. And no two
modules import each other, directly or round a longer loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "audit"

#: Layer of a module (longest matching dotted prefix), lowest first.
LAYERS: dict[str, int] = {
    "audit.errors": 0, "audit.names": 0, "audit.paths": 0, "audit.forking": 0,
    "audit.models": 1,
    "audit.enrich": 2,
    "audit.static": 3, "audit.traffic": 3,
    "audit.store": 4,
    # the recorder and the case import write traffic into the store: they sit beside it, above the
    # conversions of the traffic package (records, flowconv, the format readers, pii …)
    "audit.traffic.addon": 4, "audit.traffic.batch_writer": 4, "audit.traffic.writer_process": 4,
    "audit.traffic.detect_worker": 4,
    "audit.destinations": 5, "audit.graph": 5, "audit.policy": 5, "audit.diff": 5, "audit.rescan": 5,
    "audit.corpus": 5, "audit.batch": 5, "audit.comparison": 5, "audit.dnsview": 5,
    "audit.report": 6, "audit.pipeline": 6,
    "audit.cli": 7, "audit.output": 7, "audit.__main__": 7,
}  # fmt: skip
#: Layers by exact module name: the package itself (only ``__version__`` and ``AuditError``), and the
#: importers package, whose ``import_file`` writes a file's records into the case (its format readers,
#: ``audit.traffic.importers.har`` …, stay with the traffic conversions).
EXACT = {"audit": 0, "audit.traffic.importers": 4}
#: Within layer 3, static and traffic are separate: neither imports the other.
SIBLINGS = {"audit.static": "audit.traffic", "audit.traffic": "audit.static"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[str, int]:
    if module in EXACT:
        return module, EXACT[module]
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return best, LAYERS[best]


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every ``audit`` import outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    pkg = module_name(path)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "audit":
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                parent = pkg.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                base = ".".join([*parent, node.module])
            if base.split(".")[0] == "audit":
                yield node.lineno, base


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_from_a_higher_layer(path: Path) -> None:
    me, mine = layer_of(module_name(path))
    bad = []
    for line, target in imports(path):
        theirs_prefix, theirs = layer_of(target)
        if theirs > mine or SIBLINGS.get(me) == theirs_prefix:
            bad.append(f"line {line}: {target} ({theirs_prefix}, layer {theirs} > {me}, layer {mine})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    names = {module_name(p) for p in MODULES}
    for p in MODULES:
        me = module_name(p)
        for _, target in imports(p):
            # ``from audit.x import y`` may name a submodule y or a name in x: take the longest known module
            while target not in names and "." in target:
                target = target.rpartition(".")[0]
            if target != me and target in names and not me.startswith(target + "."):
                graph.setdefault(me, set()).add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


def test_every_module_has_a_layer() -> None:
    for p in MODULES:
        assert layer_of(module_name(p))[0], module_name(p)
