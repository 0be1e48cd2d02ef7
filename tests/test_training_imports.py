"""training's modules import one way: no import loop, not even through an import inside a function, and
only ``python -m training``'s entry point imports the command-line module ``train.py``."""
import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parent.parent / "training"


def imports() -> dict[str, set[str]]:
    """Each training module's imports of other training modules, at its top or anywhere inside it."""
    modules = {p.stem for p in TRAINING.glob("*.py")}
    graph = {}
    for name in modules:
        found = set()
        for node in ast.walk(ast.parse((TRAINING / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "training":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("training.")}
        graph[name] = (found & modules) - {name}
    return graph


def loop_through(graph: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports that comes back to where it started, or None."""
    state: dict[str, str] = {}

    def visit(name, path):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                return path[path.index(other):] + [other]
            if other not in state and (found := visit(other, path + [other])):
                return found
        state[name] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_training_modules_import_without_a_loop():
    graph = imports()
    assert {"methods", "distill", "finetune", "teacher"} <= set(graph)
    assert loop_through(graph) is None, " -> ".join(loop_through(graph))


def test_a_loop_is_found_where_there_is_one():
    assert loop_through({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert loop_through({"a": {"b"}, "b": set()}) is None


def test_only_the_entry_point_imports_the_command_line_module():
    assert sorted(name for name, used in imports().items() if "train" in used) == ["__main__"]
