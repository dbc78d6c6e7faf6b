"""Certification across cosmology: a conditional generator certified node by node over a cosmology grid.

At a node of a grid (:mod:`paper_repro.maps.cosmo_grid`) the maps under test, generated at the
node's (Omega_m, sigma_8) or given, are certified by :func:`~.certification.certify` against that
node's validation set, with that node's auxiliary set as the baseline (both from the node's own
seeds), and, at a training node, memorisation against that node's training maps. Every criterion,
tolerance and clustering by parent map is the single-cosmology certification's.

:func:`certify_at` is ``paper-repro validate`` at a node; :func:`certify_grid` is
``paper-repro certify-grid``: every training and held-out node, each node's report written
atomically as it finishes (a rerun skips finished nodes), then one table (``grid_certification.json``
and ``.md``: pass/fail and the worst |z| or tightest test per criterion per node, passing nodes per
criterion for training and held-out nodes) and one figure (``grid_certification.png``, the
(Omega_m, sigma_8) plane). Maps may come from a run or per node from a folder (``<node>.npy``, with
``<node>_index.npy`` parent ids when known), so any emulator's maps, or simulations standing in for
one (:func:`simulate_stand_in`), can be certified the same way.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import CertificationConfig, ConditionalPreset, get_cosmo_grid_preset
from ..errors import PaperReproError
from ..maps.cosmo_grid import CosmoGrid, grid_nodes, load_cosmo_grid
from ..maps.datasets import progress_bar, simulated_crops
from ..maps.io import atomic_path, open_maps, sha256_file, shown_path
from ..maps.simulation import get_simulator
from ..stats.reports import jsonable
from .certification import CRITERIA, Report, certify, prepare

#: latent seed of the generated maps at every node (the same latents at each node)
GRID_SEED = 20190101
#: parameters closer than this to a node's (absolute, in Omega_m and sigma_8) are that node's
NODE_TOLERANCE = 1e-6
#: criteria passing when the value is at least the limit (p-values); the others pass at most the limit
LOWER_BOUNDS = ("ks_holm_min_p", "ad_holm_min_p", "memorisation")
TABLE, MARKDOWN, FIGURE, SETTINGS = ("grid_certification.json", "grid_certification.md",
                                     "grid_certification.png", "settings.json")
ROLES = {"train": "training", "held_out": "held-out"}


# ------------------------------------------------------------------------------- one node
def find_node(grid: CosmoGrid, name: str | None = None, params: Sequence[float] | None = None) -> dict | None:
    """The node entry named ``name`` (an unknown name is a one-line error), else the node at
    ``params`` (Omega_m, sigma_8) within :data:`NODE_TOLERANCE`, else None."""
    nodes = grid.nodes
    if name is not None:
        found = [n for n in nodes if n["name"] == name]
        if not found:
            raise PaperReproError(f"{shown_path(grid.path)}: no node {name!r}; the grid has "
                                  f"{', '.join(grid.node_names())}")
        node = found[0]
        if params is not None and not _at(node, params):
            raise PaperReproError(f"node {name} is at Omega_m = {node['Omega_m']:g}, sigma_8 = {node['sigma_8']:g}, "
                                  f"not at the parameters given ({params[0]:g}, {params[1]:g})")
        return node
    if params is None:
        return None
    return next((n for n in nodes if _at(n, params)), None)


def _at(node: dict, params: Sequence[float]) -> bool:
    return (abs(node["Omega_m"] - params[0]) <= NODE_TOLERANCE
            and abs(node["sigma_8"] - params[1]) <= NODE_TOLERANCE)


def check_geometry(grid: CosmoGrid, preset) -> None:
    """The run's maps must have the grid's size and angle (one-line error otherwise)."""
    size = int(grid.manifest["crop_size"])
    if size != preset.model.image_size or not math.isclose(grid.angle_deg, preset.angle_deg, rel_tol=1e-3):
        raise PaperReproError(f"{shown_path(grid.path)} holds {size}^2 maps of {grid.angle_deg:.4g} deg, the run "
                              f"makes {preset.model.image_size}^2 maps of {preset.angle_deg:.4g} deg "
                              f"(preset {preset.name!r})")


def conditional_run(run: str | os.PathLike, checkpoint=None) -> tuple[Any, dict]:
    """(preset, architecture entry) of a conditional run, its generator checked against its preset;
    an unconditional run is a one-line error."""
    from ..gan.runs import read_run_info  # keras
    from .architecture import check_run

    preset = read_run_info(run).preset
    if not isinstance(preset, ConditionalPreset):
        raise PaperReproError(f"{shown_path(run)} is an unconditional run (preset {preset.name!r}): it makes maps "
                              "at one cosmology, so it takes no node, grid or parameters")
    return preset, check_run(run, checkpoint)


def is_conditional_run(run) -> bool:
    """Whether ``run`` (a run directory, or None) is a conditional run."""
    from ..gan.runs import read_run_info  # keras

    return run is not None and isinstance(read_run_info(run).preset, ConditionalPreset)


def where(report: Report) -> str:
    """One line: the parameters and node a report of :func:`certify_at` certified at."""
    node, at = report.inputs.get("node"), report.inputs["parameters"]
    return (f"at Omega_m = {at['Omega_m']:g}, sigma_8 = {at['sigma_8']:g}"
            + (f": node {node['name']} ({node['role']}) of {node['grid']}" if node else ": against the maps given"))


def generate_at(run: str | os.PathLike, params: Sequence[float], n: int, seed: int = GRID_SEED,
                checkpoint=None) -> np.ndarray:
    """n maps (N, H, W) of a conditional run at ``params`` (Omega_m, sigma_8), latent seed ``seed``."""
    from ..gan.runs import generate_maps  # keras

    return generate_maps(run, n, seed, checkpoint=checkpoint, params=tuple(float(p) for p in params))


def certify_node(grid: CosmoGrid, node: dict, generated, *, generated_parents: np.ndarray | None = None,
                 config: CertificationConfig | None = None, memorisation: bool = True,
                 progress: bool = False) -> Report:
    """Certify ``generated`` (maps or a .npy path) at ``node``: against its validation set, its
    auxiliary set as the baseline, memorisation against its training maps (training nodes). The
    report's ``inputs.node`` records the node."""
    directory = grid.path / node["directory"]
    training, training_parents = (grid.training_node(node["name"]) if memorisation and node["role"] == "train"
                                  else (None, None))
    parents = {"training": training_parents}
    if generated_parents is not None:
        parents["generated"] = generated_parents
    inputs = prepare(generated, directory / "validation.npy", directory / "auxiliary.npy", training,
                     angle_deg=grid.angle_deg, config=config, parents=parents,
                     sources={"training": f"{shown_path(grid.path)}/train.npy rows {node.get('train_rows')}"}
                     if training is not None else None)
    report = certify(inputs, config, memorisation=memorisation, progress=progress)
    report.inputs["node"] = node_record(grid, node)
    return report


