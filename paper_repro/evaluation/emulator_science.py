"""``paper-repro emulator-science``: responses and parameter recovery of a conditional emulator on a
cosmology grid, with its tables and figures.

Inputs: a cosmology grid (:mod:`paper_repro.maps.cosmo_grid`) and an emulator
(:mod:`.emulators`: a conditional run, or the simulator standing in for one). The simulator side
uses every training node's validation and auxiliary maps (two independent sets, 20 parents of the
``cosmo-grid`` preset) and each held-out node's validation maps as the observation. The emulator
makes ``n_maps`` maps at every node's parameters from one seed (common random numbers). Peak bins
share one kappa unit: the rms of the centre node's smoothed validation maps.

The recovery has a second simulator model beside the first, ``training maps``: the simulator known
only through the grid's training maps (8 parents a node in ``cosmo-grid``), the maps a conditional
run learns from and its output calibration matches. It is the yardstick of sample size: an emulator
that reproduced its training maps exactly would recover what it recovers, so an emulator's bias is
read against that model's as well as against the truth. It is left out (and the report says why)
where a node has too few training maps for the data vector's covariance.

Writes to ``out`` (each file atomically): ``responses.json`` / ``.md`` (:mod:`.responses`),
``recovery.json`` / ``.md`` (:mod:`.inference`), ``summary.json`` (settings, timings, the P(ell)
ratios per node) and the figures ``sigma8_row.png``, ``power_ratio.png``, ``posteriors.png``
(:mod:`.figures_cosmology`), each with a ``.txt`` caption.
"""
from __future__ import annotations

import json
import math
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from ..errors import PaperReproError
from ..maps.io import atomic_path, shown_path
from ..stats.reports import jsonable
from ..stats.twosample import clustered_se
from . import figures_cosmology, inference, responses
from .emulators import peak_sigma, science_statistics

#: the statistics that make the data vector of the likelihood
DATA_VECTOR = ("power", "peaks")
#: the simulator's sets at a training node (independent simulations, parents kept apart)
SIM_SPLITS = ("validation", "auxiliary")


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def simulator_node(grid, name: str, splits, angle: float, sigma: float) -> dict:
    """Statistics of one node's simulated maps (``splits`` pooled) and their parent ids (kept
    distinct across splits)."""
    ds = grid.node(name)
    stats, groups = [], []
    for j, split in enumerate(splits):
        maps = np.asarray(ds[split])
        stats.append(science_statistics(maps, angle, sigma))
        groups.append(ds.index(split)[:, 0].astype(np.int64) + 100_000 * j)
    pooled = {k: (stats[0][k][0], np.concatenate([s[k][1] for s in stats])) for k in stats[0]}
    return {"stats": pooled, "groups": np.concatenate(groups)}


def data_vector(stats: dict) -> tuple[list[str], np.ndarray]:
    """(labels, (N, K)) of the likelihood's data vector: P(ell) bands then peak counts."""
    labels = [f"{s}:{label}" for s in DATA_VECTOR for label in stats[s][0]]
    return labels, np.concatenate([stats[s][1] for s in DATA_VECTOR], axis=1)


def _varying(*arrays) -> np.ndarray:
    return np.logical_and.reduce([np.ptp(a, axis=0) > 0 for a in arrays])


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(jsonable(obj), indent=2) + "\n")


