#!/usr/bin/env python3
"""Judges router policies by the worst of several held-out evaluations, not by one random split.

    /usr/bin/python3 scripts/router_folds.py [--data mmlu.jsonl] [--markdown]

Only the held-in part of the MMLU routing set is read (router_data.split): the held-out part stays
for scripts/eval_router.py. On it, two kinds of folds, each trained on everything else:
  * leave-subjects-out: the 57 subjects dealt into 5 folds of about equal size (largest subject
    first, each to the smallest fold so far; ties by name), so a fold's topics were never seen;
  * held-out kinds: all subjects of one kind of prompt (KINDS: quantitative, computing, and questions
    of judgement; MMLU has no open-ended questions, so that is the nearest kind).
Each candidate policy (CANDIDATES) gets APGR and CPT(50%) per fold, the mean and the worst, beside
prompt length alone, random and the oracle. The shipped policy is the candidate with the best worst
fold; it must beat length alone on every fold.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import router_data  # noqa: E402
import train_router as tr  # noqa: E402

# name -> (uses n-grams, l2, subject smoothing, min_df). "ngram+dense" is the recipe shipped before
# the folds (docs/ROUTING.md): its settings were chosen on a random split.
CANDIDATES = {
    "ngram+dense": (True, tr.DEFAULT_L2, tr.SUBJECT_SMOOTHING, tr.MIN_DF),
    "ngram+dense, l2 x10, min_df 20": (True, tr.DEFAULT_L2 * 10, tr.SUBJECT_SMOOTHING, 20),
    "dense": (False, tr.DEFAULT_L2, tr.SUBJECT_SMOOTHING, tr.MIN_DF),
    "dense, no smoothing": (False, tr.DEFAULT_L2, 1.0, tr.MIN_DF),
}


def learned_scores(x, rows, train_idx, test_idx, candidate):
    ngrams, l2, smoothing, min_df = candidate
    train_rows = [rows[i] for i in train_idx]
    xt = x.subset(train_idx)
    if not ngrams:
        xt = tr.without_rare(xt, np.zeros(tr.NUM_BUCKETS, bool))
    ys, yw = tr.labels(train_rows, smoothing)
    xt = tr.without_rare(xt, tr.frequent_buckets(xt, min_df))
    strong, weak = tr.fit_head(xt, ys, l2, tr.DEFAULT_STEPS), tr.fit_head(xt, yw, l2, tr.DEFAULT_STEPS)
    return tr.score(strong, weak, x.subset(test_idx))


ROBUST_NESTED = "robust, set chosen without the fold"
ROBUST_SHIPPED = "robust, the shipped setting"


def evaluate(rows):
    x = tr.Featurized.of([(r["prompt"], 0, 0) for r in rows])
    folds = router_data.folds_of(rows)
    everyone = np.arange(len(rows))
    table = {name: [] for name in ["length alone", "random", "oracle", *CANDIDATES, ROBUST_NESTED, ROBUST_SHIPPED]}
    grid = tr.robust_grid(x, rows)
    shipped, _ = tr.choose_robust(grid, rows, folds)
    rng = np.random.RandomState(20240601)
    for fold_name, test_idx in folds:
        train_idx = np.setdiff1d(everyone, test_idx)
        test_rows = [rows[i] for i in test_idx]
        baselines = {
            "length alone": np.array([len(r["prompt"]) for r in test_rows], float),
            "random": rng.random_sample(len(test_rows)),
            "oracle": np.array([float(r["strong_correct"]) - float(r["weak_correct"]) for r in test_rows]),
        }
        for name, scores in baselines.items():
            table[name].append((router_data.apgr(scores, test_rows), router_data.cpt(scores, test_rows)))
        for name, candidate in CANDIDATES.items():
            scores = learned_scores(x, rows, train_idx, test_idx, candidate)
            table[name].append((router_data.apgr(scores, test_rows), router_data.cpt(scores, test_rows)))
        # Nested: the setting is chosen on the other folds with this fold's prompts taken out of them.
        nested, _ = tr.choose_robust(grid, rows, folds, exclude=test_idx)
        for name, setting in ((ROBUST_NESTED, nested), (ROBUST_SHIPPED, shipped)):
            scores = grid[setting][test_idx]
            table[name].append((router_data.apgr(scores, test_rows), router_data.cpt(scores, test_rows)))
        print(f"  {fold_name}: setting chosen without it {nested}", file=sys.stderr, flush=True)
        print(f"{fold_name}: {len(test_idx)} prompts", file=sys.stderr, flush=True)
    return folds, table


def best(table):
    learned = {name: min(a for a, _ in table[name]) for name in [*CANDIDATES, ROBUST_NESTED]}
    return max(learned, key=learned.get)


def print_markdown(folds, table):
    names = [name for name, _ in folds]
    print("| policy | " + " | ".join(names) + " | mean | worst |")
    print("|---|" + "---|" * (len(names) + 2))
    for policy, cells in table.items():
        apgrs = [a for a, _ in cells]
        row = [f"{a:.3f} / {c * 100:.1f} %" for a, c in cells]
        print(f"| {policy} | " + " | ".join(row) + f" | {np.mean(apgrs):.3f} | {min(apgrs):.3f} |")
    print()
    print("| fold | prompts | subjects |")
    print("|---|---|---|")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=router_data.DEFAULT_DATA)
    ap.add_argument("--markdown", action="store_true", help="print the tables of docs/ROUTING.md")
    args = ap.parse_args()
    rows, _ = router_data.split(router_data.load(args.data))
    folds, table = evaluate(rows)
    if args.markdown:
        print_markdown(folds, table)
        subjects = np.array([r["subject"] for r in rows])
        for name, idx in folds:
            print(f"| {name} | {len(idx)} | {', '.join(sorted(set(subjects[idx])))} |")
    else:
        for policy, cells in table.items():
            apgrs = [a for a, _ in cells]
            print(f"{policy:34s} " + " ".join(f"{a:.3f}" for a in apgrs) +
                  f"  mean {np.mean(apgrs):.3f} worst {min(apgrs):.3f}")
    length = [a for a, _ in table["length alone"]]
    for name in (ROBUST_SHIPPED, ROBUST_NESTED):
        margins = [a - l for (a, _), l in zip(table[name], length)]
        above = sum(m > 0 for m in margins)
        print(f"{name}: above length alone on {above} of {len(margins)} folds "
              f"(margins {' '.join(f'{m:+.3f}' for m in margins)})")
    print(f"best worst fold: {best(table)}")


if __name__ == "__main__":
    main()
