"""The one-way dependency rule (docs/architecture.md), enforced by walking every module's imports."""
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


def _imports(path: pathlib.Path, package: tuple[str, ...] = ("learnt",)):
    """Absolute names of every module ``path`` imports; ``package`` is the dotted package the
    file lives in (to resolve relative imports). ``from learnt import x`` yields ``learnt.x``."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod
            for a in node.names:            # `from learnt import experiments`, `from .. import cli`
                yield f"{mod}.{a.name}"
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
        package = ("learnt", *rel.parent.parts)
        for mod in _imports(path, package):
            other = _top(mod)
            if other is None or other == me or other not in LAYER:   # e.g. learnt.RuleOptimizer
                continue
            if LAYER[other] > LAYER[me] or (LAYER[other] == LAYER[me]):
                violations.append(f"{rel}: imports {mod}")
    assert not violations, "\n".join(violations)


def test_the_checker_catches_absolute_relative_and_from_package_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from learnt.experiments import get\nfrom ..cli import main\nfrom learnt import experiments\n"
                   "from . import unroll\nfrom .. import optim\n")
    found = {_top(m) for m in _imports(bad, ("learnt", "tasks"))}
    assert {"experiments", "cli", "optim", "tasks"} <= found
    # and each of them is a violation for a module of tasks/
    assert all(LAYER[o] > LAYER["tasks"] for o in ("experiments", "cli", "optim"))


def test_library_never_switches_the_matplotlib_backend():
    import pathlib
    import re
    src = pathlib.Path(__file__).resolve().parents[1] / "src" / "learnt"
    offenders = [str(p.relative_to(src)) for p in src.rglob("*.py")
                 if re.search(r"^\s*(matplotlib\.use\(|import matplotlib\.pyplot)", p.read_text(), re.M)]
    assert offenders == []