def node_record(grid: CosmoGrid, node: dict) -> dict:
    return {"grid": shown_path(grid.path), "name": node["name"], "role": node["role"],
            "Omega_m": node["Omega_m"], "sigma_8": node["sigma_8"]}


def certify_at(*, grid=None, node: str | None = None, params: Sequence[float] | None = None, run=None,
               generated=None, reference=None, auxiliary=None, training=None, n: int | None = None,
               seed: int = GRID_SEED, checkpoint=None, angle_deg: float | None = None,
               config: CertificationConfig | None = None, progress: bool = True) -> Report:
    """``paper-repro validate`` at a node: the maps of a conditional ``run`` generated at the node's
    parameters (or ``generated``) certified at a node of ``grid`` (``node`` by name or ``params`` at
    a node), or, with ``reference`` (and ``auxiliary``, ``training``) maps given, at any ``params``."""
    if params is not None and (len(params) != 2 or None in params):
        raise PaperReproError("give both --omega-m and --sigma-8, or neither")
    if generated is not None and run is not None:
        raise PaperReproError("give generated maps or a run to generate them from, not both")
    if run is None and generated is None:
        raise PaperReproError("certification at a node needs a conditional run (--run) or its maps (--generated)")
    arch = None
    if run is not None:
        preset, arch = conditional_run(run, checkpoint)
        if grid is None and node is None and params is None:
            raise PaperReproError(f"{shown_path(run)} is a conditional run: certify it at a node (--grid GRID with "
                                  "--node NAME or --omega-m X --sigma-8 Y)")
    if node is not None and grid is None:
        raise PaperReproError("--node names a node of a grid: give --grid GRID too")
    g = load_cosmo_grid(grid) if grid is not None else None
    entry = find_node(g, node, params) if g is not None else None
    if reference is None:
        if g is None:
            raise PaperReproError("give --grid GRID (with --node or the parameters of a node), or "
                                  "--reference maps to certify against")
        if entry is None:
            if params is None:
                raise PaperReproError("give --node NAME or the parameters of a node (--omega-m, --sigma-8)")
            raise PaperReproError(f"(Omega_m, sigma_8) = ({params[0]:g}, {params[1]:g}) is not a node of "
                                  f"{shown_path(g.path)} (nodes: {_node_list(g)}); give a node's parameters, or "
                                  "--reference and --auxiliary maps made at these parameters")
    elif auxiliary is None:
        raise PaperReproError("certifying at parameters against given maps needs --auxiliary maps from the "
                              "same parameters as --reference (the baseline)")
    if run is not None and entry is None and params is None:
        raise PaperReproError(f"{shown_path(run)} is conditional: give the parameters (--omega-m, --sigma-8) "
                              "or --grid and --node")
    if run is not None and g is not None:
        check_geometry(g, preset)
    at = (entry["Omega_m"], entry["sigma_8"]) if entry is not None else params
    if run is not None:
        count = n or len(open_maps(reference if entry is None else g.path / entry["directory"] / "validation.npy",
                                   check_finite=False))
        if progress:
            print(f"generating {count:,} maps at Omega_m = {at[0]:g}, sigma_8 = {at[1]:g} (latent seed {seed})",
                  flush=True)
        generated = generate_at(run, at, count, seed, checkpoint)
    if entry is not None and reference is None:
        report = certify_node(g, entry, generated, config=config, progress=progress)
    else:
        inputs = prepare(generated, reference, auxiliary, training, angle_deg=angle_deg, config=config)
        report = certify(inputs, config, progress=progress)
        if entry is not None:
            report.inputs["node"] = node_record(g, entry)
    report.inputs["parameters"] = {"Omega_m": float(at[0]), "sigma_8": float(at[1])} if at is not None else None
    report.architecture = arch
    return report


