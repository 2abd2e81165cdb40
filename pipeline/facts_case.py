"""What one test case did, as the facts plugin (pipeline/facts_plugin.py) counts it; `record()` is the
JSON written for the case (keys: pipeline/facts_plugin.py). Stdlib only."""


class CaseFacts:
    """What one test case did; `record()` is the JSON written for it."""

    def __init__(self, case: str, fused: str):
        self.case, self.fused = case, fused
        self.calls = 0
        self.meshes: dict = {}  # id -> (num devices, shape)
        self.captures, self.replays, self.replayed_calls = 0, 0, 0
        self.capturing: list[int] = []  # fused calls captured into the open trace
        self.trace_calls: dict = {}  # trace id -> fused calls captured in it
        self.replayed_since_compare = self.direct_since_compare = 0
        self.cache = {"enabled_at_fused_calls": 0, "disabled_at_fused_calls": 0}
        self.disabled_seen = False
        self.entries_before = self.entries_after = None
        self.checkpoints: list[str] = []
        self.comparisons: list[dict] = []
        self.e2e: list[dict] = []
        self.open_e2e: dict = {}
        self.device_window = None
        self.open_device_window = None
        self.ttnn_values: list = []
        self.reference_values: list = []
        self.replayed_before_convert = False
        self.compared_from_replay = False
        self.perturbed = False

    def executed(self, direct: int = 0, replayed: int = 0) -> None:
        """Count executed fused calls into every open window and into the warm-ups since the last
        comparison."""
        self.direct_since_compare += direct
        self.replayed_since_compare += replayed
        for window in [*self.open_e2e.values(), self.open_device_window]:
            if window is not None:
                window["calls"] += direct + replayed
                window["replayed"] += replayed

    def open_window(self) -> dict:
        return {
            "calls": 0,
            "replayed": 0,
            "direct_before": self.direct_since_compare,
            "replayed_before": self.replayed_since_compare,
        }

    @staticmethod
    def close_window(window: dict) -> dict:
        replay_window = window["replayed"] > 0 and window["replayed_before"] > 0
        warmups = window["replayed_before"] if replay_window else window["direct_before"]
        return {"calls": window["calls"], "warmups": warmups}

    def record(self) -> dict:
        shapes = sorted({tuple(s) for _, s in self.meshes.values()})
        return {
            "case": self.case,
            "fused_function": self.fused,
            "calls": self.calls,
            "devices": sorted({n for n, _ in self.meshes.values()}),
            "mesh_shapes": [list(s) for s in shapes],
            "trace": {
                "captures": self.captures,
                "replays": self.replays,
                "replayed_calls": self.replayed_calls,
            },
            "compared_from_replay": self.compared_from_replay,
            "program_cache": {
                "disabled": self.disabled_seen,
                **self.cache,
                "entries_before": self.entries_before,
                "entries_after": self.entries_after,
            },
            "checkpoint_files": sorted(set(self.checkpoints)),
            "comparisons": self.comparisons,
            "e2e": self.e2e,
            "device_perf_window": self.device_window,
            "perturbed": self.perturbed,
        }
