"""Compute and data-movement ops against torch references, on a 1x2 mesh, per dtype where it matters."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "gpt_oss_mini"))
from models.common.utility_functions import comp_pcc  # noqa: E402  (the workspace's tt-metal helper)


@pytest.fixture(scope="module")
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 2))
    yield device
    ttnn.close_mesh_device(device)


def put(mesh, x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=mesh)


def get(t):
    return ttnn.to_torch(ttnn.get_device_tensors(t)[0]).float()


def close(expected, actual, pcc=0.999):
    assert actual.shape == expected.shape
    passing, value = comp_pcc(expected.float(), actual, pcc)
    assert passing, value


X = torch.randn(1, 1, 64, 96, generator=torch.Generator().manual_seed(0))
Y = torch.randn(1, 1, 64, 96, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name, reference", [
    ("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("maximum", torch.maximum),
    ("minimum", torch.minimum), ("div", lambda a, b: a / (b.abs() + 1)),
])
@pytest.mark.parametrize("dtype", [ttnn.bfloat16, ttnn.bfloat8_b])
def test_binary(mesh, name, reference, dtype):
    b = Y.abs() + 1 if name == "div" else Y
    expected = reference(X, Y) if name != "div" else X / b
    close(expected, get(getattr(ttnn, name)(put(mesh, X, dtype), put(mesh, b, dtype))), 0.99)


def test_broadcast_scalars_and_operators(mesh):
    row = torch.randn(1, 1, 1, 96)
    close(X + row, get(ttnn.add(put(mesh, X), put(mesh, row))))
    close(1.0 - X, get(1.0 - put(mesh, X)))
    close(X * 2.5, get(put(mesh, X) * 2.5))
    close(-X, get(-put(mesh, X)))


@pytest.mark.parametrize("name, reference", [
    ("silu", torch.nn.functional.silu), ("sigmoid", torch.sigmoid), ("gelu", torch.nn.functional.gelu),
    ("relu", torch.relu), ("exp", torch.exp), ("neg", torch.neg),
    ("reciprocal", lambda x: 1 / x), ("sqrt", torch.sqrt), ("rsqrt", torch.rsqrt),
])
def test_unary(mesh, name, reference):
    x = X.abs() + 0.5 if name in ("reciprocal", "sqrt", "rsqrt") else X
    close(reference(x), get(getattr(ttnn, name)(put(mesh, x))))


def test_clamp_isfinite_where(mesh):
    close(X.clamp(-0.5, 0.5), get(ttnn.clamp(put(mesh, X), min=-0.5, max=0.5)))
    assert torch.equal(get(ttnn.isfinite(put(mesh, X))), torch.ones_like(X))
    cond = (X > 0).float()
    close(torch.where(X > 0, X, Y), get(ttnn.where(put(mesh, cond), put(mesh, X), put(mesh, Y))))


@pytest.mark.parametrize("dtype", [ttnn.bfloat16, ttnn.bfloat8_b, ttnn.bfloat4_b])
def test_linear_with_bias_and_activation(mesh, dtype):
    w, bias = torch.randn(96, 32), torch.randn(1, 32)
    out = ttnn.linear(put(mesh, X), put(mesh, w, dtype), bias=put(mesh, bias), activation="silu")
    close(torch.nn.functional.silu(X @ w + bias), get(out), 0.98 if dtype is ttnn.bfloat4_b else 0.995)


def test_matmul_transpose_b_and_output_dtype(mesh):
    w = torch.randn(32, 96)
    out = ttnn.matmul(put(mesh, X), put(mesh, w), transpose_b=True, dtype=ttnn.float32)
    assert out.dtype == ttnn.float32
    close(X @ w.T, get(out))


def test_softmax_topk(mesh):
    close(torch.softmax(X, -1), get(ttnn.softmax(put(mesh, X), dim=-1)))
    values, indices = ttnn.topk(put(mesh, X, ttnn.float32), 4, dim=-1)
    reference = torch.topk(X, 4, dim=-1)
    assert torch.equal(get(values), reference.values)
    assert torch.equal(ttnn.to_torch(ttnn.get_device_tensors(indices)[0]).long(), reference.indices)
    assert indices.dtype == ttnn.uint16


def test_norms(mesh):
    weight = torch.randn(96)
    rms = X * torch.rsqrt(X.pow(2).mean(-1, keepdim=True) + 1e-5) * weight
    close(rms, get(ttnn.rms_norm(put(mesh, X), epsilon=1e-5, weight=put(mesh, weight.reshape(1, 1, 1, 96)))))
    close(
        torch.nn.functional.layer_norm(X, (96,), eps=1e-5), get(ttnn.layer_norm(put(mesh, X), epsilon=1e-5))
    )


@pytest.mark.parametrize("name, reference", [
    ("sum", lambda x: x.sum(-1, keepdim=True)), ("mean", lambda x: x.mean(-1, keepdim=True)),
    ("max", lambda x: x.amax(-1, keepdim=True)),
])
def test_reductions(mesh, name, reference):
    close(reference(X), get(getattr(ttnn, name)(put(mesh, X), dim=-1, keepdim=True)))


def test_typecast_rounds_to_the_new_dtype(mesh):
    out = ttnn.typecast(put(mesh, X, ttnn.float32), ttnn.bfloat8_b)
    assert out.dtype == ttnn.bfloat8_b
    from ttnn_sim import numerics

    assert torch.equal(get(out), numerics.quantize(X, "BFLOAT8_B"))


def test_data_movement(mesh):
    t = put(mesh, X)
    close(X.reshape(1, 64, 1, 96), get(ttnn.reshape(t, (1, 64, 1, 96))))
    close(X.permute(0, 2, 1, 3), get(ttnn.permute(t, (0, 2, 1, 3))))
    close(X.transpose(-1, -2), get(ttnn.transpose(t, -2, -1)))
    close(X[:, :, 8:40, 32:64], get(t[:, :, 8:40, 32:64]))
    close(X[:, :, :, 10:20], get(ttnn.slice(t, [0, 0, 0, 10], [1, 1, 64, 20])))
    close(torch.cat([X, Y], dim=2), get(ttnn.concat([t, put(mesh, Y)], dim=2)))
    close(X.repeat(1, 2, 1, 1), get(ttnn.repeat(t, ttnn.Shape([1, 2, 1, 1]))))
    close(torch.nn.functional.pad(X, (0, 32)), get(ttnn.pad(t, [(0, 0), (0, 0), (0, 0), (0, 32)], 0.0)))
    first, second = ttnn.split(t, 48, dim=3)
    close(X[..., :48], get(first))
    close(X[..., 48:], get(second))
    close(X.squeeze(0), get(ttnn.squeeze(t, 0)))
    close(X.unsqueeze(0), get(ttnn.unsqueeze(t, 0)))


def test_layout_and_memory_config_changes_keep_values(mesh):
    t = put(mesh, X)
    row_major = ttnn.to_layout(t, ttnn.ROW_MAJOR_LAYOUT)
    assert row_major.layout == ttnn.ROW_MAJOR_LAYOUT
    assert torch.equal(get(row_major), get(t))
    in_l1 = ttnn.to_memory_config(t, ttnn.L1_MEMORY_CONFIG)
    assert in_l1.memory_config().buffer_type == ttnn.BufferType.L1
    assert torch.equal(get(ttnn.clone(in_l1)), get(t))


def test_embedding(mesh):
    table = torch.randn(100, 64)
    ids = torch.tensor([[3, 7, 99, 0]])
    out = ttnn.embedding(put(mesh, ids, ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT), put(mesh, table, ttnn.float32,
                                                                               ttnn.ROW_MAJOR_LAYOUT))
    assert torch.equal(get(out), table[ids])


def test_scatter(mesh):
    base = torch.zeros(1, 1, 32, 8)
    index = torch.tensor([[[[1, 3]] * 32]])
    src = torch.ones(1, 1, 32, 2)
    out = ttnn.scatter(
        put(mesh, base, ttnn.float32), 3, put(mesh, index, ttnn.int32), put(mesh, src, ttnn.float32)
    )
    assert torch.equal(get(out), base.scatter(3, index, src))


def _activations(pattern: str) -> torch.Tensor:
    """[4, 128, 512] activations with many equal rows, as an expert matmul of dispatched tokens sees them."""
    generator = torch.Generator().manual_seed(len(pattern))
    live_count = {"few": 2, "some": 5, "many": 40, "most": 90}.get(pattern, 12)
    x = torch.zeros(4, 128, 512)
    live = torch.randperm(128, generator=generator)[:live_count]
    x[:, live] = torch.randn(4, live_count, 512, generator=generator)
    if pattern == "biased":  # dead rows are each entry's bias after the first matmul of the MLP
        dead = torch.ones(128, dtype=torch.bool)
        dead[live] = False
        x[:, dead] = torch.randn(4, 1, 512, generator=generator)
    if pattern == "signed_zero":
        x[:, ::3] = -0.0
    if pattern == "nan":
        x[1, live[0], 7] = float("nan")
    if pattern == "near_equal":  # two rows whose probe projections agree though the rows differ
        x[:, live[1]] = x[:, live[0]]
        x[:, live[0], 3], x[:, live[1], 3] = 1e-30, 2e-30
    return x


@pytest.mark.parametrize(
    "pattern", ["none", "few", "some", "many", "most", "biased", "signed_zero", "nan", "near_equal"]
)
@pytest.mark.parametrize("weights", ["plain", "inf", "shared"])
def test_matmul_of_repeated_rows_equals_the_dense_product_bit_for_bit(pattern, weights):
    from ttnn_sim.ops.matmul import _first_equal_row, _matmul_distinct_rows

    x = _activations(pattern) if pattern != "none" else torch.zeros(4, 128, 512)
    w = torch.randn(4, 512, 256, generator=torch.Generator().manual_seed(7))
    if pattern == "near_equal":
        w[..., 3, :] = 1e30  # the rows' one difference decides their products
        assert (_first_equal_row(x) != torch.arange(128)).sum() > 4 * 100  # the differing pair is a candidate
    if weights == "inf":
        w[2, 5, 9] = float("inf")
    if weights == "shared":
        w = w[0]
    expected = torch.matmul(x, w)
    assert torch.equal(_matmul_distinct_rows(x, w).view(torch.int32), expected.view(torch.int32))