def _write_figure(out: Path, stem: str, fig, dpi: int = 110) -> None:
    with atomic_path(out / f"{stem}.png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=None)
    _write_text(out / f"{stem}.txt", fig.caption + "\n\n" + json.dumps(jsonable(fig.numbers), indent=2) + "\n")


def collect(grid_dir, emulator, *, n_maps: int = 2000, seed: int = 36036, centre=None,
            progress: bool = True) -> dict:
    """The statistics of both sides at every node (the slow part): the grid, its training and held-out
    nodes, the centre node, the peak unit ``sigma``, and per node name {"stats", "groups"} for
    ``sim`` (the grid's maps), ``emu`` (``n_maps`` maps from ``seed`` at the node's parameters) and,
    training nodes only, ``training_maps`` (the grid's training maps of the node)."""
    from ..maps.cosmo_grid import load_cosmo_grid

    t0 = time.perf_counter()
    if not (isinstance(n_maps, int) and n_maps >= 3):
        raise PaperReproError(f"maps per parameter point must be an integer >= 3, got {n_maps!r}")
    grid = load_cosmo_grid(grid_dir)
    angle = grid.angle_deg
    if not math.isclose(emulator.angle_deg, angle, rel_tol=1e-6):
        raise PaperReproError(f"the emulator makes maps {emulator.angle_deg:g} deg on a side, the grid's are "
                              f"{angle:g} deg")
    train = [n for n in grid.nodes if n["role"] == "train"]
    held = [n for n in grid.nodes if n["role"] == "held_out"]
    if not held:
        raise PaperReproError(f"{grid_dir}: the grid has no held-out nodes to recover")
    c = responses.neighbours(train, centre)["centre"]
    sigma = peak_sigma(grid.node(c["name"])["validation"], angle)
    _say(progress, f"peak bins in units of sigma = {sigma:.4g} (rms of {c['name']}'s smoothed validation maps)")
    sim, emu, learned = {}, {}, {}
    for i, node in enumerate(train + held, 1):
        t = time.perf_counter()
        splits = SIM_SPLITS if node["role"] == "train" else ("validation",)
        sim[node["name"]] = simulator_node(grid, node["name"], splits, angle, sigma)
        if node["role"] == "train":
            maps, parents = grid.training_node(node["name"])
            learned[node["name"]] = {"stats": science_statistics(np.asarray(maps), angle, sigma), "groups": parents}
        maps, groups = emulator.maps((node["Omega_m"], node["sigma_8"]), n_maps, seed)
        emu[node["name"]] = {"stats": science_statistics(maps, angle, sigma), "groups": groups}
        _say(progress, f"[{i}/{len(train) + len(held)}] {node['name']} ({node['Omega_m']:g}, {node['sigma_8']:g}): "
                       f"{len(sim[node['name']]['groups'])} simulated, {len(maps)} emulated maps "
                       f"({time.perf_counter() - t:.1f} s)")
    return {"grid": grid, "train": train, "held": held, "centre": c, "sigma": sigma, "angle": angle, "sim": sim,
            "emu": emu, "training_maps": learned, "n_maps": n_maps, "seed": seed, "seconds": time.perf_counter() - t0}


#: the per-map statistics of :func:`collect`, kept for analyses without generating again
STATISTICS_FILE = "statistics.npz"
_SOURCES = ("sim", "emu", "training_maps")


def save_statistics(data: dict, path, emulator_name: str) -> Path:
    """Write :func:`collect`'s per-map statistics, parent ids and settings to ``path`` (.npz, atomically)."""
    arrays, labels = {}, {}
    for source in _SOURCES:
        for name, entry in data.get(source, {}).items():
            for stat, (lab, values) in entry["stats"].items():
                arrays[f"{source}/{name}/{stat}"] = np.asarray(values)
                labels[stat] = list(lab)
            if entry["groups"] is not None:
                arrays[f"{source}/{name}/groups"] = np.asarray(entry["groups"], dtype=np.int64)
    meta = {"format": 1, "emulator": emulator_name, "n_maps": data["n_maps"], "seed": data["seed"],
            "sigma": data["sigma"], "angle": data["angle"], "centre": data["centre"]["name"],
            "nodes": sorted(n["name"] for n in data["train"] + data["held"]), "labels": labels,
            "seconds": data["seconds"]}
    arrays["meta"] = np.array(json.dumps(meta))
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_statistics(path, grid_dir, emulator) -> dict:
    """:func:`collect`'s result from a file of :func:`save_statistics`, for ``emulator`` on the grid at
    ``grid_dir``; statistics of another emulator or of other nodes are a one-line error."""
    from ..maps.cosmo_grid import load_cosmo_grid

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not all(len(k.split("/")) == 3 and k.split("/")[0] in _SOURCES for k in arrays):
            raise ValueError("unknown entries")
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise PaperReproError(f"{path}: not a statistics file of emulator-science ({exc})") from None
    grid = load_cosmo_grid(grid_dir)
    train = [n for n in grid.nodes if n["role"] == "train"]
    held = [n for n in grid.nodes if n["role"] == "held_out"]
    if meta.get("format") != 1 or meta.get("nodes") != sorted(n["name"] for n in train + held):
        raise PaperReproError(f"{path}: statistics of other nodes than the grid {grid_dir}'s")
    if meta["emulator"] != emulator.name:
        raise PaperReproError(f"{path}: statistics of {meta['emulator']}, not of {emulator.name}")
    data = {"grid": grid, "train": train, "held": held, "centre": next(n for n in grid.nodes if n["name"] == meta["centre"]), "sigma": meta["sigma"],
            "angle": meta["angle"], "n_maps": meta["n_maps"], "seed": meta["seed"], "seconds": meta["seconds"],
            "statistics_file": shown_path(path)}
    for source in _SOURCES:
        data[source] = {}
    for key, values in arrays.items():
        source, name, stat = key.split("/")
        entry = data[source].setdefault(name, {"stats": {}, "groups": None})
        if stat == "groups":
            entry["groups"] = values
        else:
            entry["stats"][stat] = (meta["labels"][stat], values)
    return data


def run_science(grid_dir, emulator, out, *, n_maps: int = 2000, seed: int = 36036, centre=None,
                degree: int = 3, margin: float = 0.25, progress: bool = True, statistics=None,
                keep_statistics: bool = False) -> dict:
    """Responses, recovery, tables and figures of ``emulator`` on the grid at ``grid_dir`` into ``out``;
    returns {"responses", "recovery", "summary"} (the reports written). ``statistics``: a file of
    :func:`save_statistics` to analyse instead of generating (its number of maps and seed then hold);
    ``keep_statistics``: write the collected statistics to ``out / STATISTICS_FILE``."""
    from ..maps.cosmo_grid import load_cosmo_grid

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a folder")
    inference.check_degree(degree, len(load_cosmo_grid(grid_dir).node_names("train")))     # before the slow part
    if statistics is not None:
        data = load_statistics(statistics, grid_dir, emulator)
        _say(progress, f"statistics of {data['n_maps']} emulated maps a node (seed {data['seed']}) from {statistics}")
    else:
        data = collect(grid_dir, emulator, n_maps=n_maps, seed=seed, centre=centre, progress=progress)
        if keep_statistics:
            save_statistics(data, out / STATISTICS_FILE, emulator.name)
    return analyse(data, emulator, out, degree=degree, margin=margin, progress=progress)


def analyse(data: dict, emulator, out, *, degree: int = 3, margin: float = 0.25, progress: bool = True) -> dict:
    """Responses, recovery, tables and figures from :func:`collect`'s statistics, written to ``out``."""
    t0 = time.perf_counter()
    out = Path(out)
    grid, train, held, c, sim, emu = (data[k] for k in ("grid", "train", "held", "centre", "sim", "emu"))
    angle, sigma, seed = data["angle"], data["sigma"], data["seed"]
    resp = responses.responses({k: v["stats"] for k, v in sim.items()}, {k: v["stats"] for k, v in emu.items()},
                               train, (c["Omega_m"], c["sigma_8"]),
                               sim_groups={k: v["groups"] for k, v in sim.items()},
                               emu_groups=emu[c["name"]]["groups"])
    resp["emulator"] = emulator.name

    # --- recovery
    labels, _ = data_vector(sim[train[0]["name"]]["stats"])
    vec = {src: {k: data_vector(v["stats"])[1] for k, v in d.items()} for src, d in (("simulator", sim), ("emulator", emu))}
    keep = _varying(*vec["simulator"].values(), *(vec["emulator"][n["name"]] for n in train))
    box = (grid.manifest["hull"]["low"], grid.manifest["hull"]["high"])
    params = [(n["Omega_m"], n["sigma_8"]) for n in train]
    sim_summ = [inference.summarise(vec["simulator"][n["name"]][:, keep], sim[n["name"]]["groups"]) for n in train]
    sim_model = inference.DataModel(params, sim_summ, box, degree=degree, name="simulator")
    deff = sim_model.deff            # the survey's design effect: its sets are cut like the training nodes'
    parents = emu[train[0]["name"]]["groups"] is not None       # emulated maps cut like the grid's (stand-in)
    models = {"simulator": sim_model}
    described = {"simulator": f"the {' and '.join(SIM_SPLITS)} maps of each training node (none of them trained on)",
                 "training maps": "the simulator known only through the grid's training maps (what the emulator "
                                  "learned from): the bias an emulator that reproduced them exactly would have"}
    learned = data.get("training_maps") or {}
    n_learned = min((len(learned[n["name"]]["groups"]) for n in train), default=0) if len(learned) == len(train) else 0
    if n_learned >= int(keep.sum()) + 3:
        models["training maps"] = inference.DataModel(
            params, [inference.summarise(data_vector(learned[n["name"]]["stats"])[1][:, keep], learned[n["name"]]["groups"])
                     for n in train], box, degree=degree, name="training maps")
    else:
        described["training maps"] = (f"not built: {n_learned} training maps at some node, fewer than the "
                                      f"{int(keep.sum()) + 3} the data vector's covariance needs")
    models["emulator"] = inference.DataModel(params, [inference.summarise(vec["emulator"][n["name"]][:, keep],
                                                                          emu[n["name"]]["groups"]) for n in train],
                                             box, degree=degree, paired=True, name=emulator.name,
                                             design_effect=deff if parents else None)
    described["emulator"] = f"{emulator.name}: {data['n_maps']} maps a node from seed {seed}"
    rec = {"data_vector": [lab for lab, k in zip(labels, keep) if k], "margin": margin, "degree": degree,
           "design_effect": deff.tolist(), "emulator": emulator.name, "models": described, "nodes": [],
           "fit": {k: m.fit_quality() for k, m in models.items()}}
    contour_nodes = []
    for node in held:
        obs = vec["simulator"][node["name"]][:, keep]
        truth = (node["Omega_m"], node["sigma_8"])
        posts, survey, skipped = {}, {}, {}
        for k, m in models.items():
            try:
                posts[k] = inference.posterior(obs.mean(axis=0), len(obs), deff, m, margin=margin)
                survey[k] = inference.posterior(obs.mean(axis=0), len(obs), deff, m, margin=margin, model_noise=False)
            except PaperReproError as exc:      # the yardstick's small sets may not vary somewhere; the others must
                if k != "training maps":
                    raise
                skipped[k] = str(exc)
        results = {k: inference.recovery(p, truth, survey[k]) for k, p in posts.items()}
        rec["nodes"].append({"name": node["name"], "truth": dict(zip(inference.PARAMETERS, truth)), "n_maps": len(obs),
                             "models": results, "width_ratio": inference.compare_models(results),
                             **({"not_computed": skipped} if skipped else {})})
        contour_nodes.append({"name": node["name"], "truth": truth,      # the figure: simulator against emulator
                              "posteriors": {k: v for k, v in posts.items() if k != "training maps"}})
        _say(progress, f"{node['name']}: " + "; ".join(
            f"{k} ({r['Omega_m']['mean']:.4f} +/- {r['Omega_m']['sd']:.4f}, {r['sigma_8']['mean']:.4f} +/- "
            f"{r['sigma_8']['sd']:.4f})" for k, r in results.items()))

    # --- P(ell) ratios per node, figures
    ratio_nodes = []
    for node in train + held:
        s, e = sim[node["name"]], emu[node["name"]]
        ps, pe = s["stats"]["power"][1], e["stats"]["power"][1]
        ms = ps.mean(axis=0)
        ratio_nodes.append({"name": node["name"], "role": node["role"], "Omega_m": node["Omega_m"],
                            "sigma_8": node["sigma_8"], "ratio": (pe.mean(axis=0) / ms).tolist(),
                            "ratio_se": (clustered_se(ps, s["groups"]) / ms).tolist()})
    ell = [float(lab.split("~")[1].rstrip(")")) for lab in sim[train[0]["name"]]["stats"]["power"][0]]
    row_s8 = sorted({n["sigma_8"] for n in train})
    row = [emulator.maps((c["Omega_m"], s8), 2, seed)[0][0] for s8 in row_s8]
    figures = {"sigma8_row": figures_cosmology.sigma8_row(row, row_s8, c["Omega_m"], angle, emulator.name),
               "power_ratio": figures_cosmology.power_ratio(ell, ratio_nodes),
               "posteriors": figures_cosmology.posterior_contours(contour_nodes)}
    summary = {"grid": str(grid.path), "emulator": emulator.name, "maps_per_point": data["n_maps"], "seed": seed,
               "peak_sigma": sigma, "centre": resp["centre"], "power_ell": ell, "power_ratio": ratio_nodes,
               "seconds": {"statistics": data["seconds"], "total": None},
               "statistics_file": data.get("statistics_file")}      # None: collected by this run
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "responses.json", resp)
    _write_text(out / "responses.md", responses.markdown(resp))
    _write_json(out / "recovery.json", rec)
    _write_text(out / "recovery.md", inference.markdown(rec))
    for stem, fig in figures.items():
        _write_figure(out, stem, fig)
    summary["seconds"]["total"] = data["seconds"] + time.perf_counter() - t0
    _write_json(out / "summary.json", summary)
    return {"responses": resp, "recovery": rec, "summary": summary}


