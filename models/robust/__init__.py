"""Backdoored text classifiers and their certification: FRS (fuzzed randomized smoothing) against uniform
randomized smoothing, RanMASK, SAFER and Text-CRS (embedding noise, word deletion, word reordering), on the
offline MiniLM encoder.

clf = pipeline.classifier(Setup(attack="word"), "victim")        # a backdoored, cached classifier
result = pipeline.run_defenses(Setup(attack="word"))             # CA, ASR, certificates per method
python -m models.robust train-backdoor|certify|attack            # the same from the command line
"""

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "certify": [
            "Certificate",
            "clopper_pearson",
            "cohen_certify",
            "cohen_radius",
            "damerau_levenshtein",
            "deletion_radius",
            "frs_radius",
            "ranmask_radius",
            "reorder_l1",
            "reorder_radius",
            "safer_radius",
        ],
        "classifier": ["MeanPoolClassifier", "TextClassifier"],
        "data": ["LABELS", "Sample", "Trigger", "load_task", "poison", "triggered"],
        "fuzz": ["FuzzResult", "fuzz"],
        "harness": ["MonteCarlo", "evaluate_method", "vote_counts"],
        "methods": ["FRS", "Method", "RanMask", "Safer", "TextCRS", "TextCRSDelete", "TextCRSReorder", "Uniform"],
        "pipeline": ["METHODS", "Setup", "attack_rates", "classifier", "run_defenses"],
        "smoothing": ["ParameterSmoothing", "bmps_finetune"],
    },
)
