"""Recover the kept candidate step 114,225 of runs/cpu64-spectral-sel15 on a fresh checkout.

The candidates' weights were never committed (runs/ is ignored), and the session that certified the
pick was cut off before it shipped them. The run is deterministic on CPU from its checkpoint (the
shipped state, step 114,000) for a few hundred steps, so resuming a copy of it with the run's own
config for 250 steps gives the same snapshot; its training-time scores, logged every 25 steps in
runs/cpu64-spectral-sel15/selection.csv, must match to the printed digits.
"""
import csv
import sys

from paper_repro.training import _StopForTest, train

run = "runs/cpu64-sel15-repro"
try:
    train(run, resume=True, progress=False, _stop_after=250)
except _StopForTest as stop:
    print("stopped after global step", stop.args[0])
ref = {r["global_step"]: r["score"] for r in csv.DictReader(open("runs/cpu64-spectral-sel15/selection.csv"))}
new = list(csv.DictReader(open(f"{run}/selection.csv")))
bad = 0
for r in new:
    same = ref.get(r["global_step"]) == r["score"]
    bad += not same
    print(r["global_step"], r["score"], ref.get(r["global_step"]), "same" if same else "DIFFERENT")
sys.exit(1 if bad else 0)
