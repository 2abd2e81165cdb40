"""What the pipeline needs from doit beyond plain task dicts.

- ``doit_config``: doit's state lives in ``artifacts/.doit.db`` (sqlite3: a kill mid-write rolls back
  instead of leaving a corrupt file), so copying ``artifacts/`` carries it to another clone (CI cache).
  File dependencies are repo-relative paths, and the checker compares contents, never only mtimes:
  a fresh clone has new mtimes but the same contents, so nothing reruns there.
- ``ContentChecker``: doit's md5 checker, except that a ``result.json`` is compared by its stable
  content (without the per-execution ``run`` record), so a step that reran and found the same thing
  does not rerun what depends on it, and a Python file by its syntax tree (``sources.behaviour_digest``),
  so a comment, a blank line or reformatting reruns nothing.
- ``passed_before``: an ``uptodate`` check that reruns a step whose last result did not pass.
- ``outputs_intact``: an ``uptodate`` check that reruns a step whose outputs were edited, truncated or
  removed by hand since it wrote them (their digest is saved as the task's doit value).
- ``UpstreamFilesUnchanged``: reruns a step when an upstream file it reads (a perf CSV) changed.
- ``step_up_to_date``: a step task's one uptodate check, combining config_changed with the three above.
- ``read_verdict`` / ``result_files``: what a result.json says, read once per version of the file.
- ``digests`` / ``changed_since``: a step whose input file changed while it ran is not recorded as done.
- ``hold_state_lock``: a second doit on the same artifacts dir waits, saying who holds it, instead
  of racing on doit's database.
"""

import atexit
import fcntl
import fnmatch
import hashlib
import inspect
import json
import os
import shutil
import socket
import stat
import sys
import time
from pathlib import Path

from doit.dependency import MD5Checker
from doit.tools import config_changed

from pipeline import artifacts, sources, why

# doit commands that write doit's database or the artifacts: they take the state lock.
WRITING_COMMANDS = {"run", "forget", "clean", "ignore", "reset-dep", "auto", "strace"}
READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}


class ContentChecker(MD5Checker):
    """(mtime, size, digest) like MD5Checker; for result.json the digest is of its stable content.

    A source shared by many tasks (a conftest, the model's modules) is stat'ed once per doit run: the
    graph names ~1,300 dependencies but only ~150 files. A result.json is stat'ed every time: a step of
    this run may have just rewritten it."""

    def __init__(self):
        self._source_stats = {}

    def info(self, file_path):
        known = self._source_stats.get(file_path)
        if known is None:
            known = os.stat(file_path)
            if not is_result(file_path):
                self._source_stats[file_path] = known
        return known

    def check_modified(self, file_path, file_stat, state):
        timestamp, size, digest = state
        if file_stat.st_mtime == timestamp:
            return False
        if not _by_meaning(file_path) and file_stat.st_size != size:
            return True
        return digest != content_digest(file_path)

    def get_state(self, dep, current_state):
        timestamp = os.path.getmtime(dep)
        if current_state and current_state[0] == timestamp:
            return None
        digest = content_digest(dep)
        if str(dep).endswith(".py"):
            remember_docless(dep, digest)
        return timestamp, os.path.getsize(dep), digest


def content_digest(path) -> str:
    """What a file means to the steps that read it, remembered per version of the file in SOURCE_CACHE:
    a result.json by its stable content, a Python file by its syntax tree, anything else by its bytes."""
    if is_result(path):
        return SOURCE_CACHE.get("result", path, _result_digest)
    if str(path).endswith(".py"):
        return SOURCE_CACHE.get("behaviour", path, _python_digest)
    return SOURCE_CACHE.get("md5", path, lambda data: hashlib.md5(data).hexdigest())


