"""Why a task (re)runs, in one phrase: the same words in the live progress line, in the step's
result.json (`why`) and in `doit why` (a dry run that lists what would rerun, running nothing).

The reasons, in the order they are reported (the first that applies):

- no record of an earlier run (first run, `doit forget`, a module-test task with a new name);
- the first changed source file (its code, or only its docstrings);
- a changed configuration (which key: command, selection, anchors; for the environment key, which
  variable);
- a changed upstream file (another step's result.json, or a file it lists that this step reads);
- the last result did not pass (a previous failure, an interrupted run), its outputs were edited;
- a missing target (no result yet), else "forced" (`doit run -a`, `doit run index`).

The task's own uptodate check (doit_support.step_up_to_date) records on the task object what failed
(`task.why_checks`: kind -> reason); the changed files come from doit's own record of the task's last
success.

A changed stamp alone (touch, a fresh clone) never reruns a step: the contents decide (doit_support).
"""

import ast
import hashlib
import os

from pipeline import artifacts

FORCED = "forced"
NO_RECORD = "no_record"  # the kind of reason of a task doit has no record of (first run, forgotten)
CURRENT: dict[str, str] = {}  # task name -> why it is running now (set by the reporter, read by finish)


def explain(task) -> str:
    """Why `task` runs, in the order of the module docstring. doit has just computed its status: its
    uptodate checks recorded what failed (`task.why_checks`: kind -> reason), and `dep_changed` holds
    the changed file dependencies when every check passed; otherwise they are asked for here."""
    from pipeline import doit_support  # it imports this module

    checks = dict(getattr(task, "why_checks", None) or {})
    if NO_RECORD in checks:  # every file would count as changed: say what is true instead
        return checks[NO_RECORD]
    changed = changed_dependencies(task)
    sources = [d for d in changed if not doit_support.is_result(d)]
    if sources:
        return changed_file(sources[0])
    if "configuration" in checks:
        return checks["configuration"]
    results = [d for d in changed if doit_support.is_result(d)]
    if results:
        return changed_file(results[0])
    for kind in ("upstream", "passed_before", "outputs"):
        if kind in checks:
            return checks[kind]
    missing = [t for t in task.targets if not os.path.exists(t)]
    if missing:
        return f"no result yet: {missing[0]} does not exist"
    return next(iter(checks.values()), FORCED)


def changed_dependencies(task) -> list[str]:
    """The task's file dependencies whose content differs from what doit recorded at its last success
    (new ones and missing ones included), sorted."""
    from doit.dependency import Dependency
    from doit.globals import Globals

    dep_manager = getattr(Globals, "dep_manager", None)
    if not isinstance(dep_manager, Dependency):  # (doit lists every dependency when a target is missing)
        return sorted(task.dep_changed or [])
    changed = []
    for dep in sorted(task.file_dep):
        state = dep_manager._get(task.name, dep)  # doit's record of the file at the task's last success
        try:
            info = dep_manager.checker.info(dep)
        except (OSError, dep_manager.checker.CheckerError):
            changed.append(dep)
            continue
        if state is None or dep_manager.checker.check_modified(dep, info, state):
            changed.append(dep)
    return changed


def changed_file(path: str) -> str:
    from pipeline import doit_support

    if doit_support.is_result(path):
        return f"changed upstream file {path}"
    if path.endswith(".py"):
        return f"changed dependency {path} ({doit_support.python_change(path)})"
    return f"changed dependency {path} (content)"


def config_change(saved: dict | None, current: dict) -> str:
    """`configuration changed: <key>` naming the first key that differs (for the environment key, the
    variable), or without a key when the previous configuration was not recorded."""
    if not isinstance(saved, dict):
        return "configuration changed"
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            old, new = saved.get(key), current.get(key)
            if isinstance(old, dict) and isinstance(new, dict):
                inner = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
                what = "environment key" if key == "env" else key
                now, was = _short(new.get(inner)), _short(old.get(inner))
                return f"configuration changed: {what} {inner} ({now}, was {was})"
            return f"configuration changed: {key} ({_short(new)}, was {_short(old)})"
    return "configuration changed"


def previous_verdict(result_path) -> str:
    from pipeline import doit_support

    verdict = doit_support.read_verdict(result_path)
    if verdict == artifacts.SUPERSEDED:
        return "previous run was interrupted"
    return f"previous result {verdict}" if verdict else "no previous result"


def _short(value) -> str:
    text = "unset" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def docless_digest(source: bytes) -> str | None:
    """sources.behaviour_digest without the docstrings: equal before and after an edit of a file whose
    behaviour digest changed means only its docstrings did. None when the file does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:]
    return hashlib.md5(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def _is_docstring(statement) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


# ---- `doit why`: the dry run ---------------------------------------------------------------------------

try:
    from doit.cmd_base import DoitCmdBase
except ImportError:  # pragma: no cover - doit is a dependency; this keeps the module importable alone
    DoitCmdBase = object


class Why(DoitCmdBase):
    """`doit why [TASK ...] [fused_op=NAME ...]`: what `doit run` would rerun and why, running nothing.

    Asks doit's own dependency check, task by task in graph order, exactly as a run does (so the words
    match the progress line and result.json's `why`). A task that only reads an upstream result is
    listed only when that result already changed: after a rerun an upstream step often writes the same
    result, and then nothing after it reruns."""

    name = "why"
    doc_purpose = "list the tasks `doit run` would rerun and why, without running anything"
    doc_usage = "[TASK ...] [fused_op=NAME ...]"
    doc_description = None
    cmd_options = ()

    def _execute(self, pos_args=None):
        tasks = {t.name: t for t in self.task_list}
        chosen = [t for t in self.task_list if t.actions and _selected(t.name, pos_args or [])]
        lines = []
        for task in chosen:
            reason = dry_run_reason(self.dep_manager, task, tasks)
            if reason:
                lines.append(f"{task.name}: {reason}")
        self.dep_manager.close()
        for line in lines:
            self.outstream.write(line + "\n")
        self.outstream.write(f"{len(lines)} of {len(chosen)} tasks would run; nothing was run\n")
        return 0


def dry_run_reason(dep_manager, task, tasks: dict) -> str | None:
    """Why `task` would run now, or None when it is up to date."""
    status = dep_manager.get_status(task, tasks)
    if status.status == "up-to-date":
        return None
    if status.status == "error":  # a file dependency is not there yet: an upstream task writes it first
        missing = dep_manager.get_status(task, tasks, get_log=True).reasons.get("missing_file_dep") or []
        return changed_file(sorted(missing)[0]) if missing else "a file dependency is missing"
    return explain(task)


def _selected(name: str, words: list[str]) -> bool:
    return not words or any(name == w or name.split(":")[0] == w for w in words)
