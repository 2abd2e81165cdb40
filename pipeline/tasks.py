"""The task graph (ARCHITECTURE.md "The graph"): fused-op specs -> doit task dicts.

Per fused op X and mode m::

    baseline:<module test>:m ──► patch_verify:X:m
    unit_test:X
    unit_perf:X:m ──┐
    module_perf:<module test>:m ┴► config_compare:X:m
    single_device:X
    single_perf:X:m ──► shape_check:X:m
    everything of X ──► summary:X ──► index

Module-test tasks (baseline, module_perf) are named after their command, not after a fused op, so
fused ops with identical module-test commands share one task. Every task is stale only when a file it
depends on changed content, its configuration changed (command, selection, anchors, environment key),
or its last result did not pass.
"""

import hashlib
import importlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from pipeline import artifacts, backends, doit_support, selections, sources
from pipeline.context import Context, make_context
from pipeline.render import outputs
from pipeline.spec import FusedOpSpec, Overrides, SpecError, load_specs
from pipeline.steps import DOCS, STEPS
from pipeline.steps._common import Job

REPO_ROOT = Path(__file__).resolve().parent.parent
PER_MODE = (
    "baseline",
    "patch_verify",
    "unit_perf",
    "module_perf",
    "config_compare",
    "single_perf",
    "shape_check",
)


class ModuleTest(NamedTuple):
    """One module-test command for one mode, and the fused ops that use it."""

    key: str
    mode: str
    spec: FusedOpSpec  # the first user; the command is the same for all
    ops: tuple[str, ...]


