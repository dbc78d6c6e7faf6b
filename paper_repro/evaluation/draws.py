"""Verdicts over independent draws: one generated set certified against K validation/auxiliary pairs.

A single certification compares the generated maps with one validation set and one auxiliary
(baseline) set; a generator near a limit can pass against one pair and fail against the next.
``paper-repro validate --draws K`` certifies the same generated maps against K independent pairs,
simulated from fresh seeds (:func:`draw_seeds`; the ``reference`` dataset preset's geometry, or the
run's, with ``parents`` parent maps per set, cached under the data root like the reference set) or
given by the user, and reports per criterion the pass count over the draws and the worst test over
the draws (:func:`combine`).

The rule for the verdict over K draws (:data:`RULE`): per test of a criterion, the median of its
values over the draws must be within the most lenient of the draws' limits (each draw's limit
follows its own baseline, an independent simulation set against that draw's validation set); a
criterion passes when all its tests do, the certificate when every criterion does; for K = 1 this
is the single verdict. The draws are correlated through the shared generated set, so a rule that
reads them as K independent trials ("fails if it fails in any draw", or a pass count from a binomial
law) is not calibrated: an independent set that one criterion happens to fail against its first
validation set tends to fail it against the next ones too. Taking the median over the draws removes
the validation sets' share of the noise, and the most lenient limit lets the generated set be as far
out as the furthest of the K independent baseline sets; measured false-failure rates on independent
simulation sets are in ``tests/evaluation/test_draws.py`` and the README.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import COSMO_GRID_PRESETS, DATASET_PRESETS, SplitSizes, get_dataset_preset
from ..errors import PaperReproError
from ..maps.cosmo_grid import grid_nodes
from ..maps.datasets import load_dataset
from ..maps.ingest import is_fits_input
from ..maps.io import open_maps, shown_path
from ..stats.reports import jsonable
from . import certification, reproduction
from .certification import Report
from .html_report import LOWER_BOUND, worst_test

#: the first validation seed of the default draws: draw k (from 0) simulates its validation set from
#: root ``draw_seed + 2k`` and its auxiliary set from ``draw_seed + 2k + 1`` (never a preset's seed)
DEFAULT_DRAW_SEED = 8000
#: roots of simulated sets that are not in config.py's presets: the second selection set the shipped
#: model was picked with (``paper-repro simulate --out data/confirm --preset cpu --seed 9001``)
OTHER_USED_SEEDS = {9001: "the second selection set (simulate --preset cpu --seed 9001)",
                    9002: "the second selection set's auxiliary seed"}
#: where simulated draws are kept, under the data root
DRAWS_FOLDER = "draws"
RULE = ("a criterion passes over K draws when each of its tests does: the median of the test's values over "
        "the draws within the most lenient of the draws' limits (limits follow each draw's baseline); "
        "K = 1: the single verdict; the certificate passes when every criterion does")


def used_seeds() -> dict[int, str]:
    """Every root seed a simulated dataset of the project uses (dataset presets, cosmology-grid nodes,
    the selection set), with what uses it: the draws must never simulate from one of them."""
    out: dict[int, str] = dict(OTHER_USED_SEEDS)
    for name, cfg in DATASET_PRESETS.items():
        out.setdefault(cfg.seed, f"dataset preset {name!r}")
        out.setdefault(cfg.aux_seed, f"dataset preset {name!r} (auxiliary)")
    for name in COSMO_GRID_PRESETS:
        for node in grid_nodes(name):
            out.setdefault(node.config.seed, f"cosmology grid {name!r} {node.name}")
            out.setdefault(node.config.aux_seed, f"cosmology grid {name!r} {node.name} (auxiliary)")
    return out


def draw_seeds(k: int, draw_seed: int = DEFAULT_DRAW_SEED) -> list[tuple[int, int]]:
    """(validation seed, auxiliary seed) of draws 0..k-1: ``draw_seed + 2k`` and ``+ 1``; a one-line
    error when k < 1 or a seed is one a dataset of the project uses (:func:`used_seeds`)."""
    check_draws(k)
    if not (isinstance(draw_seed, int) and draw_seed >= 0):
        raise PaperReproError(f"--draw-seed must be a non-negative integer, got {draw_seed!r}")
    seeds = [(draw_seed + 2 * i, draw_seed + 2 * i + 1) for i in range(k)]
    used = used_seeds()
    clash = sorted(s for pair in seeds for s in pair if s in used)
    if clash:
        raise PaperReproError(f"draw seeds {draw_seed}..{draw_seed + 2 * k - 1} include seed {clash[0]}, used by "
                              f"{used[clash[0]]}; choose another --draw-seed (default {DEFAULT_DRAW_SEED})")
    return seeds


def check_draws(k) -> int:
    """``k`` if it is a valid number of draws (an integer >= 1), else a one-line error."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PaperReproError(f"--draws must be an integer >= 1, got {k!r}")
    return k


