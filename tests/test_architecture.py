"""The shape of the package (ARCHITECTURE.md): no import cycles, light layers stay light, thin commands,
small modules and functions, and every document the code or the README points to exists in the repository."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
TESTS = ROOT / "tests"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in (SRC / "nasnet").rglob("*.py"):
        rel = f.relative_to(SRC).with_suffix("")
        mods[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = f
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Internal modules `name` imports anywhere in its file (inside functions too)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = name if is_pkg else name.rsplit(".", 1)[0]
            if node.level:
                parts = base.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                mod = base + ("." + node.module if node.module else "")
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in mods)
    out.discard(name)
    if is_pkg:  # a package importing its own submodules is how it exports them, not a cycle
        out = {t for t in out if not t.startswith(name + ".")}
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert _cycles(graph) == []
    # and the cycle finder finds one when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


# layers above must not be imported by layers below (the folder order of ARCHITECTURE.md)
ORDER = {"arch": 0, "model": 1, "data": 1, "weights": 2, "zoo": 3, "train": 4, "search": 5, "report": 6, "cli": 7}


def test_imports_point_down_the_layers():
    mods = _modules()
    wrong = []
    for name, path in mods.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in ORDER:
            continue
        for dep in _imports(name, path, mods):
            dparts = dep.split(".")
            if len(dparts) >= 2 and dparts[1] in ORDER and ORDER[dparts[1]] > ORDER[parts[1]]:
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


@pytest.mark.parametrize("module", ["nasnet.arch", "nasnet.search", "nasnet.search.run_dir", "nasnet.search.store",
                                    "nasnet.search.children.train", "nasnet.cli", "nasnet.registry", "nasnet.options",
                                    "nasnet.search.choices", "nasnet.search.executors"])
def test_light_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'matplotlib', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_help_imports_no_heavy_dependency():
    code = ("import sys; from nasnet.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'matplotlib', 'ray', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _prints(node: ast.AST) -> bool:
    """A call of print(), or of sys.stdout.write / sys.stderr.write."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "print") or (
        isinstance(f, ast.Attribute) and f.attr == "write" and isinstance(f.value, ast.Attribute)
        and f.value.attr in ("stdout", "stderr") and isinstance(f.value.value, ast.Name) and f.value.value.id == "sys")


# Every package but the command line's, and the top-level modules ("").
LIBRARY = sorted(d.name for d in (SRC / "nasnet").iterdir() if d.is_dir() and (d / "__init__.py").exists()
                 and d.name != "cli") + [""]


@pytest.mark.parametrize("layer", LIBRARY)
def test_library_layers_do_not_print(layer):
    """What a library module has to say goes to a callback, a warning or an exception; the command line prints."""
    paths = (SRC / "nasnet" / layer).rglob("*.py") if layer else (SRC / "nasnet").glob("*.py")
    calls = [f"{path.relative_to(SRC)}:{node.lineno}" for path in paths
             for node in ast.walk(ast.parse(path.read_text())) if _prints(node)]
    assert calls == []


def test_the_print_check_sees_prints():
    found = [_prints(n) for n in ast.walk(ast.parse("print(1)\nsys.stderr.write('x')\nsys.stderr.flush()\nf.write(2)"))]
    assert sum(found) == 2
    assert {"arch", "report", "search", "weights", "zoo", ""} <= set(LIBRARY) and "cli" not in LIBRARY


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# The functions kept longer than MAX_FUNCTION_LINES, each with its reason in ARCHITECTURE.md ("Long functions
# kept"): path relative to the repository root -> qualified name.
LONG_FUNCTIONS_KEPT: set[tuple[str, str]] = set()


def _long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """Every function or method of `path` (nested ones included, by qualified name) longer than `limit`
    lines, from its `def` to its last line (decorators not counted)."""
    found = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (n := child.end_lineno - child.lineno + 1) > limit:
                    found[prefix + child.name] = n
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, f"{prefix}{child.name}." if isinstance(child, ast.ClassDef) else prefix)

    walk(ast.parse(path.read_text()), "")
    return found


def test_modules_are_small():
    long = {str(f.relative_to(ROOT)): n for f in (SRC / "nasnet").rglob("*.py")
            if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_functions_are_short():
    """No function outside the tests is over MAX_FUNCTION_LINES lines, but those kept with a reason; a kept
    one that got short leaves the list."""
    files = [f for folder in ("src", "bench", "tools") for f in (ROOT / folder).rglob("*.py")]
    long = {(str(f.relative_to(ROOT)), name) for f in files for name in _long_functions(f)}
    assert long - LONG_FUNCTIONS_KEPT == set(), "split these, or keep them with a reason in ARCHITECTURE.md"
    assert LONG_FUNCTIONS_KEPT - long == set(), "no longer long: take them off LONG_FUNCTIONS_KEPT"
    kept = (ROOT / "ARCHITECTURE.md").read_text().split("## Long functions kept")[1].split("\n## ")[0]
    assert [name for path, name in LONG_FUNCTIONS_KEPT if f"{path}" not in kept or f"`{name}`" not in kept] == []


def test_the_length_checks_measure_what_they_say(tmp_path):
    def body(indent):
        return "\n".join(f"{indent}x{i} = {i}" for i in range(58))

    code = (f"@decorator\ndef short():\n{body('    ')}\n    return 0\n\n\n"            # 60 lines: not long
            f"class C:\n    def long(self):\n{body(' ' * 8)}\n        def inner():\n            pass\n"
            "        return 0\n")
    (tmp_path / "m.py").write_text(code)
    assert _long_functions(tmp_path / "m.py") == {"C.long": 62}
    assert _long_functions(tmp_path / "m.py", limit=59) == {"short": 60, "C.long": 62}


def test_commands_are_thin():
    long = {f.name: n for f in (SRC / "nasnet" / "cli").glob("*.py") if (n := len(f.read_text().splitlines())) > 200}
    assert long == {}


def test_documents_referred_to_exist():
    """Docstrings and the README point only to documents inside the repository."""
    files = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *(SRC / "nasnet").rglob("*.py")]
    texts = [(p, p.read_text()) for p in files]
    refs = {(p.name, m) for p, t in texts for m in re.findall(r"\b((?:docs/)[\w\-./]+\.md|ARCHITECTURE\.md)", t)}
    assert refs, "the code cites its docs"
    missing = sorted(f"{where}: {ref}" for where, ref in refs if not (ROOT / ref).is_file())
    assert missing == []
    # The name is spelt with a character class so that a plain grep of src, tests and the README finds nothing.
    cited = [p.name for p, t in texts + [(f, f.read_text()) for f in TESTS.glob("*.py")] if re.search(r"\bS[P]EC\b", t)]
    assert not cited, "a reference to a document outside the repo"


def test_no_comment_cites_a_tracker():
    """Comments and docstrings say what and why, never which tracker issue asked for it: the tracker is not in
    the repository. (The word is spelt with a character class so that this file does not cite one itself.)"""
    files = [f for folder in ("src", "tests", "bench", "tools") for f in (ROOT / folder).rglob("*.py")]
    cited = [f"{f.relative_to(ROOT)}:{n}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1)
             if re.search(r"\b[i]ssue\s+#?[0-9]+", line, re.IGNORECASE)]
    assert cited == []
