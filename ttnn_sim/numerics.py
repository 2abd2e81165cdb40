"""TT number formats on torch: what a value becomes when it is stored in a Tenstorrent dtype.

Every function takes a dtype as an enum member with `.name` (``DataType.BFLOAT8_B``) or as its name
(``"BFLOAT8_B"``); layouts and math fidelities likewise. The rules are those written down in tt-metal's own
conversion routines (the reference vectors tests/sim/test_numerics.py checks) and are checked bit for bit
against its vectors.

Storage: float formats are float32 tensors already rounded to the format; integer formats are int64.

Math fidelity (``apply_math_fidelity``)
---------------------------------------
Facts (tt-metal ``tech_reports/matrix_engine/matrix_engine.md``; tt-llk docs): the Wormhole/Blackhole
FPU multiplier is 5 bit x 7 bit. Per fidelity phase it takes the hidden bit + 4 fraction bits of SrcA
and the hidden bit + 6 fraction bits of SrcB. LoFi runs 1 phase, HiFi2 2, HiFi3 3, HiFi4 4 (throughput
divides by the phase count). Phase 0 = A-high x B-high, phase 1 = A-low (next 4 bits) x B-high,
phase 2 = A-high x B-low (next 6 bits), phase 3 = A-low x B-low. A matmul computes ``D = B x A`` with
in0 (the activation, ``a`` here) in SrcB and in1 (the weight, ``b`` here) in SrcA.

So, with ``a_hi`` = ``a`` truncated to 6 fraction bits, ``a_lo`` = the next 6, ``b_hi`` = ``b`` truncated
to 4 fraction bits and ``b8`` = ``b`` truncated to 8 (4 + 4):

    =========  ======  ===================================  ==============================
    fidelity   phases  product the FPU forms                 what apply_math_fidelity returns
    =========  ======  ===================================  ==============================
    LoFi       1       a_hi @ b_hi                           (a_hi, b_hi)
    HiFi2      2       a_hi @ b8                             (a_hi, b8)
    HiFi3      3       a_hi @ b8 + a_lo @ b_hi               (cat[a_hi, a_lo], cat[b8, b_hi])
    HiFi4      4       a @ b (bf16 operands intact)          (a, b)
    =========  ======  ===================================  ==============================

HiFi3 drops only the low x low phase, which no per-operand truncation can express; it is returned as
two operand pairs concatenated along the contraction dim (``a``'s last dim, ``b``'s dim -2), so
``a' @ b'`` is exactly the 3-phase sum and the output shape is unchanged. Truncation is toward zero
(the multiplier simply does not see the dropped bits). For bf16 operands (7 fraction bits) HiFi2
already sees all of ``b`` and HiFi4 sees everything.
"""

import math

import torch

TILE = 32
BLOCK = 16  # elements sharing one exponent: one row of a 16x16 face

_BLOCK_MAGNITUDE_BITS = {"BFLOAT8_B": 7, "BFLOAT4_B": 3}
_INT_RANGES = {
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "INT32": (-(2**31), 2**31 - 1),
}
# Bytes one 32x32 tile occupies in a buffer; block floats add one exponent byte per 16 elements.
_TILE_BYTES = {
    "BFLOAT16": 2048,
    "FLOAT32": 4096,
    "BFLOAT8_B": 1088,
    "BFLOAT4_B": 576,
    "UINT32": 4096,
    "INT32": 4096,
    "UINT16": 2048,
    "UINT8": 1024,
}
_ELEMENT_BYTES = {"BFLOAT16": 2, "FLOAT32": 4, "UINT32": 4, "INT32": 4, "UINT16": 2, "UINT8": 1}
_CANONICAL_NAN = 0x7FC00000
_FIDELITY_PHASES = {"LoFi": 1, "HiFi2": 2, "HiFi3": 3, "HiFi4": 4}


def _name(value) -> str:
    return getattr(value, "name", value)


def storage_dtype(dtype) -> torch.dtype:
    return torch.int64 if _name(dtype) in _INT_RANGES else torch.float32


