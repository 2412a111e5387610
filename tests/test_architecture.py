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


FRONT_DOORS = ("nspzero.cli", "nspzero.serve", "nspzero.web", "nspzero.distributed", "nspzero.bench",
               "nspzero.bench_shapes")  # the benchmark's shape presets: only `nspzero bench` uses them


def is_front_door(module: str) -> bool:
    return any(module == door or module.startswith(door + ".") for door in FRONT_DOORS)


def test_only_front_doors_import_front_doors():
    """Every module of the package, not a chosen few: what is not a front door (the method, the
    library, the package's __init__) imports none, so a front door can change without touching it."""
    graph = import_graph()
    assert all(any(is_front_door(m) for m in graph if m.startswith(door)) for door in FRONT_DOORS)  # none renamed
    library = [m for m in graph if not is_front_door(m)]
    assert {"nspzero.request", "nspzero.pipeline", "nspzero.scorer", "nspzero.classifier"} <= set(library)
    bad = {m: sorted(t for t in graph[m] if is_front_door(t)) for m in library}
    assert not {m: t for m, t in bad.items() if t}, "library modules importing front doors"
    assert "nspzero.scorer" not in graph["nspzero.templates"] and "nspzero.io" not in graph["nspzero.scorer"]


def test_the_server_package_has_fastapis_shape():
    """serve/: app, routers, dependencies, models, batcher; the batcher runs the pipeline's steps
    and chunker, not a copy of them."""
    graph = import_graph()
    assert {f"nspzero.serve.{m}" for m in ("app", "routers", "dependencies", "models", "batcher")} <= set(graph)
    assert "nspzero.pipeline" in graph["nspzero.serve.batcher"]
    assert "nspzero.candidates" not in graph["nspzero.serve.routers"]


def test_checkpoint_formats_live_in_one_package_at_the_edge():
    """formats/ reads foreign checkpoints into transformers' shapes and knows nothing of the method:
    it imports only errors, folders and quiet from the rest of the package."""
    graph = import_graph()
    formats = {m for m in graph if m.startswith("nspzero.formats.")}
    assert {"nspzero.formats.checkpoints", "nspzero.formats.tf_bundle", "nspzero.formats.albert_sop",
            "nspzero.formats.heads"} <= formats
    outside = {t for m in formats for t in graph[m] if not t.startswith("nspzero.formats")}
    assert outside <= {"nspzero.errors", "nspzero.folders", "nspzero.quiet"}, outside


def test_tuning_is_library_code_over_the_method_core():
    """tuning/ trains through the classification path and the scorer (no loop of its own to drift),
    imports no front door, and reading a tuned folder's json (saved, settings) loads no torch."""
    graph = import_graph()
    tuning = {m for m in graph if m.startswith("nspzero.tuning")}
    assert {f"nspzero.tuning.{m}" for m in ("pairs", "loss", "trainer", "saved", "settings", "state")} <= tuning
    assert not {t for m in tuning for t in graph[m] if is_front_door(t)}
    assert "nspzero.pipeline" in graph["nspzero.tuning.pairs"] and "nspzero.scorer" in graph["nspzero.tuning.trainer"]
    for light in ("nspzero.tuning.saved", "nspzero.tuning.settings"):
        source = (PACKAGE / "tuning" / f"{light.rsplit('.', 1)[1]}.py").read_text(encoding="utf-8")
        assert "\nimport torch" not in source and "\nfrom ..scorer" not in source, light
