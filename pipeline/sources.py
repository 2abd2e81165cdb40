"""Which files a test run depends on: its test file, what that imports inside the checkout, and pytest's
config.

Imports are followed with ``ast`` (never by importing), from the test file through every module that
resolves to a file under one of the search roots (the workspace, the test's pytest rootdir, any extra
roots the caller names). Modules that resolve elsewhere (ttnn, torch, the stdlib) are not followed:
the environment key covers them. Lazy imports inside functions count too. Data files the tests read
(thresholds JSON, trace-region YAML) cannot be found this way; specs list them in ``extra_deps``.
"""

import ast
import functools
import hashlib
import io
import json
import os
import tokenize
from pathlib import Path

from pipeline import artifacts

PYTEST_CONFIG_FILES = ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml")


class SourceCache:
    """What was computed from each file (its imports, its behaviour digest, a result's verdict, ...), keyed
    by the file's (mtime, size, inode), and answers keyed by a fingerprint (an import closure, the module
    tests' collections), kept in a JSON file across doit runs: parsing every module of a checkout is most
    of what a no-op rerun would otherwise cost. Entries of files that no longer exist are dropped on save
    (tracy's reports get a new name each run)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict = {}
        self.dirty = False
        if path:
            try:
                self.entries = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                self.entries = {}

    def get(self, kind: str, path: Path, compute):
        """`compute(file bytes)` for `path`, or what it returned last time for the same stamp."""
        stat = os.stat(path)  # the inode too: an atomic rewrite within one clock tick still differs
        stamp, key = [stat.st_mtime_ns, stat.st_size, stat.st_ino], f"{_FILE}{kind}:{path}"
        known = self.entries.get(key)
        if known and known[0] == stamp:
            return known[1]
        value = compute(Path(path).read_bytes())
        self.entries[key] = [stamp, value]
        self.dirty = True
        return value

    def recall(self, key: str, fingerprint: str):
        """What `remember` stored under `key` for the same fingerprint, else None."""
        known = self.entries.get(key)
        return known[1] if known and known[0] == fingerprint else None

    def remember(self, key: str, fingerprint: str, value) -> None:
        self.entries[key] = [fingerprint, value]
        self.dirty = True

    def imports(self, path: Path) -> list[tuple[str, list[Path] | None]]:
        def parse(source: bytes) -> list:
            try:
                found = imported_modules(ast.parse(source, filename=str(path)), path)
            except (SyntaxError, ValueError):
                return []  # pytest will report it; the file itself is already a dependency
            return [[name, None if roots is None else [str(r) for r in roots]] for name, roots in found]

        return [
            (name, None if roots is None else [Path(r) for r in roots])
            for name, roots in self.get("imports", path, parse)
        ]

    def save(self) -> None:
        if self.path and self.dirty:
            kept = {k: v for k, v in self.entries.items() if not k.startswith(_FILE) or _exists(k)}
            artifacts.write_json(self.path, kept)
            self.dirty = False


_FILE = "file:"  # the prefix of per-file entries: file:<kind>:<path>


def _exists(key: str) -> bool:
    return os.path.exists(key.split(":", 2)[2])


def test_dependencies(
    workspace: Path, test_files: list[Path], extra_roots: list[Path] = (), cache: "SourceCache | None" = None
) -> list[Path]:
    """Sorted absolute paths: the test files, conftest.py files pytest loads for them, pytest config
    files, and every module reached by following imports from all of those.

    The answer is kept in `cache` with the stamps of every file in it and of every directory those files
    and the tests sit in (a file added or removed changes its directory's stamp, so an import that now
    resolves differently, or a new conftest.py, is seen); while none changed it is reused unread."""
    cache = cache or SourceCache()
    workspace = Path(workspace).resolve()
    key = "closure:" + json.dumps([str(workspace), *map(str, test_files), "|", *map(str, extra_roots)])
    known = cache.entries.get(key)
    if known and known[0] == _closure_stamps(workspace, test_files, known[1]):
        return [Path(p) for p in known[1]]
    entries = [Path(f).resolve() for f in test_files]
    entries += conftests(workspace, entries)
    roots = [workspace, *(rootdir_of(f) for f in entries), *(Path(r).resolve() for r in extra_roots)]
    found = follow_imports(entries, _unique(roots), cache)
    found = sorted(set(found) | set(pytest_config_files(workspace)))
    cache.remember(key, _closure_stamps(workspace, test_files, found), [str(p) for p in found])
    return found


def _closure_stamps(workspace: Path, test_files, files) -> list:
    """(mtime_ns, size) of each file, and mtime_ns of the directories they and the test files sit in, up
    to the workspace; missing ones count as None."""
    folders = {os.path.dirname(f) for f in map(str, files)}
    for test_file in test_files:
        folder = Path(test_file).resolve().parent
        while folder != workspace and workspace in folder.parents:
            folders.add(str(folder))
            folder = folder.parent
    folders.add(str(workspace))
    stamps = []
    for path in [*map(str, files), *sorted(folders)]:
        try:
            info = os.stat(path)
            stamps.append([info.st_mtime_ns, info.st_size])
        except OSError:
            stamps.append(None)
    return stamps


def behaviour_digest(source: bytes) -> str | None:
    """A digest of what a Python file does: its syntax tree, without positions.

    Comments (except those a verdict reads: ``decides_verdict``), blank lines and formatting (line
    breaks, parentheses, quote style) don't change it, so they rerun no device step; docstrings and every
    other string do (they are code: a docstring can be read at run time). None when the file does not
    parse: then its bytes count.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    digest = hashlib.md5(ast.dump(tree, annotate_fields=False).encode())
    for comment in verdict_comments(source):
        digest.update(b"\0" + comment.encode())
    return digest.hexdigest()