def tile_padded_shape(shape) -> tuple:
    """The last two dims rounded up to 32; a rank-1 shape is padded as one row: (50,) -> (32, 64)."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        shape = (1,)
    if len(shape) == 1:
        shape = (1, *shape)
    *outer, h, w = shape
    return (*outer, _round_up(h), _round_up(w))


def buffer_bytes(padded_shape, dtype, layout) -> int:
    """What an allocator charges for a tensor of this padded shape, dtype and layout."""
    name = _name(dtype)
    if _name(layout) == "TILE" or name in _BLOCK_MAGNITUDE_BITS:  # block floats exist only tiled
        padded = tile_padded_shape(padded_shape)
        tiles = math.prod(padded[:-2]) * (padded[-2] // TILE) * (padded[-1] // TILE)
        return tiles * _TILE_BYTES[name]
    return math.prod(int(d) for d in padded_shape) * _ELEMENT_BYTES[name]


def quantize(t: torch.Tensor, dtype, layout="TILE", canonical_nan: bool = True) -> torch.Tensor:
    """float32 in, float32 out (same shape): the values `t` reads back as after being stored as `dtype`.

    canonical_nan=False leaves a bfloat16 NaN's sign and payload as rounding gives them; no op result depends
    on them, so the simulator stores values that way and canonicalises (canonical_nans) when a tensor is read
    back."""
    name = _name(dtype)
    t = t.to(torch.float32)
    if name == "FLOAT32":
        return t
    if name == "BFLOAT16":
        rounded = t.to(torch.bfloat16).to(torch.float32)
        return canonical_nans(rounded) if canonical_nan else rounded
    if name in _BLOCK_MAGNITUDE_BITS:
        return _round_block_float(t, _BLOCK_MAGNITUDE_BITS[name])
    if name in _INT_RANGES:
        low, high = _INT_RANGES[name]
        return torch.nan_to_num(t, nan=0.0).trunc().clamp(low, high)
    raise ValueError(f"unsupported dtype {name}")


def apply_math_fidelity(a: torch.Tensor, b: torch.Tensor, fidelity) -> tuple[torch.Tensor, torch.Tensor]:
    """Matmul operands as the FPU sees them at `fidelity` (table in the module docstring)."""
    name = _name(fidelity)
    if name not in _FIDELITY_PHASES:
        raise ValueError(f"unknown math fidelity {name}")
    if name == "HiFi4":
        return a, b
    a_hi = _truncate_fraction(a, 6)
    if name == "LoFi":
        return a_hi, _truncated_operand(b, 4)
    if name == "HiFi2":
        return a_hi, _truncated_operand(b, 8)
    a_lo = _truncate_fraction(a, 12) - a_hi
    return torch.cat([a_hi, a_lo], dim=-1), torch.cat(
        [_truncated_operand(b, 8), _truncated_operand(b, 4)], dim=-2
    )


def _truncated_operand(b: torch.Tensor, fraction_bits: int) -> torch.Tensor:
    """_truncate_fraction of the second matmul operand, kept on that tensor: it is usually a weight that every
    call multiplies by again (stored tensors are never written in place, so the copy stays valid)."""
    cache = b.__dict__.setdefault("_sim_truncated", {})
    if fraction_bits not in cache:
        cache[fraction_bits] = _truncate_fraction(b, fraction_bits)
    return cache[fraction_bits]


def _round_up(n: int) -> int:
    return max(TILE, -(-n // TILE) * TILE)


def canonical_nans(t: torch.Tensor) -> torch.Tensor:
    """Every NaN as the canonical 0x7FC00000 (bfloat16 rounding keeps a NaN's sign and payload bits), in
    place."""
    if t.is_floating_point() and not torch.isfinite(
        t.sum()
    ):  # one reduction rules out NaNs in the common case
        t.view(torch.int32).masked_fill_(torch.isnan(t), _CANONICAL_NAN)
    return t


def _truncate_fraction(t: torch.Tensor, fraction_bits: int) -> torch.Tensor:
    keep = (0xFFFFFFFF << (23 - fraction_bits)) & 0xFFFFFFFF
    signed_keep = keep - (1 << 32) if keep >= 1 << 31 else keep  # the same bits as an int32 constant
    return (t.to(torch.float32).contiguous().view(torch.int32) & signed_keep).view(torch.float32)


def _pad_to_tiles(t: torch.Tensor) -> torch.Tensor:
    rows = t.reshape(1, -1) if t.dim() <= 1 else t
    padded = tile_padded_shape(rows.shape)
    extra_w = padded[-1] - rows.shape[-1]
    extra_h = padded[-2] - rows.shape[-2]
    if not extra_w and not extra_h:
        return rows
    return torch.nn.functional.pad(rows, (0, extra_w, 0, extra_h), value=0.0)


def _unpad(padded: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) <= 1:
        return padded[0, : (shape[0] if shape else 1)].reshape(shape)
    return padded[..., : shape[-2], : shape[-1]]


def _round_block_float(t: torch.Tensor, m: int) -> torch.Tensor:
    """Block float with `m` magnitude bits per element and one 8-bit exponent per 16 row elements."""
    padded = _pad_to_tiles(t).contiguous()
    blocks = padded.reshape(*padded.shape[:-1], -1, BLOCK)
    out = _round_normal_blocks(blocks, m)
    if out is None:
        out = _round_blocks_bitwise(blocks, m)
    return _unpad(out.reshape(padded.shape), t.shape).contiguous()


def _power_of_two(exponents: torch.Tensor) -> torch.Tensor:
    """2**e as float32, built from its bits (exact; e must lie in the normal range -126..127)."""
    return ((exponents + 127) << 23).view(torch.float32)


def _round_normal_blocks(blocks: torch.Tensor, m: int) -> torch.Tensor | None:
    """_round_blocks_bitwise's result in float arithmetic, about 3x faster, when every block's shared
    exponent E is a normal one of at least 24 or the block is all zeros (else None: blocks of tiny values,
    inf or NaN go bitwise).

    With E >= 24 each element's aligned significand is floor(|x| * 2**(150 - E)) exactly (scaling by a power
    of two is exact, and subnormal inputs fall below 1 and truncate to 0 as the bitwise rule has them); the
    kept magnitude q is that rounded half to even after dropping 24 - m bits; it reads back as
    q * 2**(E - 126 - m).
    """
    magnitude = blocks.abs()
    top = magnitude.amax(dim=-1, keepdim=True)
    shared = top.view(torch.int32) >> 23
    if not bool(((top == 0) | ((shared >= 24) & (shared < 255))).all()):
        return None
    shared = shared.clamp_(min=24)  # an all-zero block stays zero under any scale
    aligned = magnitude.mul_(_power_of_two(150 - shared)).floor_()  # = trunc for magnitudes, and vectorised
    q = aligned.mul_(2.0 ** (m - 24)).round_().clamp_(max=2**m - 1)
    return q.mul_(_power_of_two(shared - 126 - m)).copysign_(blocks).add_(0.0)  # + 0.0: q == 0 reads +0.0


def _round_blocks_bitwise(blocks: torch.Tensor, m: int) -> torch.Tensor:
    """The block-float rule on int32 views (the significand needs 24 bits, shifts stay below 32)."""
    bits = blocks.view(torch.int32)
    exponent = (bits >> 23) & 0xFF
    significand = ((bits & 0x7FFFFF) | (1 << 23)).masked_fill_(exponent == 0, 0)  # subnormals count as 0
    shared = exponent.amax(dim=-1, keepdim=True)
    aligned = significand >> (shared - exponent).clamp_(max=31)  # truncating: no sticky bit
    q = _round_half_even(aligned, 24 - m).clamp_(max=2**m - 1)
    return _block_element_bits(q, shared, bits < 0, m).view(torch.float32)


def _round_half_even(value: torch.Tensor, dropped_bits: int) -> torch.Tensor:
    kept = value >> dropped_bits
    remainder = value & ((1 << dropped_bits) - 1)
    half = 1 << (dropped_bits - 1)
    round_up = (remainder > half) | ((remainder == half) & ((kept & 1) == 1))
    return kept + round_up.to(kept.dtype)


_LEADING_BIT: dict[int, torch.Tensor] = {}


def _leading_bit_index(q: torch.Tensor, m: int) -> torch.Tensor:
    """floor(log2(q)) for 1 <= q < 2**m, via a small lookup table (index 0 maps to 0, unused)."""
    if m not in _LEADING_BIT:
        _LEADING_BIT[m] = torch.tensor([max(0, n.bit_length() - 1) for n in range(2**m)], dtype=torch.int32)
    return _LEADING_BIT[m][q]


def _block_element_bits(
    q: torch.Tensor, shared: torch.Tensor, negative: torch.Tensor, m: int
) -> torch.Tensor:
    """±q * 2**(E - 127 - (m-1)) as int32 float bits; q == 0 reads back as +0.0.

    q is normalised under E: an exponent field of 255 falls out naturally (fraction 0 gives ±inf,
    anything else a NaN), and survivors never go subnormal (their exponent is at least their input's).
    """
    lead = _leading_bit_index(q, m)
    magnitude = ((shared - (m - 1) + lead) << 23) | ((q - (1 << lead)) << (23 - lead))
    sign = torch.where(negative, torch.iinfo(torch.int32).min, 0).to(torch.int32)
    return (magnitude | sign).masked_fill_(q == 0, 0)
