"""Mesh shapes, mesh mappers (torch -> per-device shards) and composers (shards -> torch).

Devices of a mesh are numbered row-major: device (r, c) of an R x C mesh is shard r * C + c.
"""

from __future__ import annotations

import torch


class MeshShape:
    def __init__(self, *dims):
        if len(dims) == 1 and not isinstance(dims[0], int):
            dims = tuple(dims[0])
        self.dims = tuple(int(d) for d in dims)

    def __iter__(self):
        return iter(self.dims)

    def __getitem__(self, i):
        return self.dims[i]

    def __len__(self) -> int:
        return len(self.dims)

    def __eq__(self, other) -> bool:
        return tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.dims)

    def mesh_size(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"MeshShape([{', '.join(map(str, self.dims))}])"


def _mesh_rows_cols(mesh_device, mesh_shape=None) -> tuple[int, int]:
    shape = tuple(mesh_shape) if mesh_shape is not None else tuple(mesh_device.shape)
    return (shape[0], shape[1]) if len(shape) == 2 else (1, shape[0])


class ReplicateTensorToMesh:
    replicates = True  # as_tensor caches a replicated tensor once, unsharded

    def __init__(self, mesh_device):
        self.num_devices = mesh_device.get_num_devices()

    def map(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return [tensor] * self.num_devices


class ShardTensorToMesh:
    """Split `dim` into one chunk per device (row-major over the whole mesh)."""

    def __init__(self, mesh_device, dim: int):
        self.num_devices = mesh_device.get_num_devices()
        self.dim = dim

    def map(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.chunk(tensor, self.num_devices, dim=self.dim))


class ShardTensor2dMesh:
    """dims=(row_dim, col_dim): split row_dim over mesh rows and col_dim over mesh columns; None
    replicates."""

    def __init__(self, mesh_device, mesh_shape=None, dims=(None, None)):
        self.rows, self.cols = _mesh_rows_cols(mesh_device, mesh_shape)
        self.dims = tuple(dims)

    def map(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        row_dim, col_dim = self.dims
        row_chunks = (
            list(torch.chunk(tensor, self.rows, row_dim)) if row_dim is not None else [tensor] * self.rows
        )
        shards = []
        for chunk in row_chunks:
            cols = (
                list(torch.chunk(chunk, self.cols, col_dim)) if col_dim is not None else [chunk] * self.cols
            )
            shards.extend(cols)
        return shards


class ConcatMeshToTensor:
    def __init__(self, mesh_device, dim: int):
        self.dim = dim

    def compose(self, shards: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(shards, dim=self.dim)


class ConcatMesh2dToTensor:
    def __init__(self, mesh_device, mesh_shape=None, dims=(0, 1)):
        self.rows, self.cols = _mesh_rows_cols(mesh_device, mesh_shape)
        self.dims = tuple(dims)

    def compose(self, shards: list[torch.Tensor]) -> torch.Tensor:
        row_dim, col_dim = self.dims
        rows = [torch.cat(shards[r * self.cols:(r + 1) * self.cols], dim=col_dim) for r in range(self.rows)]
        return torch.cat(rows, dim=row_dim)


def shard_tensor_to_mesh_mapper(mesh_device, dim: int):
    return ShardTensorToMesh(mesh_device, dim)


def replicate_tensor_to_mesh_mapper(mesh_device):
    return ReplicateTensorToMesh(mesh_device)


def concat_mesh_to_tensor_composer(mesh_device, dim: int):
    return ConcatMeshToTensor(mesh_device, dim)
