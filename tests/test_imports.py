"""The one-way dependency rule of DESIGN.md, enforced by walking every module's imports."""
import ast
import pathlib

import learnt

ROOT = pathlib.Path(learnt.__file__).parent
# lower layers never import higher ones; siblings of one layer never import each other
LAYER = {
    "errors": 0,
    "seeding": 1, "io": 1, "config": 1, "plotting": 1,
    "functional": 2,
    "learned": 3, "tasks": 3,
    "meta": 4, "pretrained": 4,
    "optim": 5, "blackbox": 5, "fewshot": 5, "nas": 5, "imitation": 5,
    "experiments": 6,
    "cli": 7,
}


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "learnt" and len(parts) > 1 else None


def test_every_top_level_part_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert parts <= set(LAYER), f"unlayered parts: {parts - set(LAYER)}"


def test_imports_flow_one_way():
    violations = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel == pathlib.Path("__init__.py"):
            continue  # the package root re-exports the public API
        me = rel.parts[0].removesuffix(".py")
        for mod in _imports(path):
            other = _top(mod)
            if other is None or other == me:
                continue
            if LAYER[other] > LAYER[me] or (LAYER[other] == LAYER[me]):
                violations.append(f"{rel}: imports {mod}")
    assert not violations, "\n".join(violations)


def test_the_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from learnt.experiments import get\n")
    assert [_top(m) for m in _imports(bad)] == ["experiments"]
    assert LAYER["experiments"] > LAYER["meta"]


def test_library_never_switches_the_matplotlib_backend():
    import pathlib
    import re
    src = pathlib.Path(__file__).resolve().parents[1] / "src" / "learnt"
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if re.search(r"^\s*(matplotlib\.use\(|import matplotlib\.pyplot)", p.read_text(), re.M)]
    assert offenders == []
