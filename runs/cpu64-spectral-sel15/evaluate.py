"""Calibrate each kept candidate of this run, pick on the confirm set, apply the rule (PLAN.md).

python runs/cpu64-spectral-sel15/evaluate.py   (from the repository root; about 1 min per candidate)
Prints a table and writes evaluate.json beside this file.
"""
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from paper_repro import calibration, runs
from paper_repro.selection import CONFIRMATION_SEED, score_generator

RUN = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cpu64-spectral-sel15")
CONFIRM = "data/confirm/development.npy"
SHIPPED = "paper_repro/reference_model"
SHIPPED_DEV = {777: 0.870, 2027: 0.860}          # the rule's development scores (PLAN.md)
SHIPPED_CONFIRM_MF = {777: 2.40, 2027: 2.49}      # the added gate: confirm-set Minkowski part
WORK = RUN.parent / f"{RUN.name}-calibrated"   # outside RUN: each is a copy of its record
info = runs.read_run_info(RUN)
steps_per_epoch = 400
gap = {int(r["epoch"]): float(r["gap"]) for r in csv.DictReader(open(RUN / "discriminator.csv"))}
train = np.load(info.data, mmap_mode="r")


def fmt(r):
    return f"{r['score']:.4f} " + " ".join(f"{k[:5]} {v:.3f}" for k, v in r["components"].items())


out = {"candidates": {}}
ref = score_generator(SHIPPED, development=CONFIRM, n_maps=4096, seed=CONFIRMATION_SEED)
out["shipped_confirm_54321"] = {"score": ref["score"], "components": ref["components"]}
print(f"shipped: confirm set, seed {CONFIRMATION_SEED}: {fmt(ref)}", flush=True)
for step, path in sorted(runs.list_candidates(RUN).items()):
    epoch = -(-step // steps_per_epoch)
    d = WORK / f"step-{step:09d}"
    shutil.rmtree(d, ignore_errors=True)
    fit = calibration.calibrate_run(RUN, d, train, checkpoint=f"step-{step}", progress=False)
    r = score_generator(d, development=CONFIRM, n_maps=4096, seed=CONFIRMATION_SEED)
    out["candidates"][step] = {"epoch": epoch, "gap": gap.get(epoch), "confirm_54321": r["score"],
                               "components": r["components"], "fit": fit.to_dict()}
    print(f"step {step} (epoch {epoch}, gap {gap.get(epoch)}): calibrated, confirm set {fmt(r)}", flush=True)
eligible = {s: c for s, c in out["candidates"].items() if c["gap"] is not None and c["gap"] < 0.1}
pick = min(eligible, key=lambda s: eligible[s]["confirm_54321"])
out["pick"] = pick
d = WORK / f"step-{pick:09d}"
ship = True
for seed in (777, 2027):
    r = score_generator(d, development=info.development, n_maps=4096, seed=seed)
    c = score_generator(d, development=CONFIRM, n_maps=4096, seed=seed)
    out["candidates"][pick][f"development_{seed}"] = {"score": r["score"], "components": r["components"]}
    out["candidates"][pick][f"confirm_{seed}"] = {"score": c["score"], "components": c["components"]}
    mf = c["components"]["minkowski_functionals"]
    ok = r["score"] < SHIPPED_DEV[seed] and mf < SHIPPED_CONFIRM_MF[seed]
    ship &= ok
    print(f"pick step {pick}, seed {seed}: development {fmt(r)} (shipped {SHIPPED_DEV[seed]}); "
          f"confirm set {fmt(c)} (shipped Minkowski {SHIPPED_CONFIRM_MF[seed]}): {'ok' if ok else 'not lower'}",
          flush=True)
out["ship"] = bool(ship)
print("rule:", "SHIP (certify once)" if ship else "not shipped", flush=True)
(RUN / "evaluate.json").write_text(json.dumps(out, indent=1))