def _node_list(grid: CosmoGrid) -> str:
    return ", ".join(f"{n['name']} ({n['Omega_m']:g}, {n['sigma_8']:g})" for n in grid.nodes)


# ------------------------------------------------------------------------------- the summary
def margin(c: dict) -> float:
    """How much of its limit a test uses (> 1: failed): value / limit, or limit / value for the
    tests that pass above their limit (p-values); 0 where there is nothing to compare, inf for a
    failed test without a finite value (a NaN or infinite z)."""
    v, lim = c.get("value"), c.get("limit")
    if v is None or lim is None:
        return 0.0 if c.get("passed", True) else math.inf
    if c["name"] in LOWER_BOUNDS:
        return math.inf if v <= 0 else lim / v
    return math.inf if lim <= 0 and v > 0 else (v / lim if lim > 0 else 0.0)


def node_row(report: dict) -> dict:
    """One node's row of the table from its report (as written to JSON): per criterion pass/fail,
    the worst |z| of a component mean (where the criterion has one) and its tightest test."""
    row = {**report["inputs"]["node"], "passed": report["passed"], "seconds": report.get("seconds"),
           "n_generated": report["inputs"]["n_generated"], "criteria": {}}
    for name, c in report["criteria"].items():
        tests = c["criteria"]
        worst = max(tests, key=margin)
        z = next((t["value"] for t in tests if t["name"] == "mean_within_k_se"), None)
        row["criteria"][name] = {"passed": c["passed"], "worst_abs_z": z,
                                 "failed": [t["name"] for t in tests if not t["passed"]],
                                 "tightest": {"test": worst["name"], "value": worst["value"],
                                              "limit": worst["limit"], "margin": margin(worst)}}
    return row


