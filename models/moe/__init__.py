"""CMoE: carve a mixture of experts out of a dense Llama's (Mistral's, Qwen2's) FFNs, training-free, with an
optional short fine-tune.

model, stats = carve(dense, calibration_windows, num_experts=12, top_k=4, num_shared=172)   # 50% of FFN
finetune(model, training_windows(tokenizer, "default", 128, 400), steps=200)
model.save_pretrained(out)      # from_pretrained(out) works once models.moe.modeling is imported (registers "cmoe")
routed_workload(model, tokens)      # sim workload with the real routed token counts per expert
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "carve": ["ExpertPlan", "activated_parameters", "balanced_assignment", "carve", "cmoe_config", "plan_experts"],
        "errors": ["MoeError"],
        "finetune": ["finetune", "training_windows"],
        "modeling": [
            "CMOE_TYPES",
            "FAMILIES",
            "CMoEConfig",
            "CMoEForCausalLM",
            "CMoEMLP",
            "CMoERouter",
            "layout_problem",
        ],
        "profile": ["NeuronProfile", "mlp_inputs", "profile_neurons"],
        "workload": ["routed_counts", "routed_workload"],
    },
)