def headline(result: dict) -> str:
    """A few lines for the terminal: response amplitudes and recovery per held-out node."""
    lines = []
    for stat, entry in result["responses"]["statistics"].items():
        parts = [f"{p} {entry[p]['amplitude']:.3f} +/- {entry[p]['amplitude_se']:.3f}" for p in responses.PARAMETERS]
        lines.append(f"response amplitude emulator / simulator, {stat}: " + ", ".join(parts))
    for node in result["recovery"]["nodes"]:
        parts = []
        for model, r in node["models"].items():
            parts.append(f"{model} bias {r['Omega_m']['bias_sd']:+.2f}, {r['sigma_8']['bias_sd']:+.2f} sd")
        for model, w in node["width_ratio"].items():
            parts.append(f"{model} width ratio {w['Omega_m']:.2f}, {w['sigma_8']:.2f}")
        lines.append(f"{node['name']}: " + "; ".join(parts))
    lines.append(f"wrote responses, recovery, summary and 3 figures in {result['summary']['seconds']['total']:.0f} s")
    return "\n".join(lines)


__all__ = ["DATA_VECTOR", "SIM_SPLITS", "STATISTICS_FILE", "simulator_node", "data_vector", "collect", "save_statistics",
           "load_statistics", "analyse", "run_science", "headline"]