def decides_verdict(comment: str) -> bool:
    """A comment a verdict reads (a PCC justification next to a row, the scaffold's placeholder note, both
    mention PCC): it counts in the behaviour digest, so deleting it reruns the steps that read it."""
    return "pcc" in comment.lower()


def verdict_comments(source: bytes) -> list[str]:
    """The comments of `source` that decide a verdict, in order (positions left out)."""
    found = []
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type == tokenize.COMMENT and decides_verdict(token.string):
                found.append(token.string.lstrip("#").strip())
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def conftests(workspace: Path, test_files: list[Path]) -> list[Path]:
    """conftest.py from the workspace root down to each test file's directory (what pytest collects)."""
    found = []
    for test_file in test_files:
        folder = test_file.parent
        chain = [folder, *folder.parents]
        for directory in chain:
            candidate = directory / "conftest.py"
            if candidate.is_file():
                found.append(candidate)
            if directory == workspace:
                break
    return _unique(found)


def pytest_config_files(workspace: Path) -> list[Path]:
    found = []
    for name in PYTEST_CONFIG_FILES:
        path = workspace / name
        if not path.is_file():
            continue
        if name in ("setup.cfg", "pyproject.toml") and "pytest" not in path.read_text(errors="replace"):
            continue  # not pytest's config: changes to it don't change the run
        found.append(path)
    return found


def rootdir_of(test_file: Path) -> Path:
    """pytest's default `prepend` import mode puts the first directory upward without __init__.py on
    sys.path."""
    folder = test_file.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def follow_imports(entries: list[Path], roots: list[Path], cache: "SourceCache | None" = None) -> list[Path]:
    cache = cache or SourceCache()
    seen: set[Path] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for module, search in cache.imports(path):
            todo.extend(resolve(module, search or roots))
    return sorted(seen)


def imported_modules(tree: ast.AST, path: Path) -> list[tuple[str, list[Path] | None]]:
    """(dotted name, search roots) per import; roots None = the global ones, a relative import its package.

    `import a.b` -> a.b; `from a import b` -> a and a.b (b may be a submodule); `from .x import y` ->
    x and x.y searched in the importing file's package.
    """
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            search = None
            if node.level:
                package = path.parent
                for _ in range(node.level - 1):
                    package = package.parent
                search = [package]
                if (package / "__init__.py").is_file():
                    names.append(("__init__", search))
            base = node.module or ""
            if base:
                names.append((base, search))
            for alias in node.names:
                if alias.name != "*":
                    names.append((f"{base}.{alias.name}" if base else alias.name, search))
    return names


def resolve(module: str, roots: list[Path]) -> list[Path]:
    """Files executed by importing `module` from one of `roots`: each package's __init__.py and the module."""
    return list(_resolve(module, tuple(roots)))


@functools.cache  # the tree doesn't change while doit builds its graph; many tests share imports
def _resolve(module: str, roots: tuple[Path, ...]) -> tuple[Path, ...]:
    parts = module.split(".")
    for root in roots:
        files = []
        folder = root
        for i, part in enumerate(parts):
            package = folder / part
            last = i == len(parts) - 1
            if (package / "__init__.py").is_file():
                files.append(package / "__init__.py")
                folder = package
            elif last and (folder / f"{part}.py").is_file():
                files.append(folder / f"{part}.py")
            elif package.is_dir() and not last:
                folder = package  # a namespace package
            else:
                files = []
                break
        if files:
            return tuple(files)
    return ()


def _unique(paths) -> list[Path]:
    return list(dict.fromkeys(paths))
