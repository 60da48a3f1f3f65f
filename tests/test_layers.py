"""The package's layering (docs/architecture.md): imports only go down, no circles, nothing imports the root."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "dse"
#: Layers from the top; a module may import its own layer or any layer below it.
LAYERS = [("cli", "explorer"), ("search", "analyze", "calibrate"), ("run",), ("config",), ("model",),
          ("errors", "files", "cf", "provenance")]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules():
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        yield (parts[:-1] if parts[-1] == "__init__" else parts), path


def imports(name, path):
    """The dse modules one module imports (anywhere in it, functions included), resolved to dotted names."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "dse")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(name if is_pkg else name[:-1])[: len(name) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "dse":
                yield from (f"{mod}.{a.name}" for a in node.names)


def layer(dotted: str):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def test_imports_only_go_down_and_never_to_the_root():
    bad = []
    for name, path in modules():
        if len(name) < 2 or name[1] in ("__main__",):   # dse/__init__.py is the public face; __main__ runs the CLI
            continue
        own = RANK[name[1]]
        for target in imports(name, path):
            t = layer(target)
            if t not in RANK:   # `import dse`, `from dse import DseError`: a name of dse/__init__.py
                bad.append(f"{'.'.join(name)} imports the package root ({target})")
            elif RANK[t] < own:
                bad.append(f"{'.'.join(name)} ({name[1]}) imports {target} ({t}), a layer above")
    assert not bad, "\n".join(bad)


def test_no_import_circles_among_modules():
    known = {".".join(n) for n, _ in modules()}

    def resolve(t):
        while t and t not in known:
            t = t.rpartition(".")[0]
        return t
    edges = {}
    for name, path in modules():
        me = ".".join(name)
        edges[me] = {r for r in map(resolve, imports(name, path)) if r and r != me and not me.startswith(r + ".")
                     and r != "dse"}
    state, stack = {}, []

    def visit(v):   # depth-first search: a node met again while on the stack closes a circle
        state[v] = 1
        stack.append(v)
        for w in edges.get(v, ()):
            if state.get(w) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(w):] + [w]))
            if w not in state:
                visit(w)
        stack.pop()
        state[v] = 2
    for v in sorted(edges):
        if v != "dse" and v not in state:
            visit(v)
