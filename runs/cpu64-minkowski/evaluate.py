"""Calibrate each kept candidate of this run and score it (the run's PLAN.md); prints a table, writes evaluate.json.

python runs/cpu64-minkowski/evaluate.py   (from the repository root; about 1 min per candidate)
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from paper_repro import calibration, runs
from paper_repro.models import build_generator
from paper_repro.selection import CONFIRMATION_SEED, score_generator

RUN = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/cpu64-minkowski")
WORK = RUN / "calibrated-candidates"
info = runs.read_run_info(RUN)
train = np.load(info.data, mmap_mode="r")
dev = info.development
out = {}
for step, path in sorted(runs.list_candidates(RUN).items()):
    g = build_generator(info.preset)
    g.load_weights(path)
    pattern, gain, fit = calibration.fit(g, train, data_scale=info.preset.training.data_scale)
    d = WORK / f"step-{step:09d}"
    shutil.rmtree(d, ignore_errors=True)
    (d / "best").mkdir(parents=True)
    shutil.copy(RUN / "config.json", d / "config.json")
    runs.save_generator(calibration.calibrated(g, pattern, gain), d / "best" / "generator.keras")
    r = score_generator(d, development=dev, n_maps=4096, seed=CONFIRMATION_SEED)
    out[step] = {"confirmation": r["score"], "components": r["components"], "fit": fit.to_dict()}
    print(f"step {step}: calibrated confirmation score {r['score']:.4f} "
          + " ".join(f"{k[:5]} {v:.3f}" for k, v in r["components"].items()), flush=True)
winner = min(out, key=lambda s: out[s]["confirmation"])
d = WORK / f"step-{winner:09d}"
for seed in (777, 2027):
    r = score_generator(d, development=dev, n_maps=4096, seed=seed)
    out[winner][f"development_{seed}"] = {"score": r["score"], "components": r["components"]}
    c = score_generator(d, development="data/confirm/development.npy", n_maps=4096, seed=seed)
    out[winner][f"confirm_{seed}"] = {"score": c["score"], "components": c["components"]}
    print(f"winner step {winner}, seed {seed}: development {r['score']:.4f} "
          + " ".join(f"{k[:5]} {v:.3f}" for k, v in r["components"].items())
          + f"; confirm set {c['score']:.4f} " + " ".join(f"{k[:5]} {v:.3f}" for k, v in c["components"].items()),
          flush=True)
(RUN / "evaluate.json").write_text(json.dumps({"winner": winner, "candidates": out}, indent=1))
