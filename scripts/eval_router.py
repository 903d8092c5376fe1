#!/usr/bin/env python3
"""Measures the shipped router on the held-out part of the MMLU routing set (docs/ROUTING.md).

    /usr/bin/python3 scripts/eval_router.py [--binary build/sluice] [--data mmlu.jsonl]

Runs `sluice route --jsonl` over the held-out prompts (the ones train_router.py never reads) and
computes APGR and CPT(50%) as the data set's README defines them, next to two baselines on the same
prompts: prompt length alone (longer = strong model) and a random router (fixed seed). Needs numpy.
"""
import argparse
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import router_data  # noqa: E402


def route_scores(binary, prompts, extra_args):
    """Scores from the real binary, one per prompt, in order."""
    payload = "".join(json.dumps({"message": p}) + "\n" for p in prompts)
    out = subprocess.run([binary, *extra_args, "route", "--jsonl"], input=payload, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    if len(out) != len(prompts):
        raise SystemExit(f"eval_router: {len(prompts)} prompts in, {len(out)} decisions out")
    decisions = [json.loads(line) for line in out]
    return [d["score"] for d in decisions], decisions


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(here, "..", "build", "sluice"))
    ap.add_argument("--data", default=router_data.DEFAULT_DATA)
    ap.add_argument("--config", help="passed to sluice as --config")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the random baseline")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()

    rows = router_data.load(args.data)
    _, held_out = router_data.split(rows)
    prompts = [r["prompt"] for r in held_out]
    extra = ["--config", args.config] if args.config else []
    scores, decisions = route_scores(args.binary, prompts, extra)

    rng = random.Random(args.seed)
    strong = sum(bool(r["strong_correct"]) for r in held_out) / len(held_out)
    weak = sum(bool(r["weak_correct"]) for r in held_out) / len(held_out)
    cloud = sum(d["role"] == "cloud_large" for d in decisions) / len(decisions)
    routers = {
        "sluice (shipped model)": scores,
        "prompt length": [len(p) for p in prompts],
        "random": [rng.random() for _ in prompts],
    }
    results = {name: {"apgr": router_data.apgr(s, held_out), "cpt50": router_data.cpt(s, held_out)}
               for name, s in routers.items()}
    if args.json:
        print(json.dumps({"held_out": len(held_out), "weak": weak, "strong": strong,
                          "cloud_share_at_threshold": cloud, "routers": results}))
        return
    print(f"held-out prompts: {len(held_out)} of {len(rows)}; weak-only quality {weak:.4f}, "
          f"strong-only {strong:.4f}")
    print(f"share sent to cloud_large at the configured threshold: {cloud:.1%}")
    print(f"{'router':<24} {'APGR':>7} {'CPT(50%)':>9}")
    for name, r in results.items():
        print(f"{name:<24} {r['apgr']:>7.4f} {r['cpt50']:>8.1%}")


if __name__ == "__main__":
    main()
