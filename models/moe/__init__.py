"""CMoE: carve a mixture of experts out of a dense Llama's FFNs, training-free, with an optional short fine-tune.

model, stats = carve(dense, calibration_windows, num_experts=12, top_k=4, num_shared=172)   # 50% of FFN
finetune(model, training_windows(tokenizer, "default", 128, 400), steps=200)
model.save_pretrained(out)          # AutoModelForCausalLM.from_pretrained(out) once models.moe is imported
routed_workload(model, tokens)      # sim workload with the real routed token counts per expert
"""

from models.moe.carve import ExpertPlan, activated_parameters, balanced_assignment, carve, cmoe_config, plan_experts
from models.moe.errors import MoeError
from models.moe.finetune import finetune, training_windows
from models.moe.modeling import CMoEConfig, CMoEForCausalLM, CMoEMLP, CMoERouter, layout_problem
from models.moe.profile import NeuronProfile, mlp_inputs, profile_neurons
from models.moe.workload import routed_counts, routed_workload

__all__ = [
    "CMoEConfig",
    "CMoEForCausalLM",
    "CMoEMLP",
    "CMoERouter",
    "ExpertPlan",
    "MoeError",
    "NeuronProfile",
    "activated_parameters",
    "balanced_assignment",
    "carve",
    "cmoe_config",
    "finetune",
    "layout_problem",
    "mlp_inputs",
    "plan_experts",
    "profile_neurons",
    "routed_counts",
    "routed_workload",
    "training_windows",
]