class Pipeline:
    """The graph of the selected specs. `every_spec`: no fused_op selection, so `doit clean` may drop the
    module-test folders no spec uses any more."""

    def __init__(self, ctx: Context, specs: list[FusedOpSpec], every_spec: bool = True):
        self.ctx = ctx
        self.specs = specs
        self.every_spec = every_spec
        self.modules: dict = {}  # (key, mode) -> ModuleTest
        self._module_of: dict = {}  # (op, mode) -> its ModuleTest
        self._deps_cache: dict = {}  # per import closure, and per op's unit / module test
        self._display_cache: dict = {}

    @classmethod
    def from_doit_vars(
        cls, get_var, repo_root: Path = REPO_ROOT, argv: list[str] | None = None
    ) -> "Pipeline":
        """Load the specs named by the doit vars; a bad spec is one line on stderr and exit 2."""
        try:
            fused_op, backend = get_var("fused_op"), get_var("backend", "sim")
            workspace, artifacts_dir = get_var("workspace"), get_var("artifacts")
            pipeline = cls.load(repo_root, fused_op, backend, workspace, artifacts_dir)
            argv = sys.argv[1:] if argv is None else argv
            if doit_support.doit_command(argv) == "run" and doit_support.named_tasks(argv) != ["index"]:
                selections.check(pipeline)
            return pipeline
        except (SpecError, selections.SelectionError) as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    @classmethod
    def load(
        cls,
        repo_root: Path,
        fused_op: str | None = None,
        backend: str = "sim",
        workspace: str | None = None,
        artifacts_dir: str | None = None,
    ) -> "Pipeline":
        repo_root = Path(repo_root).resolve()
        selected = [n.strip() for n in fused_op.split(",") if n.strip()] if fused_op else None
        root = Path(artifacts_dir) if artifacts_dir else repo_root / "artifacts"
        root = root if root.is_absolute() else repo_root / root
        doit_support.open_source_cache(root)
        overrides = Overrides(backend=backend or "sim", workspace=workspace)
        specs = load_specs(repo_root / "fused_ops", selected, overrides, repo_root, doit_support.SOURCE_CACHE)
        if not specs:
            raise SpecError(
                f"{repo_root / 'fused_ops'}: no *.toml spec; add one (see docs/internals.md §2.2)"
            )
        ctx = make_context(repo_root, root, specs[0].backend, specs[0].workspace, doit_support.SOURCE_CACHE)
        pipeline = cls(ctx, specs, every_spec=selected is None)
        pipeline._group_module_tests()
        return pipeline

    def doit_config(self) -> dict:
        self.ctx.layout.root.mkdir(parents=True, exist_ok=True)  # doit opens its db there right after
        return doit_support.doit_config(self.ctx.layout, self.ctx.repo_root)

    # ---- the graph ----------------------------------------------------------------------------------

    def tasks(self, step: str):
        """doit task dicts for one step: the group's doc first, then one sub-task per op (and mode)."""
        if step != "index":  # index is a single task, not a group
            yield {
                "basename": step,
                "name": None,
                "doc": step_doc(step),
                "uptodate": [True],  # no work of its own: nothing for doit to record on every run
            }
        yield from getattr(self, f"_{step}")()

    def _baseline(self):
        for test in self.modules.values():
            yield self._module_task("baseline", test)

    def _module_perf(self):
        for test in self.modules.values():
            config = {"op_support_count": self.ctx.op_support_count}
            upstream = {"baseline": self._module_dir("baseline", test)}
            yield self._module_task("module_perf", test, config, upstream)

    def _patch_verify(self):
        for spec in self.specs:
            for mode in spec.modes:
                test = self._module_test(spec, mode)
                sequence = spec.sequences[mode]
                config = {
                    **self._module_config(test),
                    "sequence": sequence._asdict(),
                    "unit_test": spec.unit_test,
                    "function": spec.names.ttnn,
                    "pcc_tolerance": spec.pcc_tolerance,
                }
                deps = self.module_deps(spec) + self._unit_deps(spec)
                upstream = {"baseline": self._module_dir("baseline", test)}
                yield self._task("patch_verify", spec, mode, deps, config, upstream)

    def _unit_test(self):
        for spec in self.specs:
            config = {
                "unit_test": spec.unit_test,
                "function": spec.names.test,
                "prefill_seqlens": list(spec.prefill_seqlens),
            }
            upstream = self._gate(spec, "patch_verify")
            yield self._task("unit_test", spec, None, self._unit_deps(spec), config, upstream)

    def _single_device(self):
        for spec in self.specs:
            config = {
                "unit_test": spec.unit_test,
                "function": spec.names.single_device,
                "prefill_seqlens": list(spec.prefill_seqlens),
            }
            upstream = {"unit_test": self._dir(spec, "unit_test"), **self._gate(spec, "unit_perf")}
            yield self._task("single_device", spec, None, self._unit_deps(spec), config, upstream)

    def _unit_perf(self):
        for spec in self.specs:
            for mode in spec.modes:
                config = self._perf_config(spec, mode, spec.names.device_perf)
                upstream = {"unit_test": self._dir(spec, "unit_test")}
                yield self._task("unit_perf", spec, mode, self._unit_deps(spec), config, upstream)

    def _single_perf(self):
        for spec in self.specs:
            for mode in spec.modes:
                config = self._perf_config(spec, mode, spec.names.single_device_device_perf)
                upstream = {
                    "unit_test": self._dir(spec, "unit_test"),
                    "single_device": self._dir(spec, "single_device"),
                }
                yield self._task("single_perf", spec, mode, self._unit_deps(spec), config, upstream)

    def _config_compare(self):
        for spec in self.specs:
            for mode in spec.modes:
                upstream = {
                    "unit_test": self._dir(spec, "unit_test"),
                    "unit_perf": self._dir(spec, "unit_perf", mode),
                    "module_perf": self._module_dir("module_perf", self._module_test(spec, mode)),
                }
                config = {"iterations": spec.names.device_perf_iters}
                reads = [("unit_perf", "csv"), ("module_perf", "csv")]
                yield self._host_task("config_compare", spec, mode, upstream, config, reads=reads)

    def _shape_check(self):
        for spec in self.specs:
            for mode in spec.modes:
                upstream = {
                    "unit_perf": self._dir(spec, "unit_perf", mode),
                    "single_perf": self._dir(spec, "single_perf", mode),
                    "unit_test": self._dir(spec, "unit_test"),
                    "single_device": self._dir(spec, "single_device"),
                }
                config = {"iterations": spec.names.device_perf_iters}
                reads = [("unit_perf", "csv"), ("single_perf", "csv")]
                yield self._host_task("shape_check", spec, mode, upstream, config, reads=reads)

    def _gate(self, spec: FusedOpSpec, step: str) -> dict:
        """The per-mode results of `step` a task waits for, keyed `<step>:<mode>`."""
        return {f"{step}:{mode}": self._dir(spec, step, mode) for mode in spec.modes}

    def _summary(self):
        layout = self.ctx.layout
        for spec in self.specs:
            upstream = self.op_step_dirs(spec)
            op_dir = layout.op_dir(spec.name)
            summary_json, summary_md = layout.summary_json(spec.name), layout.summary_md(spec.name)
            job = self._job("summary", spec, None, f"summary:{spec.name}", op_dir, upstream)
            key = {"spec": spec.raw, "env": self.ctx.key_for(spec.env_vars), "tasks": list(upstream)}
            yield {
                "basename": "summary",
                "name": spec.name,
                "doc": f"summary of {spec.name}: {summary_md}",
                "actions": [(_execute, ["summary", job])],
                "file_dep": [self._display(os.path.join(d, artifacts.RESULT)) for d in upstream.values()],
                "targets": [self._display(summary_json), self._display(summary_md)],
                "uptodate": [config_changed(key)],
                "clean": [
                    (_remove, [summary_json, summary_md]),
                    (_remove_all, [op_dir, outputs.OP_OUTPUTS]),
                    (doit_support.prune_empty, [op_dir, layout.root]),
                ],
            }

    def _index(self):
        layout = self.ctx.layout
        job = self._job("index", self.specs[0], None, "index", layout.root, {})
        if doit_support.named_tasks() == ["index"]:  # `doit run index`: index the tree as it is (merged
            ops, deps, uptodate = None, [], [False]  # from several machines), judging every op in it
        else:
            ops = tuple(spec.name for spec in self.specs)
            deps = [self._display(layout.summary_json(op)) for op in ops]
            uptodate = [config_changed({"ops": list(ops), "env": self.ctx.environment_key})]
        yield {
            "basename": "index",
            "doc": step_doc("index"),
            "actions": [(_execute, ["index", job, ops])],
            "file_dep": deps,
            "targets": [self._display(layout.index_md)],
            "uptodate": uptodate,
            "clean": [
                (_remove, [layout.index_md]),
                (_remove_all, [layout.root, outputs.INDEX_OUTPUTS]),
                *self._prune_unused_modules(),
            ],
        }

    def _prune_unused_modules(self) -> list:
        if not self.every_spec:  # other specs' module tests are not loaded: keep everything
            return []
        used = {test.key for test in self.modules.values()}
        return [(doit_support.prune_unused, [self.ctx.layout.root / artifacts.MODULE_TESTS, used])]

    def tasks_of(self, spec: FusedOpSpec) -> list[str]:
        """Every task name of one fused op's graph (shared module tasks included), in graph order."""
        return list(self.op_step_dirs(spec)) + [f"summary:{spec.name}", "index"]

    def op_step_dirs(self, spec: FusedOpSpec) -> dict[str, Path]:
        dirs = {}
        for step in STEPS[:-2]:
            for mode in spec.modes if step in PER_MODE else (None,):
                if step in ("baseline", "module_perf"):
                    test = self._module_test(spec, mode)
                    dirs[f"{step}:{test.key}:{mode}"] = self._module_dir(step, test)
                else:
                    dirs[_name(step, spec.name, mode)] = self._dir(spec, step, mode)
        return dirs

    # ---- building blocks ----------------------------------------------------------------------------

    def _task(
        self,
        step: str,
        spec: FusedOpSpec,
        mode: str | None,
        deps: list[Path],
        config: dict,
        upstream: dict | None = None,
        name: str | None = None,
        step_dir: Path | None = None,
        ops=(),
        reads=(),
    ) -> dict:
        """A device task: runs through the supervised runner, reruns when its last result did not pass."""
        name = name or _name(step, spec.name, mode)
        step_dir = step_dir or self._dir(spec, step, mode)
        upstream = upstream or {}
        config = {**config, "env": self.ctx.key_for(spec.env_vars)}
        job = self._job(step, spec, mode, name, step_dir, upstream, deps, config, ops)
        result = step_dir / artifacts.RESULT
        file_dep = self._displayed(deps) + [
            self._display(os.path.join(d, artifacts.RESULT)) for d in upstream.values()
        ]
        upstream_files = doit_support.UpstreamFilesUnchanged([(upstream[u], key) for u, key in reads])
        checks = [doit_support.passed_before(result), doit_support.outputs_intact(step_dir), upstream_files]
        prune = (doit_support.prune_empty, [step_dir.parent, self.ctx.layout.root])
        return {
            "basename": step,
            "name": name.split(":", 1)[1],
            "doc": _doc(step, spec, mode, ops),
            "actions": [(_execute, [step, job])],
            "file_dep": sorted(set(file_dep)),
            "targets": [self._display(result)],
            "uptodate": [doit_support.step_up_to_date(config, checks)],
            "clean": [(artifacts.clear_dir, [step_dir]), prune],
        }

    def _host_task(
        self, step: str, spec: FusedOpSpec, mode: str, upstream: dict, config: dict, reads=()
    ) -> dict:
        return self._task(step, spec, mode, [], config, upstream, reads=reads)

    def _module_task(
        self, step: str, test: ModuleTest, extra_config: dict | None = None, upstream: dict | None = None
    ) -> dict:
        config = {**self._module_config(test), **(extra_config or {})}
        upstream = upstream or {}
        deps = self.module_deps(test.spec, test.ops)
        name, step_dir = f"{step}:{test.key}:{test.mode}", self._module_dir(step, test)
        return self._task(
            step, test.spec, test.mode, deps, config, upstream, name=name, step_dir=step_dir, ops=test.ops
        )

    def _module_config(self, test: ModuleTest) -> dict:
        spec = test.spec
        argv, select = list(spec.module_test.argv), spec.module_test.select[test.mode]
        return {"workspace": self.ctx.display(spec.workspace), "argv": argv, "select": select}

    def _perf_config(self, spec: FusedOpSpec, mode: str, function: str) -> dict:
        return {
            "unit_test": spec.unit_test,
            "function": function,
            "mode": mode,
            "iterations": spec.names.device_perf_iters,
            "op_support_count": self.ctx.op_support_count,
        }

    def _job(self, step, spec, mode, name, step_dir, upstream, deps=(), config=None, ops=()) -> Job:
        return Job(
            ctx=self.ctx.for_spec(spec.timeouts),
            spec=spec,
            step=step,
            task=name,
            step_dir=Path(step_dir),
            mode=mode,
            ops=tuple(ops),
            upstream=dict(upstream),
            inputs=tuple(deps),
            config=config or {},
        )

    def _group_module_tests(self) -> None:
        for spec in self.specs:
            for mode in spec.modes:
                key = module_key(spec, mode, self.ctx)
                known = self.modules.get((key, mode))
                ops = (*known.ops, spec.name) if known else (spec.name,)
                self.modules[(key, mode)] = ModuleTest(key, mode, known.spec if known else spec, ops)

    def _module_test(self, spec: FusedOpSpec, mode: str) -> ModuleTest:
        if (spec.name, mode) not in self._module_of:
            self._module_of[(spec.name, mode)] = self.modules[(module_key(spec, mode, self.ctx), mode)]
        return self._module_of[(spec.name, mode)]

    def _module_dir(self, step: str, test: ModuleTest) -> Path:
        return self.ctx.layout.module_dir(test.key, step, test.mode)

    def _dir(self, spec: FusedOpSpec, step: str, mode: str | None = None) -> Path:
        return self.ctx.layout.step_dir(spec.name, step, mode)

    def module_deps(self, spec: FusedOpSpec, ops=()) -> list[Path]:
        key = ("module test", spec.name, ops)
        if key not in self._deps_cache:
            self._deps_cache[key] = self._find_module_deps(spec, ops)
        return self._deps_cache[key]

    def _find_module_deps(self, spec: FusedOpSpec, ops=()) -> list[Path]:
        test_files = [
            spec.workspace / a.split("::")[0] for a in spec.module_test.argv[1:] if ".py" in a.split("::")[0]
        ]
        extra = [d for s in self.specs if s.name in (ops or (spec.name,)) for d in s.extra_deps]
        return self._deps(spec, test_files, extra)

    def _unit_deps(self, spec: FusedOpSpec) -> list[Path]:
        key = ("unit test", spec.name)
        if key not in self._deps_cache:
            self._deps_cache[key] = self._deps(spec, [spec.workspace / spec.unit_test], spec.extra_deps)
        return self._deps_cache[key]

    def _deps(self, spec: FusedOpSpec, test_files: list[Path], extra: list[str]) -> list[Path]:
        key = (str(spec.workspace), tuple(map(str, test_files)), tuple(extra))
        if key not in self._deps_cache:
            found = sources.test_dependencies(
                spec.workspace, test_files, [backends.REPO_ROOT], doit_support.SOURCE_CACHE
            )
            # sorted by name: a Path hashes and sorts by its parts, slowly
            by_name = {str(p): p for p in found}
            for name in (os.path.normpath(spec.workspace / e) for e in extra):  # the workspace is resolved
                by_name.setdefault(name, Path(name))
            self._deps_cache[key] = [by_name[name] for name in sorted(by_name)]
        return self._deps_cache[key]

    def _display(self, path: Path) -> str:
        return self.ctx.display(path)

    def _displayed(self, paths: list[Path]) -> list[str]:
        """Display names of a dependency list, once per list object (the tasks of one op share one)."""
        known = self._display_cache.get(id(paths))
        if known is None or known[0] is not paths:  # the list is kept alive with its names: ids can't recur
            known = self._display_cache[id(paths)] = (paths, [self.ctx.display(p) for p in paths])
        return known[1]