def summarise(rows: list[dict], grid: CosmoGrid) -> dict:
    """The table: every node's row (None where not certified yet) and, per criterion and role, the
    passing nodes of those certified."""
    by_name = {r["name"]: r for r in rows}
    counts = {}
    for crit in CRITERIA + ("all",):
        counts[crit] = {}
        for role, label in ROLES.items():
            done = [r for r in rows if r["role"] == role and (crit == "all" or crit in r["criteria"])]
            ok = [r for r in done if (r["passed"] if crit == "all" else r["criteria"][crit]["passed"])]
            counts[crit][label] = {"passing": len(ok), "certified": len(done),
                                   "nodes": len(grid.node_names(role))}
    nodes = [{"name": n["name"], "role": n["role"], "Omega_m": n["Omega_m"], "sigma_8": n["sigma_8"],
              "result": by_name.get(n["name"])} for n in grid.nodes]
    return {"grid": shown_path(grid.path), "nodes": nodes, "counts": counts,
            "certified": len(rows), "total": len(nodes)}


def _cell(c: dict | None) -> str:
    if c is None:
        return "-"
    t = c["tightest"]
    num = (f"z {c['worst_abs_z']:.2f}" if c["worst_abs_z"] is not None
           else f"{t['test'].split(':')[-1]} {t['margin']:.2f}x")
    return ("pass " if c["passed"] else "**FAIL** ") + num


def markdown(table: dict) -> str:
    """The table as Markdown: one row per node, then the passing nodes per criterion and role."""
    head = ["node", "role", "Omega_m", "sigma_8", "verdict", *CRITERIA]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in table["nodes"]:
        r = n["result"]
        verdict = "not certified" if r is None else ("PASS" if r["passed"] else "**FAIL**")
        cells = [_cell(None if r is None else r["criteria"].get(c)) for c in CRITERIA]
        lines.append(f"| {n['name']} | {ROLES[n['role']]} | {n['Omega_m']:g} | {n['sigma_8']:g} | {verdict} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Cells: the worst |z| of a component mean (limit 4) where the criterion has one, else its "
              "tightest test as a multiple of its limit (above 1 fails; for p-values limit / p).", "",
              "| criterion | training nodes passing | held-out nodes passing |", "|---|---|---|"]
    for crit, c in table["counts"].items():
        lines.append(f"| {crit} | " + " | ".join(
            f"{c[k]['passing']} of {c[k]['certified']}" + (f" ({c[k]['nodes']} in the grid)"
                                                         if c[k]["certified"] != c[k]["nodes"] else "")
            for k in ROLES.values()) + " |")
    return "\n".join(lines) + "\n"


