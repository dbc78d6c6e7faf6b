"""Score the shipped model and the calibrated candidates of runs/cpu64-spectral-sel15 on the pooled
selection set (development + confirm maps) by the criterion-shaped score W of PLAN.md; apply its rule.

python runs/cpu64-pooled-selection/evaluate.py   (from the repository root; about 1 min per generator)
Prints a table and writes evaluate.json beside this file.
"""
import json
from pathlib import Path

import numpy as np

from paper_repro import runs
from paper_repro.certification import pixel_edges, statistics_of
from paper_repro.comparison import mean_z

HERE = Path(__file__).resolve().parent
SHIPPED = "paper_repro/reference_model"
POOL = sorted(Path("runs/cpu64-spectral-sel15-calibrated").glob("step-*"))
SETS = ("data/cpu/development.npy", "data/confirm/development.npy")
SEEDS = (777, 2027)
N_MAPS = 8192
STATS = ("pixel_intensity", "power_spectrum", "minkowski_functionals")

real = np.concatenate([np.load(p) for p in SETS])
edges = pixel_edges(real[::5])          # quantiles of 2,000 maps spread over both sets
_, preset = runs.load_generator(SHIPPED)
ref = statistics_of(real, preset.angle_deg, edges)
print(f"pooled selection set: {len(real)} maps from {', '.join(SETS)}", flush=True)


def score(run):
    gen, p = runs.load_generator(run)
    out = {}
    for seed in SEEDS:
        maps = np.concatenate(list(runs.generate(gen, N_MAPS, seed, data_scale=p.training.data_scale)))
        s = statistics_of(maps, preset.angle_deg, edges)
        r = {}
        for k in STATS:
            z = mean_z(s[k][1], ref[k][1])
            ok = np.isfinite(z)
            i = int(np.nanargmax(np.abs(np.where(ok, z, np.nan))))
            r[k] = {"mean_z2": float(np.mean(z[ok] ** 2)), "worst_abs_z": float(abs(z[i])),
                    "worst_component": str(s[k][0][i])}
        out[seed] = {"W": max(r[k]["worst_abs_z"] for k in STATS),
                     "score": float(np.mean([r[k]["mean_z2"] for k in STATS])), "statistics": r}
    return out


def line(name, res):
    parts = []
    for seed, r in res.items():
        worst = " ".join(f"{k[:5]} {v['worst_abs_z']:.2f}@{v['worst_component']}" for k, v in r["statistics"].items())
        parts.append(f"seed {seed}: W {r['W']:.2f} score {r['score']:.3f} ({worst})")
    return f"{name}: " + "; ".join(parts)


results = {"shipped": score(SHIPPED)}
print(line("shipped", results["shipped"]), flush=True)
for d in POOL:
    results[d.name] = score(d)
    print(line(d.name, results[d.name]), flush=True)
mean_w = {k: float(np.mean([r[s]["W"] for s in SEEDS])) for k, r in results.items()}
pick = min(mean_w, key=mean_w.get)
ship = pick != "shipped" and all(results[pick][s]["W"] < results["shipped"][s]["W"] for s in SEEDS)
print(f"pick: {pick} (mean W {mean_w[pick]:.2f}; shipped {mean_w['shipped']:.2f}); rule:",
      "SHIP if it passes certification (certify once)" if ship else "not shipped", flush=True)
(HERE / "evaluate.json").write_text(json.dumps(
    {"sets": SETS, "seeds": SEEDS, "n_maps": N_MAPS, "results": results, "mean_W": mean_w,
     "pick": pick, "ship": bool(ship)}, indent=1))
