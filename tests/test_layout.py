"""The package's shape: what runs inside the sandbox stays apart from the grader, and imports form no cycle."""

import ast
import sys
from pathlib import Path

import autograder

PACKAGE = Path(autograder.__file__).parent
INSIDE = PACKAGE / "sandbox" / "inside"
# What may be imported inside the sandbox, besides the standard library and each other
INSIDE_MAY_IMPORT = {"numpy", "torch", "IPython"}


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_nothing_inside_the_sandbox_imports_the_grader():
    siblings = {path.stem for path in INSIDE.glob("*.py")}
    for path in INSIDE.glob("*.py"):
        for name in _imports(path):
            root = name.split(".")[0]
            assert root != "autograder", f"{path.name} imports {name}: it runs inside the sandbox"
            allowed = root in sys.stdlib_module_names or root in INSIDE_MAY_IMPORT or root in siblings
            assert allowed, f"{path.name} imports {name}, which the sandbox does not provide"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_grader_modules_import_each_other_without_cycles():
    """Module-level imports only: an import inside a function runs when called, after every module loaded."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py") if INSIDE not in path.parents}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path, top_level_only=True):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != "autograder":
                targets.add(imported)
        graph[name] = targets
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [name, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
