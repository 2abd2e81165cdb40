"""Tensor values for the facts plugin (child side, imports torch): which values came out of ttnn and
which out of the reference, so a comparison of the ttnn output with itself is seen."""

_VALUE_CAP = 1 << 22  # values kept per case for the provenance of compared tensors


def keep_values(store: list, tensor) -> None:
    import torch

    if isinstance(tensor, torch.Tensor) and sum(t.numel() for t in store) < _VALUE_CAP:
        store.append(torch.unique(tensor.detach().flatten().double()))


def provenance(tensor, reference_values: list, ttnn_values: list) -> str:
    """ "reference" when every value came out of <op>_reference, "ttnn" when every value came out of
    ttnn.to_torch after a fused call, else "other"."""
    import torch

    if not isinstance(tensor, torch.Tensor) or tensor.numel() == 0:
        return "other"
    values = torch.unique(tensor.detach().flatten().double())
    for name, store in (("reference", reference_values), ("ttnn", ttnn_values)):
        if store and bool(torch.isin(values, torch.cat(store)).all()):
            return name
    return "other"


def shape_of(value) -> list | None:
    shape = getattr(value, "shape", None)
    return [int(d) for d in shape] if shape is not None else None


def number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