def module_key(spec: FusedOpSpec, mode: str, ctx: Context) -> str:
    """A readable, clone-independent name for one module-test command: `<test>-<words>-<digest>`."""
    words = []
    for arg in spec.module_test.argv[1:]:
        if "::" in arg:
            words.append(re.sub(r"\[.*\]$", "", arg.rsplit("::", 1)[1]))
        elif not arg.startswith("-") and "/" not in arg and not arg.endswith(".py"):
            words.append(arg)
    slug = re.sub(r"[^a-z0-9_]+", "_", "-".join(words).lower()).strip("_")[:40] or "module"
    identity = [ctx.display(spec.workspace), list(spec.module_test.argv), mode, spec.module_test.select[mode]]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:6]
    return f"{slug}-{digest}"


def _name(step: str, op: str, mode: str | None) -> str:
    return f"{step}:{op}:{mode}" if mode else f"{step}:{op}"


def step_doc(step: str) -> str:
    return DOCS[step]


def _doc(step: str, spec: FusedOpSpec, mode: str | None, ops) -> str:
    if step in ("baseline", "module_perf"):
        select = spec.module_test.select[mode]
        return f"{' '.join(spec.module_test.argv)} -k {select!r} (used by {', '.join(ops)})"
    return f"{spec.name}" + (f" {mode}" if mode else "") + f": {spec.description}"