def plane_figure(table: dict, path: str | os.PathLike) -> Path:
    """The (Omega_m, sigma_8) plane, one panel per criterion and one for all: a marker per node,
    green passed, red failed, hollow grey not certified (or not applicable); held-out nodes as stars,
    each labelled with the worst |z| or tightest multiple of its limit."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("agg")
    panels = ("all",) + CRITERIA
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5), sharex=True, sharey=True)
    for ax, crit in zip(axes.ravel(), panels):
        groups: dict[tuple[bool, str], list] = {}        # (held out, colour) -> [(Omega_m, sigma_8)]
        for n in table["nodes"]:
            r = n["result"]
            c = None if r is None else ({"passed": r["passed"]} if crit == "all" else r["criteria"].get(crit))
            colour = "none" if c is None else "tab:green" if c["passed"] else "tab:red"
            groups.setdefault((n["role"] == "held_out", colour), []).append((n["Omega_m"], n["sigma_8"]))
            if c is not None and crit != "all":
                z = c["worst_abs_z"]
                ax.annotate(f"{z:.1f}" if z is not None else f"{c['tightest']['margin']:.2f}x",
                            (n["Omega_m"], n["sigma_8"]), xytext=(5, 5), textcoords="offset points", fontsize=7)
        for (held, colour), xy in groups.items():
            x, y = np.transpose(xy)
            ax.scatter(x, y, marker="*" if held else "o", s=220 if held else 90, zorder=3, facecolors=colour,
                       edgecolors="0.6" if colour == "none" else "k", linewidths=1 if colour == "none" else 0.5)
        counts = table["counts"][crit]
        ax.set_title(f"{crit}\ntraining {counts['training']['passing']}/{counts['training']['certified']}, "
                     f"held-out {counts['held-out']['passing']}/{counts['held-out']['certified']} pass", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("Omega_m")
    for ax in axes[:, 0]:
        ax.set_ylabel("sigma_8")
    fig.suptitle("certification per node: circles training nodes, stars held-out nodes; green pass, red fail, "
                 "hollow not certified; numbers: worst |z| (limit 4) or tightest test / limit", fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.08, top=0.86, wspace=0.08, hspace=0.3)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- every node
def _settings(grid: CosmoGrid, run, generated_from, n, seed, checkpoint, config, memorisation) -> dict:
    s = {"grid": shown_path(grid.path), "grid_created_utc": grid.manifest.get("created_utc"),
         "n": n, "memorisation": memorisation, "config": (config or CertificationConfig()).to_dict()}
    if run is not None:
        from ..gan.runs import generator_path  # keras

        s |= {"run": shown_path(run), "checkpoint": checkpoint, "seed": seed,
              "generator_sha256": sha256_file(generator_path(run, checkpoint))}
    else:
        s["generated_from"] = shown_path(generated_from)
    return jsonable(s)


def _write_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")


def _given_maps(folder: Path, name: str, n: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(maps, parent ids or None) of ``folder/<name>.npy`` (and ``<name>_index.npy``), the first n."""
    maps = open_maps(folder / f"{name}.npy")
    index = folder / f"{name}_index.npy"
    ids = None
    if index.exists():
        raw = np.load(index)
        ids = raw[:, 0] if raw.ndim == 2 else raw
        if ids.shape != (len(maps),) or not np.issubdtype(ids.dtype, np.integer):
            raise PaperReproError(f"{index}: expected {len(maps)} integer parent ids, found {raw.dtype} {raw.shape}")
    if n is not None:
        maps, ids = maps[:n], None if ids is None else ids[:n]
    return maps, ids


