"""Backdoored text classifiers and their certification: FRS (fuzzed randomized smoothing) against uniform
randomized smoothing, RanMASK, SAFER and Text-CRS (embedding noise, word deletion, word reordering), on the
offline MiniLM encoder.

clf = pipeline.classifier(Setup(attack="word"), "victim")        # a backdoored, cached classifier
result = pipeline.run_defenses(Setup(attack="word"))             # CA, ASR, certificates per method
python -m models.robust train-backdoor|certify|attack            # the same from the command line
"""

from models.robust.certify import (
    Certificate,
    clopper_pearson,
    cohen_certify,
    cohen_radius,
    damerau_levenshtein,
    deletion_radius,
    frs_radius,
    ranmask_radius,
    reorder_l1,
    reorder_radius,
    safer_radius,
)
from models.robust.classifier import MeanPoolClassifier, TextClassifier
from models.robust.data import LABELS, Sample, Trigger, load_task, poison, triggered
from models.robust.fuzz import FuzzResult, fuzz
from models.robust.harness import MonteCarlo, evaluate_method, vote_counts
from models.robust.methods import FRS, Method, RanMask, Safer, TextCRS, TextCRSDelete, TextCRSReorder, Uniform
from models.robust.pipeline import METHODS, Setup, attack_rates, classifier, run_defenses
from models.robust.smoothing import ParameterSmoothing, bmps_finetune

__all__ = [
    "FRS",
    "LABELS",
    "METHODS",
    "Certificate",
    "FuzzResult",
    "MeanPoolClassifier",
    "Method",
    "MonteCarlo",
    "ParameterSmoothing",
    "RanMask",
    "Safer",
    "Sample",
    "Setup",
    "TextCRS",
    "TextCRSDelete",
    "TextCRSReorder",
    "TextClassifier",
    "Trigger",
    "Uniform",
    "attack_rates",
    "bmps_finetune",
    "classifier",
    "clopper_pearson",
    "cohen_certify",
    "cohen_radius",
    "damerau_levenshtein",
    "deletion_radius",
    "frs_radius",
    "fuzz",
    "load_task",
    "poison",
    "ranmask_radius",
    "reorder_l1",
    "reorder_radius",
    "run_defenses",
    "safer_radius",
    "triggered",
    "evaluate_method",
    "vote_counts",
]
