"""The import layers of harness (``harness/_layers.py``): no lower layer imports a higher one."""

import ast
from pathlib import Path

from harness._layers import LAYERS

PACKAGE = Path(__file__).resolve().parents[1] / "harness"

def layer_of() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


def component(module: str) -> str | None:
    """``harness.store.db`` -> ``store``; None for the package root or a foreign module."""
    parts = module.split(".")
    return parts[1] if parts[0] == "harness" and len(parts) > 1 else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool = False):
    """Every module an import statement names, anywhere in the source (module level, inside
    functions, under ``if TYPE_CHECKING``), as (line, absolute module name)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "harness":  # from harness import errors, ...
                for alias in node.names:
                    yield node.lineno, f"harness.{alias.name}"
            else:
                yield node.lineno, target


def violations(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, str]]:
    """Imports of ``module`` that reach a higher layer, or a sibling of its own layer:
    (line, imported module, rule)."""
    layers = layer_of()
    own = component(module)
    found = []
    for line, target in imported_modules(source, module, is_package):
        other = component(target)
        if own is None or other is None or other == own or other not in layers:
            continue
        if layers[other] > layers[own]:
            found.append((line, target, f"{own} (layer {layers[own]}) imports the higher {other}"))
        elif layers[other] == layers[own]:
            found.append((line, target, f"{own} imports {other}, a sibling in its layer"))
    return sorted(found)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, module_name(path), path.name == "__init__.py"


def test_every_module_has_a_layer():
    layers = layer_of()
    assert len(layers) == sum(len(layer) for layer in LAYERS), "a name is in two layers"
    unplaced = sorted(
        {c for _, m, _ in _modules() if (c := component(m)) is not None and c not in layers}
    )
    assert unplaced == [], "add them to harness/_layers.py"


def test_no_lower_layer_imports_a_higher_one():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {target}: {rule}"
        for path, module, is_package in _modules()
        for line, target, rule in violations(path.read_text(), module, is_package)
    ]
    assert found == []


def test_the_check_sees_upward_imports_at_any_depth():
    source = (
        "from harness.errors import InputError\n"
        "from harness.runs import RunDir\n"
        "def f():\n"
        "    from harness.report import build_report\n"
        "    if True:\n"
        "        import harness.store.db\n"
        "from .catalogue import ARTIFACTS\n"
        "from .. import cli\n"
    )
    found = violations(source, "harness.runs.example")
    assert [(line, target) for line, target, _ in found] == [
        (4, "harness.report"),
        (6, "harness.store.db"),
        (8, "harness.cli"),
    ]
    sibling = violations("from harness.metrics import dice\n", "harness.kernels.x")
    assert [rule for _, _, rule in sibling] == ["kernels imports metrics, a sibling in its layer"]
