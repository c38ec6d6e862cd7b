"""The project's import directions (ARCHITECTURE.md), read from the source: `edge_agent →
models, store_layouts, cloud_sync` (and the pages it serves); `cloud_sync → models`; `models`,
`store_layouts` and `kiosk_ui` import no other part. And no two modules import each other,
however indirectly, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("edge_agent", "models", "store_layouts", "cloud_sync", "kiosk_ui")
ALLOWED = {
    "edge_agent": {"models", "store_layouts", "cloud_sync", "kiosk_ui"},
    "cloud_sync": {"models"},
    "models": set(),
    "store_layouts": set(),
    "kiosk_ui": set(),
}


def _modules() -> dict[str, Path]:
    found = {}
    for part in PARTS:
        for path in (ROOT / part).rglob("*.py"):
            relative = path.relative_to(ROOT).with_suffix("")
            name = ".".join(relative.parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules that `name` imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
    resolved = set()
    for target in targets:
        # `import a.b.c` names module a.b.c; keep the longest project module it names.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def test_parts_import_only_in_the_allowed_directions() -> None:
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in _graph().items() for target in targets
                   if (src := module.split(".")[0]) != (dst := target.split(".")[0])
                   and dst not in ALLOWED[src])
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles = [sorted(component) for component in _strongly_connected(graph)
              if len(component) > 1]
    assert cycles == []


def test_the_checker_sees_a_cycle_and_a_wrong_direction() -> None:
    # The two tests above would pass on a checker that finds nothing.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert [sorted(c) for c in _strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]
    modules = _modules()
    writer = ROOT / "edge_agent" / "storage" / "event_writer.py"
    assert "models.events" in _imports(writer, "edge_agent.storage.event_writer", modules)


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph has a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_serving_imports_no_training_code() -> None:
    """What an HTTP worker loads to serve: no scikit-learn, no ONNX export, no evaluation
    harness, no dataset loaders (each worker paid ~150 MB and a second for them); no pandas
    or pyarrow, which sqlite-utils would load (~75 MB); nothing of ingestion or of the
    cloud link, which stay in the agent process."""
    import subprocess
    import sys

    training = ("sklearn", "skl2onnx", "onnx", "models.evaluation", "models.nbr.train",
                "models.datasets", "models.training", "dask", "moto", "boto3", "pandas",
                "pyarrow", "awscrt", "paho", "edge_agent.ingestion.service")
    code = ("import sys, edge_agent.api.app, edge_agent.api.worker; "
            f"print(sorted(m for m in {training!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]", f"serving imports {loaded}"
