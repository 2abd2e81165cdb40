"""ttnn_sim.numerics against the shared TT numerics reference vectors, bit for bit."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ttnn_sim import numerics

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "tt-numerics"


def _manifest() -> list[str]:
    if not (VECTORS / "manifest.json").exists():
        return []
    return json.loads((VECTORS / "manifest.json").read_text())["files"]


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).view(np.uint32)


def test_reference_vectors_are_present():
    """The vectors are shared/ beside the checkout; CI always has them, so their absence fails."""
    assert _manifest(), f"TT numerics reference vectors not found at {VECTORS} (shared/ beside the checkout)"


@pytest.mark.parametrize("npz", _manifest())
def test_reference_vector_round_trips_bit_exactly(npz):
    meta = json.loads((VECTORS / npz.replace(".npz", ".json")).read_text())
    data = np.load(VECTORS / npz)
    source = torch.from_numpy(data["input"])

    out = numerics.quantize(source, meta["dtype"], meta["layout"])

    assert out.dtype == torch.float32 and tuple(out.shape) == tuple(meta["shape"])
    np.testing.assert_array_equal(_bits(out.numpy()), _bits(data["output"]))
    if "output_padded" in data:
        padded_shape = tuple(meta["padded_shape"])
        assert numerics.tile_padded_shape(meta["shape"]) == padded_shape
        padded_input = torch.zeros(padded_shape)
        padded_input[..., : source.shape[-2], : source.shape[-1]] = source
        padded_out = numerics.quantize(padded_input, meta["dtype"], meta["layout"])
        np.testing.assert_array_equal(_bits(padded_out.numpy()), _bits(data["output_padded"]))


def test_dtype_given_as_enum_member_or_name_agree():
    class FakeDataType:
        name = "BFLOAT4_B"

    x = torch.randn(3, 40)
    assert torch.equal(numerics.quantize(x, FakeDataType()), numerics.quantize(x, "BFLOAT4_B"))


def test_rank1_block_float_is_padded_as_one_row():
    x = torch.randn(50)
    as_row = numerics.quantize(x.reshape(1, 50), "BFLOAT8_B")[0]
    assert torch.equal(numerics.quantize(x, "BFLOAT8_B"), as_row)
    assert numerics.tile_padded_shape((50,)) == (32, 64)
    assert numerics.tile_padded_shape((2, 3, 40, 50)) == (2, 3, 64, 64)


def test_integer_dtypes_round_toward_zero_and_clamp():
    x = torch.tensor([-3.7, -0.5, 0.9, 2.5, 300.0, float("nan")])
    assert numerics.quantize(x, "UINT8").tolist() == [0, 0, 0, 2, 255, 0]
    assert numerics.quantize(x, "INT32").tolist() == [-3, 0, 0, 2, 300, 0]
    assert numerics.storage_dtype("UINT16") == torch.int64
    assert numerics.storage_dtype("BFLOAT8_B") == torch.float32


def test_float32_is_identity():
    x = torch.randn(5, 7)
    assert torch.equal(numerics.quantize(x, "FLOAT32"), x)


@pytest.mark.parametrize(
    "dtype, tile_bytes",
    [("BFLOAT16", 2048), ("BFLOAT8_B", 1088), ("BFLOAT4_B", 576), ("FLOAT32", 4096),
     ("UINT32", 4096), ("INT32", 4096), ("UINT16", 2048), ("UINT8", 1024)],
)
def test_buffer_bytes_per_tile(dtype, tile_bytes):
    assert numerics.buffer_bytes((1, 1, 64, 96), dtype, "TILE") == 6 * tile_bytes


def test_buffer_bytes_row_major_is_elements_times_size():
    assert numerics.buffer_bytes((1, 1, 40, 50), "BFLOAT16", "ROW_MAJOR") == 2000 * 2
    assert numerics.buffer_bytes((3, 5), "UINT8", "ROW_MAJOR") == 15
    assert numerics.buffer_bytes((3, 5), "FLOAT32", "ROW_MAJOR") == 60


def _matmul_error(fidelity, a, b) -> float:
    a_f, b_f = numerics.apply_math_fidelity(a, b, fidelity)
    return (a_f @ b_f - a @ b).abs().mean().item()


def test_math_fidelity_orders_accuracy_lofi_to_hifi4():
    generator = torch.Generator().manual_seed(0)
    a = numerics.quantize(torch.randn(64, 256, generator=generator), "BFLOAT16")
    b = numerics.quantize(torch.randn(256, 64, generator=generator), "BFLOAT16")

    errors = [_matmul_error(f, a, b) for f in ("LoFi", "HiFi2", "HiFi3", "HiFi4")]

    assert errors[0] > errors[1] > errors[2] > errors[3] == 0.0


def test_math_fidelity_keeps_matmul_output_shape_and_accepts_enum_members():
    class HiFi3:
        name = "HiFi3"

    a, b = torch.randn(2, 8, 32), torch.randn(32, 16)
    a_f, b_f = numerics.apply_math_fidelity(a, b, HiFi3())
    assert (a_f @ b_f).shape == (2, 8, 16)


def _block_float_cases() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    scales = (-140, -126, -106, -104, -103, -30, 0, 60, 127)
    cases = [torch.randn(64, 96, generator=g) * 2.0**e for e in scales]
    spread = torch.exp2(torch.randint(-60, 60, (64, 64), generator=g).float())
    cases.append(torch.randn(64, 64, generator=g) * spread)  # exponents far apart inside one block
    mixed = torch.randn(32, 64, generator=g) * 2.0**-100
    mixed[:, ::2], mixed[:, 1::5], mixed[0, 0] = 1e-39, -3e-40, -0.0  # subnormals beside normals
    ties = (torch.randint(0, 256, (64, 64), generator=g).float() + 0.5) * 2.0**-3  # exactly half-way values
    # beside 1.0: ties made by dropping the bits below the aligned significand (not made by rounding it),
    # for 7 and for 3 magnitude bits
    half_way = torch.ones(32, 64)
    edges = [0.5 + 2**-7 + 2**-24, 0.5 + 2**-3 + 2**-24, 33 / 64 + 2**-7 - 2**-24, 0.875 - 2**-24]
    half_way[:, 1::2] = torch.tensor(edges).repeat(8)
    special = torch.randn(32, 64, generator=g)
    special[0, 3], special[1, 5], special[2, 7] = float("inf"), float("nan"), -float("inf")
    special[4, :16] = -0.0
    unaligned = [torch.randn(3, 50, 70, generator=g), torch.randn(70, generator=g)]
    return [*cases, mixed, ties, -ties, half_way, special, *unaligned]


@pytest.mark.parametrize("magnitude_bits", [7, 3])
def test_block_float_in_float_arithmetic_equals_the_bitwise_rule(magnitude_bits):
    fast_taken = 0
    for case in _block_float_cases():
        padded = numerics._pad_to_tiles(case).contiguous()
        blocks = padded.reshape(*padded.shape[:-1], -1, numerics.BLOCK)
        bitwise = numerics._round_blocks_bitwise(blocks.clone(), magnitude_bits)
        fast = numerics._round_normal_blocks(blocks.clone(), magnitude_bits)
        if fast is not None:
            fast_taken += 1
            assert torch.equal(fast.view(torch.int32), bitwise.view(torch.int32))
        rounded = numerics._round_block_float(case, magnitude_bits)
        expected = numerics._unpad(bitwise.reshape(padded.shape), case.shape).contiguous()
        assert torch.equal(rounded.view(torch.int32), expected.view(torch.int32))
    assert 0 < fast_taken < len(_block_float_cases())  # both paths exercised