def _result_digest(data: bytes) -> str:
    try:
        stable = artifacts.stable_content(json.loads(data))
    except ValueError:
        return "unreadable"
    return hashlib.md5(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def read_verdict(result_path) -> str:
    """The verdict a step's result.json records ("" when missing or unreadable), read once per version
    of the file (every task asks on every run, and a result can be large)."""
    try:
        return SOURCE_CACHE.get("verdict", result_path, _verdict_of)
    except OSError:
        return ""


def result_files(step_dir) -> dict:
    """The `files` a step's result.json lists (name -> path relative to the step), {} when none."""
    try:
        return SOURCE_CACHE.get("files", Path(step_dir) / artifacts.RESULT, _files_of)
    except OSError:
        return {}


def _verdict_of(data: bytes) -> str:
    try:
        return str(json.loads(data).get("verdict", ""))
    except (ValueError, AttributeError):
        return ""


def _files_of(data: bytes) -> dict:
    try:
        files = json.loads(data).get("files")
    except (ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _python_digest(source: bytes) -> str:
    return sources.behaviour_digest(source) or hashlib.md5(source).hexdigest()


_DOCLESS = "why-docless:"  # SOURCE_CACHE key prefix: a .py file's code digest without its docstrings
_docless_now: dict = {}  # path -> (as doit last saved it, as it is now), once per process


def remember_docless(path, digest: str) -> None:
    """Keep the docstring-free digest of the version of `path` doit records as done, so the next run
    can tell an edit of code from an edit of docstrings only (pipeline/why.py)."""
    SOURCE_CACHE.remember(_DOCLESS + str(path), digest, _docless(path))


def python_change(path) -> str:
    """ "code" or "docstrings only": what changed in `path` since doit last recorded it as done."""
    if str(path) not in _docless_now:
        saved = SOURCE_CACHE.entries.get(_DOCLESS + str(path))
        _docless_now[str(path)] = (saved[1] if saved else None, _docless(path))
    before, now = _docless_now[str(path)]
    if before is None:
        return "code"
    return "docstrings only" if before == now else "code"


def _docless(path) -> str | None:
    try:
        source = Path(path).read_bytes()
    except OSError:
        return None
    return why.docless_digest(source)


# Per-file results kept across runs in <artifacts>/.source-cache.json (set by doit_config).
SOURCE_CACHE = sources.SourceCache()


def is_result(path) -> bool:
    """Whether `path` names a step's result.json (a string test: it runs for every dependency)."""
    path = os.fspath(path)
    return path.endswith(_RESULT_NAME) or path == artifacts.RESULT


_RESULT_NAME = os.sep + artifacts.RESULT


def _by_meaning(path) -> bool:
    """Files whose digest ignores some bytes (so a size change alone proves nothing)."""
    return is_result(path) or str(path).endswith(".py")


OUTPUTS_VALUE = "outputs_digest"  # the doit value a step's action saves


def folder_digest(folder) -> str:
    """Every file under `folder`, by relative path and content."""
    combined = hashlib.md5()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        combined.update(f"{path.relative_to(folder).as_posix()}\0{content_digest(path)}\0".encode())
    return combined.hexdigest()


def folder_record(folder) -> dict:
    """The doit value a step saves: its files' (mtime, size) stamps, and their content digest."""
    return {"stamps": _stamps(folder), "digest": folder_digest(folder)}


def outputs_intact(step_dir: Path):
    """uptodate: False when the step's folder is not what its last run left there. Unchanged stamps
    settle it at the cost of a stat per file; otherwise (a restored copy, a touch) the contents decide."""

    def check(task, values):
        saved = values.get(OUTPUTS_VALUE)
        saved = saved if isinstance(saved, dict) else {"digest": saved}
        if saved.get("stamps") == _stamps(step_dir):
            return True
        return saved.get("digest") == folder_digest(step_dir)

    check.__name__ = "outputs_intact"
    check.why = lambda task, values: f"its outputs in {_relative(step_dir)} changed since it wrote them"
    check.why_kind = "outputs"
    return check


def _stamps(folder) -> dict:
    """relative path -> [mtime_ns, size] of every file under `folder` (os.scandir: one syscall per entry)."""
    stamps, todo = {}, [("", os.fspath(folder))]
    while todo:
        prefix, directory = todo.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                todo.append((f"{prefix}{entry.name}/", entry.path))
            else:
                info = entry.stat()
                stamps[prefix + entry.name] = [info.st_mtime_ns, info.st_size]
    return stamps


def digests(paths) -> dict[Path, str]:
    return {Path(p): _digest_or_missing(p) for p in paths}


def changed_since(before: dict[Path, str]) -> Path | None:
    """The first input whose content differs from `before`, else None."""
    for path, digest in before.items():
        if _digest_or_missing(path) != digest:
            return path
    return None


def _digest_or_missing(path) -> str:
    try:
        return content_digest(path)
    except OSError:
        return "missing"


def prune_empty(folder: Path, root: Path) -> None:
    """`doit clean`: remove `folder` and its parents up to `root` (kept) while they are empty."""
    folder, root = Path(folder).resolve(), Path(root).resolve()
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone
            if folder.exists():
                return
        folder = folder.parent


def prune_unused(folder: Path, used: set[str]) -> None:
    """`doit clean` of every spec: remove the entries of `folder` no spec uses any more, then it if empty."""
    for entry in Path(folder).glob("*"):
        if entry.is_dir() and entry.name not in used:
            shutil.rmtree(entry, ignore_errors=True)
    prune_empty(folder, Path(folder).parent)


def doit_config(layout: artifacts.Layout, repo_root: Path) -> dict:
    db = (
        Path(os.path.relpath(layout.doit_db, repo_root))
        if _inside(layout.doit_db, repo_root)
        else layout.doit_db
    )
    open_source_cache(layout.root)
    atexit.register(lambda: SOURCE_CACHE.save())
    return {
        "dep_file": str(db),
        "backend": "sqlite3",
        "check_file_uptodate": ContentChecker,
        "verbosity": 2,
    }


def open_source_cache(artifacts_root: Path) -> None:
    """Read the per-file results earlier runs kept (writes nothing: saved once the run is under way)."""
    global SOURCE_CACHE
    path = Path(artifacts_root) / ".source-cache.json"
    if SOURCE_CACHE.path != path:
        SOURCE_CACHE = sources.SourceCache(path)


def passed_before(result_path: Path):
    """uptodate: False when the last result is missing or did not pass (failed steps always retry)."""

    def check(task, values):
        return read_verdict(result_path) in artifacts.GOOD_VERDICTS

    check.__name__ = "passed_before"
    check.why = lambda task, values: why.previous_verdict(result_path)
    check.why_kind = "passed_before"
    return check


def step_up_to_date(config: dict, checks: list):
    """A step task's uptodate check: its configuration (doit's config_changed, same saved value), its last
    verdict, its outputs and the upstream files it reads are as they were. One plain function rather than
    four objects: doit inspects the signature of every check of every task on every run."""
    configuration = config_changed(config)

    def check(task, values) -> bool:
        task.value_savers.append(lambda: {WHY_CONFIG: config})  # to name the key that changes next
        verdicts = {"configuration": configuration(task, values)}
        task.why_checks = {} if verdicts["configuration"] else dict([_config_why(values, config)])
        for each in checks:  # every one runs: some register the values to save after the run
            name = getattr(each, "__name__", type(each).__name__)
            verdicts[name] = each(task, values)
            if not verdicts[name]:
                task.why_checks[each.why_kind] = each.why(task, values)
        check.__qualname__ = "step checks; changed: " + (
            ", ".join(k for k, v in verdicts.items() if not v) or "none"
        )
        return all(verdicts.values())

    check.configure_task = configuration.configure_task  # doit calls it when it builds the task
    check.__signature__ = _CHECK_SIGNATURE  # doit reads it for every task on every run: computed once
    return check


_CHECK_SIGNATURE = inspect.signature(lambda task, values: None)
WHY_CONFIG = "_why_config"  # the doit value: the configuration of the task's last run


def _config_why(values: dict, config: dict) -> tuple[str, str]:
    """(kind, reason) when the configuration check failed (pipeline/why.py orders the kinds)."""
    if "_config_changed" not in values:
        return why.NO_RECORD, "no record of an earlier run (first run, `doit forget`, or a new task name)"
    return "configuration", why.config_change(values.get(WHY_CONFIG), config)


class UpstreamFilesUnchanged:
    """uptodate check: the content of every upstream file a step reads (a CSV, a report) is what it was
    when the step last ran. Evaluated when doit reaches the task, i.e. after its upstream tasks ran; the
    file's path comes from the upstream result.json, so a file the upstream did not write counts as missing.
    Unchanged (mtime, size) stamps settle it without reading the files (a perf CSV can be megabytes)."""

    why_kind = "upstream"

    def __init__(self, reads: list[tuple[Path, str]]):
        self.reads = reads

    def files(self) -> list[tuple[str, Path | None, os.stat_result | None]]:
        """(label, path, stat) of each file read; path and stat None when it is not a file there."""
        found = []
        for step_dir, key in self.reads:
            relative = result_files(step_dir).get(key)
            path = Path(step_dir) / relative if relative else None
            info = _file_stat(path) if path else None
            found.append((f"{Path(step_dir).name}:{key}", path if info else None, info))
        return found

    @staticmethod
    def stamps(files) -> list:
        return [
            [label, str(path), info.st_mtime_ns, info.st_size] if info else [label, None]
            for label, path, info in files
        ]

    @staticmethod
    def digest(files) -> str:
        sha = hashlib.sha256()
        for label, path, _ in files:
            sha.update(f"{label}:{content_digest(path) if path else 'missing'}".encode())
        return sha.hexdigest()

    def __call__(self, task, values) -> bool:
        if not self.reads:
            return True
        task.value_savers.append(lambda: {"_upstream_files": self.record()})
        saved = values.get("_upstream_files")
        saved = saved if isinstance(saved, dict) else {"digest": saved}
        files = self.files()
        return saved.get("stamps") == self.stamps(files) or saved.get("digest") == self.digest(files)

    def why(self, task, values) -> str:
        """The first upstream file whose stamp differs, named by its step's folder and result key (the
        file's own name is not known before its step has run: the dry run must say the same)."""
        saved = values.get("_upstream_files")
        before = (saved.get("stamps") or []) if isinstance(saved, dict) else []
        now = self.stamps(self.files())
        same = lambda i: i < len(before) and _without_path(before[i]) == _without_path(now[i])  # noqa: E731
        index = next((i for i in range(len(now)) if not same(i)), 0)
        step_dir, key = self.reads[index]
        if now[index][1] is None:  # the upstream step has no result (yet): that is the file that changed
            return f"changed upstream file {_relative(Path(step_dir) / artifacts.RESULT)}"
        return f"changed upstream file {_relative(step_dir)} ({key})"

    def record(self) -> dict:
        files = self.files()
        return {"stamps": self.stamps(files), "digest": self.digest(files)}


def _without_path(stamp: list) -> list:
    """A stamp [label, path, mtime, size] without its path (a copied checkout keeps mtimes, not paths)."""
    return [stamp[0], *stamp[2:]]


def _relative(path) -> str:
    """`path` relative to the working directory (doit's, the checkout) when inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _file_stat(path) -> os.stat_result | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def named_tasks(argv: list[str] | None = None) -> list[str]:
    """The task names (or groups, or doit wildcards) on a doit command line, without the sub-command."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-") and "=" not in a]
    return words[1:] if words and words[0] in WRITING_COMMANDS | READ_ONLY_COMMANDS else words


