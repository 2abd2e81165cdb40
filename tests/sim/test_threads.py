"""The simulator's torch work runs on its own thread count; the caller's count is left as it was."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim import numerics, threads  # noqa: E402


@pytest.fixture
def caller_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def _seen_by_quantize(monkeypatch) -> list[int]:
    seen = []
    real = numerics.quantize

    def spying(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(numerics, "quantize", spying)
    return seen


def test_ops_and_conversions_run_on_one_thread_and_restore_the_callers_count(monkeypatch, caller_threads):
    seen = _seen_by_quantize(monkeypatch)
    device = ttnn.open_device(device_id=0)
    try:
        x = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=device)
        assert torch.get_num_threads() == caller_threads
        y = ttnn.to_torch(ttnn.add(x, x))
    finally:
        ttnn.close_device(device)
    assert torch.get_num_threads() == caller_threads
    assert seen and set(seen) == {1}
    assert torch.equal(y.float(), (2 * x.to_torch().float()))


def test_the_environment_sets_the_count(monkeypatch, caller_threads):
    seen = _seen_by_quantize(monkeypatch)
    monkeypatch.setenv(threads.ENV, "2")
    ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16)
    assert set(seen) == {2}


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_count_is_a_one_line_error(monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(RuntimeError, match=f"{threads.ENV} must be a positive number"):
        ttnn.from_torch(torch.randn(4))