def draw_config(preset: str, seeds: tuple[int, int], parents: int | None = None):
    """The dataset config of one draw: ``preset``'s geometry and simulation, ``parents`` parent maps
    (default: the preset's validation count) in a validation and an auxiliary split, ``seeds``."""
    base = get_dataset_preset(preset)
    n = base.splits.validation if parents is None else parents
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PaperReproError(f"--parents must be an integer >= 1, got {n!r}")
    return dataclasses.replace(base, name=f"{base.name}-draw-{seeds[0]}",
                               splits=SplitSizes(train=0, validation=n, development=0, auxiliary=n),
                               seed=seeds[0], auxiliary_seed=seeds[1])


def simulated_pairs(root: str | os.PathLike, k: int, *, draw_seed: int = DEFAULT_DRAW_SEED,
                    parents: int | None = None, preset: str = reproduction.REFERENCE_PRESET,
                    progress: bool = True) -> tuple[list[tuple[Path, Path]], list[tuple[int, int]]]:
    """K draws simulated (once; reused when present) under ``root/draws/``: their (validation,
    auxiliary) files and (validation, auxiliary) seeds. A folder holding another dataset is an error."""
    seeds = draw_seeds(k, draw_seed)
    pairs = []
    for s in seeds:
        cfg = draw_config(preset, s, parents)
        folder = Path(root) / DRAWS_FOLDER / f"{preset}-{cfg.splits.validation}parents-seed{s[0]}"
        reproduction.ensure_dataset(folder, cfg, progress=progress)
        if load_dataset(folder).config != cfg:
            raise PaperReproError(f"{shown_path(folder)}: holds another dataset than draw seeds {s} of "
                                  f"{preset!r} with {cfg.splits.validation} parents; remove it to simulate anew")
        pairs.append((folder / "validation.npy", folder / "auxiliary.npy"))
    return pairs, seeds


def combine(per_draw: Sequence[dict[str, dict[str, Any]]], *, seeds=None, sources=None) -> dict[str, Any]:
    """The verdict over draws (:data:`RULE`) from each draw's ``report.criteria``. Per criterion: the
    draws it passed, per test the median of its values over the draws against the most lenient of the
    draws' limits (and its worst value), the test that decides (furthest past, or nearest, its limit
    over draws) and the worst test of any single draw (:func:`~.html_report.worst_test`)."""
    k = check_draws(len(per_draw))
    names = list(dict.fromkeys(name for crit in per_draw for name in crit))
    criteria = {}
    for name in names:
        present = [(i, crit[name]) for i, crit in enumerate(per_draw, 1) if name in crit]
        by_test: dict[str, list[dict]] = {}
        for i, c in present:
            for t in c.get("criteria", []):
                by_test.setdefault(t["name"], []).append(dict(t, draw=i))
        tests = {t: over_draws(ts) for t, ts in by_test.items()}
        deciding = worst_test({"criteria": [dict(v, name=t, value=v["median"]) for t, v in tests.items()]})
        criteria[name] = {
            "passed": all(v["passed"] for v in tests.values()),
            "passes": sum(bool(c["passed"]) for _, c in present), "draws": len(present),
            "per_draw": [bool(c["passed"]) for _, c in present],
            "deciding": None if deciding is None else deciding["name"],
            "worst": _worst([t for ts in by_test.values() for t in ts]), "tests": tests}
    failed = [n for n, c in criteria.items() if not c["passed"]]
    return jsonable({"k": k, "passed": not failed, "failed": failed, "rule": RULE, "criteria": criteria,
            "per_draw": [{"passed": all(c["passed"] for c in crit.values()),
                          "failed": [n for n, c in crit.items() if not c["passed"]]} for crit in per_draw],
            "seeds": None if seeds is None else [{"validation": int(a), "auxiliary": int(b)} for a, b in seeds],
            "sources": sources})


