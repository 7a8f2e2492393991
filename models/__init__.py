"""Software techniques on real transformers models: the zoo, quantization, export to workloads."""
