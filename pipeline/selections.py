"""A module test's selection must pick exactly one test per mode: checked when `doit run` loads the specs.

The spec's `module_test.select.<mode>` is a pytest `-k` expression. Whether it selects one test is only
known by collecting the module test, so `doit run` does that once per module-test command (a child
`pytest --collect-only` with this module as a plugin, which evaluates every mode's expression with pytest's
own `-k` rules) and remembers the answer until the command, a selection or a file of the module test's
import closure changes meaning. A selection that picks no test or several is an input error: one line,
exit 2, before anything is written. The baseline step checks the same again when it runs.
"""

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from pipeline import doit_support, warm

SELECTIONS_ENV = "PIPELINE_SELECTIONS"  # JSON list of -k expressions, for the collecting child
OUTPUT_ENV = "PIPELINE_SELECTIONS_OUT"  # where the child writes what each selects
COLLECT_TIMEOUT_S = 300


class SelectionError(Exception):
    """One line naming the spec's field, the selection and what the module test offers."""


def check(pipeline) -> None:
    """Raise SelectionError for the first selection that does not pick exactly one test."""
    cache = doit_support.SOURCE_CACHE
    pending = []
    for (workspace, argv), tests in _by_command(pipeline).items():
        spec = tests[0].spec
        deps = pipeline.module_deps(spec, tests[0].ops)
        key = f"selections:{workspace}:{json.dumps(argv)}"
        fingerprint = _fingerprint(pipeline.ctx.backend.name, argv, tests, deps)
        known = cache.recall(key, fingerprint)
        if known is None:
            pending.append((key, fingerprint, tests, _start(pipeline.ctx.backend, spec, tests)))
        else:
            _judge(pipeline, tests, known)
    for key, fingerprint, tests, (child, output) in pending:
        found = _finish(child, output)
        if found is not None:  # collection itself failed: the baseline step will say why
            _judge(pipeline, tests, found)
            cache.remember(key, fingerprint, found)


def error_message(source: str, mode: str, select: str, ids: list[str], available: list[str]) -> str:
    """The spec errors' one-line shape: the module test must run exactly one test per mode."""
    field = f"{source}: field 'module_test.select.{mode}': {select!r}"
    if not ids:
        return f"{field} selects no test; available ids: {_shown(available) or 'none'}"
    return f"{field} selects {len(ids)} tests ({_shown(ids)}); narrow it to exactly one test per mode"


def _shown(ids: list[str], most: int = 6) -> str:
    names = [i.split("::")[-1] for i in ids]
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


def _by_command(pipeline) -> dict:
    groups: dict = {}
    for test in pipeline.modules.values():
        command = (str(test.spec.workspace), tuple(test.spec.module_test.argv))
        groups.setdefault(command, []).append(test)
    return groups


def _fingerprint(backend: str, argv, tests, deps) -> str:
    selects = sorted(t.spec.module_test.select[t.mode] for t in tests)
    sha = hashlib.sha256(json.dumps([backend, list(argv), selects]).encode())
    for path, digest in doit_support.digests(deps).items():
        sha.update(f"{path}\0{digest}\0".encode())
    return sha.hexdigest()


def _start(backend, spec, tests):
    """A child `pytest --collect-only` of the module test; writes nothing into the checkout."""
    output = Path(tempfile.mkdtemp(prefix="pipeline-selections-")) / "selected.json"
    selections = sorted({t.spec.module_test.select[t.mode] for t in tests})
    env = backend.env(spec.workspace, {SELECTIONS_ENV: json.dumps(selections), OUTPUT_ENV: str(output)})
    argv = backend.pytest_argv([*spec.module_test.argv, "--collect-only", "-q", "-p", __name__])
    try:  # forked from a warm process if one is ready; if not, it starts now for the device steps
        if warm.wanted(backend.name):
            warm.prestart(env)
            return warm.QuietChild(argv, spec.workspace, env), output
    except warm.WarmError:
        pass  # started the plain way; a bad PIPELINE_WARM_CHILD is the device steps' one-line error
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    child = subprocess.Popen(argv, cwd=spec.workspace, env=env, start_new_session=True, **quiet)
    return child, output


def _finish(child: "subprocess.Popen | warm.QuietChild", output: Path) -> dict | None:
    try:
        code = child.wait(timeout=COLLECT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        code = None
    try:
        return json.loads(output.read_text()) if code == 0 else None
    except (OSError, ValueError):
        return None
    finally:
        output.unlink(missing_ok=True)
        output.parent.rmdir()


def _judge(pipeline, tests, found: dict) -> None:
    for test in tests:
        select = test.spec.module_test.select[test.mode]
        ids = found["selected"].get(select)
        source = pipeline.ctx.display(test.spec.source)
        if isinstance(ids, str):
            problem = " ".join(ids.split())
            field = f"{source}: field 'module_test.select.{test.mode}'"
            raise SelectionError(f"{field}: {select!r} is not a pytest -k expression ({problem}); fix it")
        if isinstance(ids, list) and len(ids) != 1:
            raise SelectionError(error_message(source, test.mode, select, ids, found["ids"]))


# ---- the plugin, in the collecting child ----------------------------------------------------------------


def pytest_collection_finish(session) -> None:
    from _pytest.mark import deselect_by_keyword  # pytest's own -k rules, not an imitation of them

    wanted = os.environ.get(OUTPUT_ENV)
    if not wanted:
        return
    config, selected = session.config, {}
    original = config.option.keyword
    for expression in json.loads(os.environ.get(SELECTIONS_ENV, "[]")):
        items = list(session.items)
        config.option.keyword = expression
        try:
            deselect_by_keyword(items, config)
        except Exception as error:  # a -k that does not parse (pytest's UsageError): a spec error
            selected[expression] = str(error)
            continue
        selected[expression] = [item.nodeid for item in items]
    config.option.keyword = original
    Path(wanted).write_text(
        json.dumps({"ids": [item.nodeid for item in session.items], "selected": selected})
    )