def over_draws(tests: list[dict]) -> dict[str, Any]:
    """One test over draws (its entries of each draw, with ``draw``): the median of its values against
    the most lenient of the draws' limits (the largest; the smallest for the p-value tests, which pass
    above their limit), passed when within it. A draw without a value counts as nothing tested when it
    passed and as the worst value (NaN or infinite, written as null) when it failed."""
    low = bool(LOWER_BOUND.search(tests[0]["name"]))
    worst = -math.inf if low else math.inf
    values = [t["value"] if t.get("value") is not None else worst for t in tests
              if t.get("value") is not None or not t["passed"]]
    limits = [t["limit"] for t in tests if t.get("limit") is not None]
    median = float(np.median(values)) if values else None
    limit = (min(limits) if low else max(limits)) if limits else None
    passed = median is None or limit is None or (median >= limit if low else median <= limit)
    worst = _worst(tests)
    return {"passed": bool(passed), "median": median, "limit": limit, "passes": sum(bool(t["passed"]) for t in tests),
            "worst_value": worst["value"], "worst_draw": worst["draw"]}


def _worst(tests: list[dict]) -> dict[str, Any]:
    w = worst_test({"criteria": tests}) or {}
    return {"test": w.get("name"), "value": w.get("value"), "limit": w.get("limit"),
            "baseline": w.get("baseline"), "draw": w.get("draw"), "passed": w.get("passed")}


def certify_each(generated, pairs: Sequence[tuple], *, training=None, angle_deg: float | None = None,
                 parents: Sequence[dict] | None = None, config=None, memorisation: bool = True,
                 seeds=None, progress: bool = False) -> list[Report]:
    """The report of ``generated`` against each (validation, auxiliary) pair (arrays or .npy paths).
    ``parents``: per draw the ids given to :func:`~.certification.prepare`; ``seeds``: said in progress."""
    k = check_draws(len(pairs))
    reports = []
    for i, (val, aux) in enumerate(pairs):
        if progress:
            said = "" if seeds is None else f" (validation seed {seeds[i][0]}, auxiliary seed {seeds[i][1]})"
            print(f"draw {i + 1} of {k}{said} ...", flush=True)
        inputs = certification.prepare(generated, val, aux, training, angle_deg=angle_deg, config=config,
                                       parents=None if parents is None else parents[i])
        reports.append(certification.certify(inputs, config, memorisation=memorisation, progress=progress))
        if progress:
            failed = reports[-1].failed()
            print(f"draw {i + 1} of {k}: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}", flush=True)
    return reports


def certify_draws(generated, pairs: Sequence[tuple], *, seeds=None, **kw) -> Report:
    """:func:`certify_each`, then the first draw's report with the verdict over draws in
    ``report.draws`` (which then sets ``report.passed``); ``seconds`` is the time of every draw."""
    reports = certify_each(generated, pairs, seeds=seeds, **kw)
    first = reports[0]
    first.draws = combine([r.criteria for r in reports], seeds=seeds,
                          sources=[{"validation": _source(v), "auxiliary": _source(a)} for v, a in pairs])
    first.seconds = sum(r.seconds for r in reports)
    return first


def _source(x) -> str:
    return shown_path(x) if isinstance(x, (str, os.PathLike)) else "array"


def geometry_preset(generated=None, run=None) -> str:
    """The dataset preset whose geometry the simulated draws take: the run's (default the shipped
    model's, :func:`~.reproduction.dataset_preset_for`), or for generated maps given as a file the
    first preset, ``reference`` first, whose crops have their size (FITS maps: ``reference``)."""
    if generated is None:
        from ..gan.runs import read_run_info  # keras

        where = reproduction.REFERENCE_MODEL if run is None else Path(run)
        if (where / "config.json").exists():
            return reproduction.dataset_preset_for(read_run_info(where).preset)
        return reproduction.REFERENCE_PRESET
    if is_fits_input(generated):
        return reproduction.REFERENCE_PRESET
    size = open_maps(generated, check_finite=False).shape[1]
    for name, cfg in sorted(DATASET_PRESETS.items(), key=lambda kv: kv[0] != reproduction.REFERENCE_PRESET):
        if cfg.crop_size == size:
            return name
    raise PaperReproError(f"{shown_path(generated)}: no dataset preset makes {size}^2 maps to simulate draws "
                          "from; give the pairs with --reference/--auxiliary")