def _execute(step: str, job: Job, *args):
    """The doit action of every task: run the step.

    In a graph run a step that does not pass still counts as done for doit, so everything after it
    (reports included) gets written; its `passed_before` check makes the next run retry it, and the
    index step fails the run. A step named on the command line fails doit itself.
    """
    inputs_before = doit_support.digests(job.inputs)
    result = importlib.import_module(f"pipeline.steps.{step}").run(job, *args)
    if step == "index":
        return result
    changed = doit_support.changed_since(inputs_before)
    if changed:  # what ran saw a mix of old and new: don't let doit record the new file as done
        return TaskFailed(
            f"{job.task}: {job.ctx.display(changed)} changed while the step ran; run doit again"
        )
    if isinstance(result, dict) and result["verdict"] not in artifacts.GOOD_VERDICTS:
        if doit_support.named_on_command_line(job.task):
            return TaskFailed(f"{job.task}: {result['verdict']}: {result.get('message', '')}")
    if step in STEPS[:-2]:  # summary and index write into shared folders; their targets are checked
        return {doit_support.OUTPUTS_VALUE: doit_support.folder_record(job.step_dir)}
    return None


def _remove_all(folder: Path, names) -> None:
    """What the renderer wrote into `folder` (pages, history, tt-perf-report tables)."""
    for name in names:
        path = Path(folder) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _remove(*paths: Path) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)
