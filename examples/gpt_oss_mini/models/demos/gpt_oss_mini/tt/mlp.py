"""The MoE block: top-k router, then the experts (GptOssMLP)."""

from .experts import Experts
from .model_config import substate
from .router import TopKRouter


class MLP:
    def __init__(self, mesh_device, hf_config, state_dict, args):
        self.router = TopKRouter(mesh_device, hf_config, substate(state_dict, "router"))
        self.experts = Experts(mesh_device, hf_config, substate(state_dict, "experts"), args)

    def __call__(self, hidden_states, mode: str):
        """[1, 1, T, H] -> [1, 1, T, H]."""
        indices, weights = self.router(hidden_states)
        return self.experts(hidden_states, indices, weights, mode)
