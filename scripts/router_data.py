"""Loading and splitting the MMLU routing data, and the APGR / CPT(50%) metrics.

The split is a fixed function of the prompt text (FNV-1a hash), so every script and every run agrees
on it without a stored list: about 40% of the prompts are held out for evaluation and never seen by
training or tuning.
"""
import json
import os

import numpy as np

from router_features import fnv1a32

DEFAULT_DATA = os.environ.get("SLUICE_ROUTING_DATA", "/work/shared/data/routing/mmlu.jsonl")
HELD_OUT_BUCKETS = {0, 1, 2, 3}  # fnv1a32(prompt) % 10 in this set -> held-out (test) part


def load(path=DEFAULT_DATA):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def is_held_out(row):
    return fnv1a32(row["prompt"].encode("utf-8")) % 10 in HELD_OUT_BUCKETS


def split(rows):
    train = [r for r in rows if not is_held_out(r)]
    test = [r for r in rows if is_held_out(r)]
    return train, test


def pgr_curve(scores, rows):
    """PGR at every cut between groups of tied scores, highest scores to the strong model first.

    Within a group of equal scores the order is unknown, so quality moves linearly across the group
    (the expectation over random tie-breaking); the trapezoidal area then matches that expectation.
    Returns (x, pgr) arrays with x the share of strong calls from 0 to 1.
    """
    strong = np.array([bool(r["strong_correct"]) for r in rows], float)
    weak = np.array([bool(r["weak_correct"]) for r in rows], float)
    sc = np.asarray(scores, float)
    n = len(sc)
    order = np.argsort(-sc, kind="stable")
    sorted_scores = sc[order]
    gain = (strong - weak)[order]
    cuts = [0] + [i for i in range(1, n) if sorted_scores[i] != sorted_scores[i - 1]] + [n]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    x = np.array(cuts, float) / n
    quality = (weak.sum() + cum[cuts]) / n
    w, s = weak.mean(), strong.mean()
    return x, (quality - w) / (s - w)


def apgr(scores, rows):
    x, pgr = pgr_curve(scores, rows)
    return float(np.sum((x[1:] - x[:-1]) * (pgr[1:] + pgr[:-1]) / 2.0))


def cpt(scores, rows, target=0.5):
    """The smallest share of strong calls whose PGR reaches `target` (linear within a tie group)."""
    x, pgr = pgr_curve(scores, rows)
    for k in range(1, len(x)):
        if pgr[k] >= target:
            if pgr[k - 1] >= target:
                return float(x[k - 1])
            return float(x[k - 1] + (target - pgr[k - 1]) / (pgr[k] - pgr[k - 1]) * (x[k] - x[k - 1]))
    return 1.0


# ---- folds: held-out evaluations that a random split does not give (scripts/router_folds.py) ----

KINDS = {
    "quantitative": ["abstract_algebra", "college_mathematics", "elementary_mathematics", "high_school_mathematics",
                     "high_school_statistics", "econometrics", "college_physics", "high_school_physics",
                     "college_chemistry", "high_school_chemistry", "professional_accounting"],
    "computing": ["college_computer_science", "high_school_computer_science", "computer_security", "machine_learning",
                  "electrical_engineering", "formal_logic"],
    "judgement": ["moral_scenarios", "moral_disputes", "philosophy", "business_ethics", "jurisprudence",
                  "logical_fallacies", "professional_law", "international_law", "world_religions", "sociology",
                  "public_relations", "security_studies", "us_foreign_policy"],
}
SUBJECT_FOLDS = 5


def subject_folds(rows):
    sizes = {}
    for r in rows:
        sizes[r["subject"]] = sizes.get(r["subject"], 0) + 1
    folds = [[] for _ in range(SUBJECT_FOLDS)]
    load = [0] * SUBJECT_FOLDS
    for subject in sorted(sizes, key=lambda s: (-sizes[s], s)):
        k = min(range(SUBJECT_FOLDS), key=lambda i: (load[i], i))
        folds[k].append(subject)
        load[k] += sizes[subject]
    return folds


def folds_of(rows):
    """[(name, test indexes)]: the subject folds, then the kinds."""
    subjects = np.array([r["subject"] for r in rows])
    out = []
    for k, group in enumerate(subject_folds(rows)):
        out.append((f"subjects {k + 1}", np.nonzero(np.isin(subjects, group))[0]))
    for kind, group in KINDS.items():
        missing = set(group) - set(subjects)
        assert not missing, f"unknown subjects in KINDS[{kind}]: {missing}"
        out.append((f"kind: {kind}", np.nonzero(np.isin(subjects, group))[0]))
    return out
