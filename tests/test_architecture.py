"""The package's shape: no import cycle (every import counted, also those inside functions), and
each layer knows only what it must (design: the method never imports its front doors)."""
import ast
from pathlib import Path

import nspzero

PACKAGE = Path(nspzero.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["nspzero", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module → the nspzero modules it imports (a package's own submodules it imports count)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " → ".join(path[path.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_method_never_imports_its_front_doors():
    graph = import_graph()
    edges = {"nspzero.cli", "nspzero.serve", "nspzero.web", "nspzero.distributed", "nspzero.bench"}
    method = ["nspzero.templates", "nspzero.scorer", "nspzero.request", "nspzero.candidates", "nspzero.classifier",
              "nspzero.mapping", "nspzero.harness", "nspzero.io", "nspzero.loading"]
    for module in method:
        bad = {t for t in graph[module] if any(t == e or t.startswith(e + ".") for e in edges)}
        assert not bad, f"{module} imports front doors {bad}"
    assert "nspzero.scorer" not in graph["nspzero.templates"] and "nspzero.io" not in graph["nspzero.scorer"]