def certify_grid(grid, out: str | os.PathLike, *, run=None, generated_from=None, nodes: Sequence[str] | None = None,
                 n: int | None = None, seed: int = GRID_SEED, checkpoint=None,
                 config: CertificationConfig | None = None, memorisation: bool = True,
                 progress: bool = True) -> dict:
    """Certify every node of ``grid`` (or ``nodes``) into ``out`` and write the table and figure.

    Maps: ``run``'s at each node's parameters (``n`` per node, default as many as the node's
    validation maps; latent ``seed``), or ``generated_from/<node>.npy``. Each node's report goes to
    ``out/nodes/<node>.json`` atomically as it finishes; a rerun with the same settings skips nodes
    already there (other settings are a one-line error). The table covers every node certified in
    ``out`` so far. Returns the table.
    """
    if (run is None) == (generated_from is None):
        raise PaperReproError("give a conditional run (--run) or a folder of maps per node (--generated-from), one of them")
    g = load_cosmo_grid(grid)
    names = list(nodes) if nodes else g.node_names()
    entries = [find_node(g, name) for name in names]
    arch = None
    if run is not None:
        preset, arch = conditional_run(run, checkpoint)
        check_geometry(g, preset)
    else:
        generated_from = Path(generated_from)
        missing = [e["name"] for e in entries if not (generated_from / f"{e['name']}.npy").exists()]
        if missing:
            raise PaperReproError(f"{shown_path(generated_from)}: no maps for node(s) {', '.join(missing)} "
                                  "(expected <node>.npy; --nodes certifies a subset)")
    out = Path(out)
    settings = _settings(g, run, generated_from, n, seed, checkpoint, config, memorisation)
    if (out / SETTINGS).exists():
        old = json.loads((out / SETTINGS).read_text())
        if old != settings:
            diff = ", ".join(k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k))
            raise PaperReproError(f"{shown_path(out)} holds results of other settings ({diff} differ); "
                                  "give another --out")
    else:
        _write_json(out / SETTINGS, settings)
    todo = [e for e in entries if not (out / "nodes" / f"{e['name']}.json").exists()]
    if progress:
        print(f"certify-grid: {len(entries)} nodes, {len(entries) - len(todo)} already certified in "
              f"{shown_path(out)}", flush=True)
    for k, e in enumerate(todo, 1):
        t0 = time.perf_counter()
        if run is not None:
            count = n or len(open_maps(g.path / e["directory"] / "validation.npy", check_finite=False))
            maps, ids = generate_at(run, (e["Omega_m"], e["sigma_8"]), count, seed, checkpoint), None
        else:
            maps, ids = _given_maps(generated_from, e["name"], n)
        report = certify_node(g, e, maps, generated_parents=ids, config=config, memorisation=memorisation)
        report.architecture = arch
        report.inputs["sources"]["generated"] = (f"{shown_path(run)} at the node, latent seed {seed}" if run is not None
                                                 else shown_path(generated_from / f"{e['name']}.npy"))
        _write_json(out / "nodes" / f"{e['name']}.json", report.to_dict())
        if progress:
            print(f"[{k}/{len(todo)}] {e['name']} ({ROLES[e['role']]}, Omega_m {e['Omega_m']:g}, sigma_8 "
                  f"{e['sigma_8']:g}): {'PASS' if report.passed else 'FAIL ' + ', '.join(report.failed())} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return write_table(g, out)


def write_table(grid: CosmoGrid, out: str | os.PathLike) -> dict:
    """The table and figure of every node report in ``out/nodes`` (see :func:`certify_grid`)."""
    out = Path(out)
    known = set(grid.node_names())
    rows = [node_row(json.loads(p.read_text())) for p in sorted((out / "nodes").glob("*.json")) if p.stem in known]
    table = summarise(rows, grid)
    _write_json(out / TABLE, table)
    with atomic_path(out / MARKDOWN) as tmp:
        tmp.write_text(markdown(table))
    plane_figure(table, out / FIGURE)
    return table


# ------------------------------------------------------------------------------- stand-ins
def simulate_stand_in(grid_config, out: str | os.PathLike, *, parents: int | None = None, seed: int = 77000,
                      nodes: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Simulate maps standing in for an emulator's at every node of a grid preset (or config) into
    ``out/<node>.npy`` with ``<node>_index.npy`` parent ids: ``parents`` parent maps per node (default
    as many as the node's validation split), cut as the grid cuts its crops, from seeds
    ``seed + 2k`` never used by the grid. Certified by :func:`certify_grid`, they measure how often
    the criteria fail maps that are right (the false-failure rate across nodes)."""
    cfg = get_cosmo_grid_preset(grid_config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [(k, nd) for k, nd in enumerate(grid_nodes(cfg)) if nodes is None or nd.name in nodes]
    counts = {nd.name: parents or nd.config.splits.validation for _, nd in chosen}
    bar = progress_bar(sum(counts.values()), progress, "simulate stand-ins")
    for k, nd in chosen:             # k: the node's place in the whole grid, so a subset's maps are the same
        n_parents = counts[nd.name]
        node_cfg = dataclasses.replace(nd.config, seed=seed + 2 * k, auxiliary_seed=seed + 2 * k + 1)
        sim = get_simulator(node_cfg.simulation)
        crops = []
        for i in range(n_parents):
            crops.append(simulated_crops(sim, node_cfg, "validation", i)[0])
            bar.update(1)
        ids = np.repeat(np.arange(n_parents, dtype=np.int32), cfg.node.crops_per_map)
        for name, array in ((f"{nd.name}.npy", np.concatenate(crops).astype(np.float32)),
                            (f"{nd.name}_index.npy", ids)):
            with atomic_path(out / name) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, array)
    bar.close()
    return out


__all__ = ["find_node", "certify_node", "certify_at", "certify_grid", "write_table", "node_row", "summarise",
           "markdown", "plane_figure", "simulate_stand_in", "generate_at"]
