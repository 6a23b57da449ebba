"""The package's layers, read off its import statements: nothing imports from above, no cycle.

The rule (``spectools/__init__.py``): errors < io, ops < particles < formats <
plots < pipelines < cli; simulate beside pipelines (it may use formats, not the
jobs).  io and ops are siblings and do not import each other.  The package
root is the façade: importing ``__version__`` from it is allowed everywhere.
"""
import ast

import pytest

from helpers.fixtures import REPO

PACKAGE = REPO / "spectools"

#: Layer -> the layers it may import from (besides itself).
ALLOWED = {
    "errors": set(),
    "io": {"errors"},
    "ops": {"errors"},
    "particles": {"errors", "io", "ops"},
    "formats": {"errors", "io", "ops", "particles"},
    "plots": {"errors", "io", "ops"},
    "pipelines": {"errors", "io", "ops", "particles", "formats", "plots"},
    "simulate": {"errors", "io", "ops", "particles", "formats"},
    "cli": {"errors", "io", "ops", "particles", "formats", "plots", "pipelines", "simulate"},
}


def layer_of(module):
    """``spectools.pipelines.avgps`` -> ``pipelines``; the root package -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path):
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path):
    """(imported module, names) of every spectools import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if target == "spectools" or target.startswith("spectools."):
                # "from .. import x" may import submodules x
                subs = [f"{target}.{n}" for n in names
                        if (PACKAGE.parent / (target.replace(".", "/") + f"/{n}.py")).exists()
                        or (PACKAGE.parent / (target.replace(".", "/") + f"/{n}")).is_dir()]
                out += [(s, [n]) for s, n in zip(subs, names)] if subs else [(target, names)]
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("spectools")]
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_from_a_layer_above(path):
    module = module_name(path)
    layer = layer_of(module)
    if not layer:
        return                                   # the façade may import anything
    for target, names in imports_of(path):
        other = layer_of(target)
        if other == layer:
            continue
        if other == "" and names == ["__version__"]:
            continue
        assert other in ALLOWED[layer], f"{module} imports {target} ({layer} -> {other})"


def test_the_import_graph_has_no_cycle():
    graph = {module_name(p): {t for t, _ in imports_of(p)} for p in MODULES}
    graph = {m: {t for t in targets if t in graph and t != "spectools"}
             for m, targets in graph.items()}
    done, active = set(), []

    def visit(module):
        if module in active:
            cycle = active[active.index(module):] + [module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        active.append(module)
        for target in sorted(graph[module]):
            visit(target)
        active.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_library_never_imports_scipion():
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("pyworkflow", "pwem", "spectools_scipion"), \
                    f"{path} imports {name}"