def check_request(*, draws: int | None, references: Sequence = (), auxiliaries: Sequence = (),
                  draw_seed: int | None = None, parents: int | None = None) -> tuple[list, list]:
    """The (references, auxiliaries) of a request over draws, checked before anything runs (one-line
    errors): K >= 1; pairs of .npy files, as many as K; --draw-seed and --parents only to simulate."""
    references, auxiliaries = list(references or ()), list(auxiliaries or ())
    if draws is not None:
        check_draws(draws)
    if not (references or auxiliaries):
        if draws is None:
            raise PaperReproError("give --draws K, or several --reference/--auxiliary pairs")
        if draw_seed is not None:
            draw_seeds(draws, draw_seed)
        if parents is not None:
            draw_config(reproduction.REFERENCE_PRESET, (0, 1), parents)
        return references, auxiliaries
    if len(references) != len(auxiliaries):
        raise PaperReproError(f"over several draws give one --auxiliary per --reference (pairs); got "
                              f"{len(references)} --reference and {len(auxiliaries)} --auxiliary")
    if draws is not None and draws != len(references):
        raise PaperReproError(f"--draws {draws} with {len(references)} --reference/--auxiliary pair(s): give "
                              f"{draws} pairs, or no pair to simulate {draws} draws")
    if draw_seed is not None or parents is not None:
        raise PaperReproError("--draw-seed and --parents set simulated draws; they do not apply to pairs "
                              "given with --reference/--auxiliary")
    fits = [p for p in references + auxiliaries if is_fits_input(p)]
    if fits:
        raise PaperReproError(f"{fits[0]}: over several draws the pairs must be .npy map sets (stack FITS "
                              "maps with 'paper-repro ingest' first)")
    return references, auxiliaries


def validate_draws(*, draws: int | None = None, references: Sequence = (), auxiliaries: Sequence = (),
                   draw_seed: int | None = None, parents: int | None = None, generated=None, run=None,
                   training=None, n: int | None = None, seed: int = reproduction.GENERATION_SEED,
                   checkpoint=None, data_root=None, angle_deg: float | None = None,
                   progress: bool = True) -> Report:
    """``paper-repro validate --draws K`` (or several --reference/--auxiliary pairs): the generated
    maps (``generated``, or made once by ``run``, default the shipped model, as many as one draw's
    validation maps unless ``n``) certified against each pair; the pairs are the user's, or K
    simulated from ``draw_seed`` with ``parents`` parent maps per set in the run's geometry."""
    pairs, seeds, about = resolve_pairs(draws=draws, references=references, auxiliaries=auxiliaries,
                                        draw_seed=draw_seed, parents=parents, generated=generated, run=run,
                                        data_root=data_root, progress=progress)
    with reproduction.job_inputs(generated=generated, run=run, reference=pairs[0][0], auxiliary=pairs[0][1],
                                 training=training, n=n, seed=seed, checkpoint=checkpoint, data_root=data_root,
                                 angle_deg=angle_deg, progress=progress) as src:
        report = certify_draws(src.generated, pairs, training=src.training,
                               angle_deg=angle_deg if angle_deg is not None else src.angle_deg,
                               seeds=seeds, progress=progress)
        if src.run is not None:
            report.speed = reproduction.generation_speed_of(src.run, src.checkpoint)
        report.architecture = src.architecture
    report.draws.update(about)
    return report


def resolve_pairs(*, draws: int | None = None, references: Sequence = (), auxiliaries: Sequence = (),
                  draw_seed: int | None = None, parents: int | None = None, generated=None, run=None,
                  data_root=None, progress: bool = True) -> tuple[list[tuple], list | None, dict[str, Any]]:
    """The (validation, auxiliary) pairs of a request over draws (checked by :func:`check_request`):
    the user's, or K simulated (cached under the data root) in the geometry of ``generated`` or
    ``run``; with their seeds (None for the user's) and the ``draw_seed``/``parents_per_set`` entries
    of the report's ``draws``. Shared by ``paper-repro validate`` and ``pytest validation/``."""
    references, auxiliaries = check_request(draws=draws, references=references, auxiliaries=auxiliaries,
                                            draw_seed=draw_seed, parents=parents)
    if references:
        return list(zip(references, auxiliaries)), None, {"draw_seed": None, "parents_per_set": None}
    preset = geometry_preset(generated, run)
    root = reproduction.DATA_ROOT if data_root is None else Path(data_root)
    draw_seed = DEFAULT_DRAW_SEED if draw_seed is None else draw_seed
    pairs, seeds = simulated_pairs(root, draws, draw_seed=draw_seed, parents=parents, preset=preset,
                                   progress=progress)
    per_set = draw_config(preset, seeds[0], parents).splits.validation
    return pairs, seeds, {"draw_seed": draw_seed, "parents_per_set": per_set}
