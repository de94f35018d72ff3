"""The shape of the code: no import cycles (function-level imports included), pure cores, thin seams."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("aituber", "training")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py")}


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every project module `path` imports, anywhere in the file (functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # The deepest project module the name refers to (`from a.b import c` may import module a.b.c).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] in PACKAGES:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {name: imports_of(path, name, modules) for name, path in modules.items()}
    # A package's __init__ is imported with each of its modules; that is not a dependency to check.
    return {name: {t for t in targets if modules[t].name != "__init__.py" or t == "aituber.bench"}
            for name, targets in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "training.export" in graph["aituber.cli"]  # imported inside a function
    assert "aituber.engine.ct2" not in graph["aituber.app"]  # only through the registry, by name


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_a_cycle_would_be_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_core_imports_nothing_from_the_edges():
    graph = import_graph()
    edges = ("aituber.sources", "aituber.engine", "aituber.outputs", "aituber.app", "aituber.cli", "aituber.bench",
             "training")
    for module, targets in graph.items():
        if module.startswith("aituber.core"):
            bad = sorted(t for t in targets if t.startswith(edges))
            assert not bad, f"{module} imports {bad}"


#: The session evaluation replays a chat log through the bot's own pipeline (inside its functions).
RUNS_THE_PIPELINE = {"training.session": ("aituber.app", "aituber.sources.replay")}


def test_training_never_imports_the_bots_outputs_or_sources():
    for module, targets in import_graph().items():
        if module.startswith("training"):
            allowed = RUNS_THE_PIPELINE.get(module, ())
            assert not [t for t in targets if t.startswith(("aituber.outputs", "aituber.sources", "aituber.app",
                                                            "aituber.cli")) and t not in allowed], module


def test_only_the_ctranslate2_modules_import_ctranslate2():
    allowed = {"aituber.engine.ct2", "aituber.engine.convert", "aituber.engine.compat", "aituber.bench.engine",
               "aituber.bench.static_prompt", "aituber.doctor"}  # the doctor asks it which devices it sees
    for name, path in project_modules().items():
        if name.startswith("aituber") and name not in allowed:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
            assert not any(n == "ctranslate2" or n.startswith("ctranslate2.") for n in names), name


def test_the_bot_imports_without_ctranslate2():
    code = ("import sys; sys.modules['ctranslate2'] = None; import aituber.app, aituber.outputs.overlay, "
            "aituber.cli; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