def named_on_command_line(task: str, argv: list[str] | None = None) -> bool:
    """Whether the user asked for `task` by name (exactly, by its group, or by a doit wildcard)."""
    words = named_tasks(argv)
    return any(w == task or w == task.split(":")[0] or fnmatch.fnmatchcase(task, w) for w in words)


def doit_command(argv: list[str]) -> str:
    """The doit sub-command of a command line (doit's default is run)."""
    words = [a for a in argv if not a.startswith("-") and "=" not in a]
    return words[0] if words and words[0] in WRITING_COMMANDS | READ_ONLY_COMMANDS else "run"


_held: list = []  # the state lock's descriptor, held for the life of the doit process


def hold_state_lock(layout: artifacts.Layout, say=None) -> None:
    """Block until no other doit uses this artifacts dir; released when this process exits."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    layout.root.mkdir(parents=True, exist_ok=True)
    lock = os.open(layout.doit_lock, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by children
    holder_path = layout.doit_lock.with_name(layout.doit_lock.name + ".holder.json")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(holder_path)
        say(
            f"another doit is using {layout.root} (pid {holder.get('pid')} on {holder.get('host')}, "
            f"since {holder.get('since')}, `{holder.get('argv')}`); waiting for it to finish"
        )
        fcntl.flock(lock, fcntl.LOCK_EX)
        say(f"{layout.root} is free; continuing")
    since = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "argv": " ".join(sys.argv)}
    _write_in_place(holder_path, json.dumps(holder))
    _held.append(lock)
    atexit.register(holder_path.unlink, missing_ok=True)  # best effort; a stale record is harmless


def _write_in_place(path: Path, text: str) -> None:
    """A record only read to tell a waiting user who holds the lock (a torn read shows nothing): no
    temporary file, no fsync; rewritten in place, usable by every user of a shared artifacts dir."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False
