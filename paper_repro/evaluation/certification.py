"""Certification of a generator's maps (Sect. 3.1-3.2): every statistic against a real-vs-real baseline.

One entry point, :func:`certify`, used by ``paper-repro validate``, ``paper-repro reproduce`` and the
``validation/`` pytest suite, so all three give the same verdicts. Criteria:

- ``pixel_intensity``: per-map pixel histograms (20 bins at the validation set's pooled quantiles);
- ``power_spectrum``: P(ell) at the paper's 248 modes (LensTools binning);
- ``correlation_matrices``: the correlation matrix of the power spectra across maps (Fig. 4);
- ``minkowski_functionals``: V0, V1, V2 at the paper's 19 thresholds (57 components);
- ``peak_counts``: peaks and minima of the maps smoothed at 1 arcmin, in bins of kappa / sigma
  (:mod:`paper_repro.stats.peaks`), calibrated as the statistics above;
- ``covariance``: the covariance across maps of P(ell) in log bands, of the Minkowski functionals and
  of the peak counts (:func:`paper_repro.evaluation.criteria.covariance_criterion`);
- ``memorisation`` (when training maps are given): per generated map, nearest training map vs nearest
  held-out (validation + auxiliary) map, sets of the same parent structure
  (:func:`paper_repro.stats.copying.copying_test`).

Each statistical criterion is :func:`paper_repro.evaluation.criteria.calibrate` of generated-vs-validation
against auxiliary-vs-validation, with the tolerances of :class:`~paper_repro.config.CertificationConfig`.
Without an auxiliary set the reference set is split in two halves (said in the report). Maps cut from
one parent map are correlated: where a set's parent ids are known (a dataset's ``<split>_index.npy``
beside its file, or given to :func:`prepare`), standard errors are cluster-robust over its parent maps
and the bootstrap resamples its parents; a set without them (a generator's maps) counts as
independent draws. The report says which (``inputs.clusters``). Beside each verdict the report gives
the criterion's horizon n*, up to how many generated maps it would still pass (:mod:`.horizon`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from scipy import stats as scipy_stats

from ..config import CertificationConfig, HorizonConfig, NoveltyConfig
from ..errors import PaperReproError
from ..maps.io import atomic_path, check_maps, open_maps, shown_path
from ..stats.copying import copying_test
from ..stats.covariance import power_bands
from ..stats.morphology import pixel_histogram
from ..stats.paper import paper_statistics
from ..stats.peaks import extremum_counts, reference_sigma
from ..stats.reports import jsonable
from ..stats.twosample import compare_fourier_modes, split_reference
from .architecture import summary_line as architecture_line
from .criteria import calibrate, covariance_criterion
from .horizon import add_horizons, horizon_line
from .html_report import set_summaries

STATISTICS = ("pixel_intensity", "power_spectrum", "minkowski_functionals")
#: certified like STATISTICS but not part of checkpoint selection's scores
EXTRA_STATISTICS = ("peak_counts",)
CRITERIA = ("pixel_intensity", "power_spectrum", "correlation_matrices", "minkowski_functionals",
            "peak_counts", "covariance", "memorisation")
PIXEL_BINS = 20
#: how the report's "clusters" entry reads
CLUSTERS_NOTE = ("standard errors and bootstrap subsamples are clustered by parent map: a number is the set's "
                 "parent maps (from <split>_index.npy); 'independent': no parent ids, each map its own cluster "
                 "(a generator's maps are independent draws)")


@dataclass
class Inputs:
    """The map sets of one certification (arrays may be memory-mapped), checked for agreement."""

    generated: np.ndarray
    validation: np.ndarray
    auxiliary: np.ndarray
    angle_deg: float
    baseline_source: str
    training: np.ndarray | None = None
    sources: dict[str, str] = field(default_factory=dict)
    #: parent-map id of each map per set ("generated", "validation", "auxiliary", "training"), from a
    #: dataset's ``<split>_index.npy`` (column 0) or given; auxiliary ids are offset past the validation
    #: ids unless both halves come from one reference file. The statistical criteria cluster their
    #: standard errors and bootstrap by them; the memorisation criterion matches parent structure.
    #: A set without ids (a generator's maps) is treated as independent draws.
    parents: dict[str, np.ndarray] = field(default_factory=dict)

    def clusters(self) -> dict[str, Any]:
        """Per set, how its maps were treated: the number of parent maps, or "independent"."""
        return {name: int(np.unique(self.parents[name]).size) if name in self.parents else "independent"
                for name in ("generated", "validation", "auxiliary")}


def angle_from(path: str | os.PathLike | None) -> float | None:
    """The crop angle (deg) of a dataset split, from the manifest beside it, if there is one."""
    if path is None:
        return None
    manifest = Path(path).parent / "manifest.json"
    if manifest.exists():
        try:
            return float(json.loads(manifest.read_text())["angle_deg"])
        except (KeyError, ValueError, json.JSONDecodeError):
            return None
    return None


def prepare(generated, reference, auxiliary=None, training=None, *, angle_deg: float | None = None,
            config: CertificationConfig | None = None, sources: dict | None = None,
            split_seed: int = 0, parents: dict | None = None) -> Inputs:
    """Check the sets (shape, size, finiteness, enough maps) and build the baseline.

    Arguments are arrays (N, H, W) or paths to ``.npy`` files. ``angle_deg`` defaults to the
    angle in a dataset manifest next to the reference file. Parent-map ids come from a dataset's
    ``<split>_index.npy`` beside a file, or from ``parents`` ({"generated"|"reference"|"auxiliary"|
    "training": ids}, which wins); a set without them is treated as independent maps.
    """
    cfg = config or CertificationConfig()
    sources = dict(sources or {})

    given, parents = parents, {}

    def load(x, name):
        if x is None:
            return None
        if isinstance(x, (str, os.PathLike)):
            sources.setdefault(name, shown_path(x))
            maps = open_maps(x)
            ids = _parents_beside(x, len(maps))
            if ids is not None:
                parents[name] = ids
            return maps
        return check_maps(x, name=name)

    gen, ref = load(generated, "generated"), load(reference, "reference")
    aux, train = load(auxiliary, "auxiliary"), load(training, "training")
    if gen is None or ref is None:
        raise PaperReproError("certification needs generated and reference maps")
    for name, ids in (given or {}).items():
        arr = {"generated": gen, "reference": ref, "auxiliary": aux, "training": train}.get(name)
        if ids is None:
            continue
        ids = np.asarray(ids)
        if arr is None or ids.ndim != 1 or len(ids) != len(arr) or not np.issubdtype(ids.dtype, np.integer):
            raise PaperReproError(f"parents[{name!r}]: expected one integer parent-map id per map of that set, "
                                  f"found {ids.dtype} array of shape {ids.shape}")
        parents[name] = ids.astype(np.int64)
    size = ref.shape[1]
    for name, arr in (("generated", gen), ("auxiliary", aux), ("training", train)):
        if arr is not None and arr.shape[1] != size:
            raise PaperReproError(f"{name} maps are {arr.shape[1]}x{arr.shape[2]}, reference maps are "
                                  f"{size}x{size}: the sets must have the same shape")
    if angle_deg is None:
        angle_deg = angle_from(reference if isinstance(reference, (str, os.PathLike)) else None)
    if angle_deg is None:
        raise PaperReproError("the maps' angle is unknown: pass --angle DEG (no dataset manifest "
                              "beside the reference file)")
    if not (isinstance(angle_deg, (int, float)) and math.isfinite(angle_deg) and angle_deg > 0):
        raise PaperReproError(f"angle must be a positive number of degrees, got {angle_deg!r}")
    if aux is None:
        if len(ref) < 2 * cfg.min_maps:
            raise PaperReproError(f"reference set has {len(ref)} maps; without --auxiliary it is split in "
                                  f"two, which needs at least {2 * cfg.min_maps}")
        a, b = split_reference(len(ref), split_seed)
        ref, aux = ref[a], ref[b]
        if "reference" in parents:   # one file: the halves share parent ids
            parents["auxiliary"] = parents["reference"][b]
            parents["reference"] = parents["reference"][a]
        baseline = "random half of the reference set (no auxiliary set given)"
    else:
        baseline = "auxiliary set"
        if "reference" in parents and "auxiliary" in parents:   # two files: distinct parents
            parents["auxiliary"] = parents["auxiliary"] + int(parents["reference"].max()) + 1
    if "reference" in parents:
        parents["validation"] = parents.pop("reference")
    for name, arr in (("generated", gen), ("reference", ref), ("auxiliary", aux)):
        if len(arr) < cfg.min_maps:
            raise PaperReproError(f"{name} set has {len(arr)} maps, the bootstrap needs at least {cfg.min_maps}")
    return Inputs(gen, ref, aux, float(angle_deg), baseline, train, sources,
                  {k: v for k, v in parents.items() if k in ("generated", "validation", "auxiliary", "training")})


def _parents_beside(path: str | os.PathLike, n: int) -> np.ndarray | None:
    """Parent-map ids of a dataset split (column 0 of ``<split>_index.npy`` beside it), if present."""
    path = Path(path)
    index = path.with_name(path.stem + "_index.npy")
    if not index.exists():
        return None
    try:
        ids = np.load(index)
    except (OSError, ValueError) as exc:
        raise PaperReproError(f"{index}: unreadable parent index ({exc})") from None
    ids = ids[:, 0] if ids.ndim == 2 else ids
    if ids.ndim != 1 or len(ids) != n or not np.issubdtype(ids.dtype, np.integer):
        raise PaperReproError(f"{index}: expected {n} integer parent ids for {path.name}, found "
                              f"{ids.dtype} array of shape {ids.shape}")
    return ids.astype(np.int64)


def pixel_edges(validation: np.ndarray, bins: int = PIXEL_BINS) -> np.ndarray:
    """Pixel-histogram edges at quantiles of the validation set's pooled pixels (open end bins)."""
    sample = np.asarray(validation[: min(len(validation), 2000)], dtype=np.float64).ravel()
    edges = np.quantile(sample, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -1e30, 1e30
    return edges


def statistics_of(maps: np.ndarray, angle_deg: float, edges: np.ndarray, *,
                  workers: int | None = None) -> dict[str, tuple[list, np.ndarray]]:
    """The certified statistics of one set: name -> (component labels, (N, K) array).

    Power spectrum and Minkowski functionals as :func:`paper_repro.stats.paper.paper_statistics`;
    pixel intensity as the fraction of each map's pixels in each bin of ``edges``. ``workers``:
    threads (results do not depend on it).
    """
    out = paper_statistics(maps, angle_deg, workers=workers)
    centres, hist = pixel_histogram(maps, edges, workers=workers)
    hist = np.atleast_2d(hist) / float(maps.shape[1] * maps.shape[2])
    labels = [f"[{a:.4g},{b:.4g})" for a, b in zip(edges[:-1], edges[1:])]
    out["pixel_intensity"] = (labels, hist)
    return out


def pooled_pixel_ks(gen: np.ndarray, val: np.ndarray, max_maps: int = 2000) -> float:
    """The paper's Fig. 2 number: KS p of all pixels pooled (descriptive: pixels are correlated)."""
    return float(scipy_stats.ks_2samp(np.asarray(gen[:max_maps]).ravel(), np.asarray(val[:max_maps]).ravel()).pvalue)


@dataclass
class Report:
    """Everything a certification found; ``passed`` is True when every criterion passed."""

    criteria: dict[str, dict[str, Any]]
    inputs: dict[str, Any]
    descriptive: dict[str, Any]
    speed: dict[str, Any] | None = None
    seconds: float = 0.0
    #: the generator's layers against its preset (:mod:`.architecture`); None for maps given as a file
    architecture: dict[str, Any] | None = None
    #: each set's statistics {"generated"|"validation"|"auxiliary": {statistic: (labels, (N, K))}}, as
    #: :func:`statistics_of` computed them once; kept for the figures, written to JSON only as
    #: per-set means and standard deviations (``set_summaries``)
    statistics: dict[str, dict[str, tuple[list, np.ndarray]]] = field(default_factory=dict, repr=False)
    #: the verdict over independent validation/auxiliary draws (:func:`.draws.combine`); when set it
    #: decides ``passed`` and ``failed``, and ``criteria`` are the first draw's
    draws: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        if self.draws is not None:
            return bool(self.draws["passed"])
        return all(c["passed"] for c in self.criteria.values())

    def failed(self) -> list[str]:
        if self.draws is not None:
            return list(self.draws["failed"])
        return [k for k, c in self.criteria.items() if not c["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": self.failed(), "criteria": self.criteria,
                "inputs": self.inputs, "descriptive": self.descriptive, "speed": self.speed,
                "seconds": self.seconds, "summary": self.summary(), "architecture": self.architecture,
                "set_summaries": set_summaries(self.statistics), "draws": self.draws}

    def summary(self) -> str:
        lines = [f"certification: {'PASS' if self.passed else 'FAIL'} "
                 f"({self.inputs['n_generated']} generated, {self.inputs['n_validation']} validation, "
                 f"{self.inputs['n_auxiliary']} auxiliary maps; baseline: {self.inputs['baseline_source']})"]
        if "clusters" in self.inputs:
            lines.append("  clustered by parent map: " + ", ".join(
                f"{k} {v if v == 'independent' else f'{v} parents'}" for k, v in self.inputs["clusters"].items()))
        if self.draws is not None:
            d = self.draws
            lines.append(f"  over {d['k']} independent validation/auxiliary draws ({d['rule']}):")
            for name, c in d["criteria"].items():
                lines.append(f"  {name:24s} {'PASS' if c['passed'] else 'FAIL'}  {draws_headline(c)}")
            lines.append("  the first draw in detail:")
        for name, c in self.criteria.items():
            lines.append(f"  {name:24s} {'PASS' if c['passed'] else 'FAIL'}  {c['headline']}")
            if horizon_line(c):
                lines.append(f"  {'':24s}       horizon: {horizon_line(c)}")
        if self.architecture is not None:
            lines.append(f"  architecture: {architecture_line(self.architecture)}")
        return "\n".join(lines)

    def markdown(self) -> str:
        """The verdicts as a Markdown table (criterion, verdict, measured, limit, baseline)."""
        return markdown_table(self.to_dict())

    def write(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False))


def draws_headline(entry: dict[str, Any]) -> str:
    """One criterion over draws in words: the draws it passed, its deciding test's median against the
    limit over draws, and the worst single draw."""
    head = f"{entry['passes']}/{entry['draws']} draws passed"
    if entry.get("deciding"):
        t = entry["tests"][entry["deciding"]]
        head += f"; median {entry['deciding']} {_f(t['median'])} (limit over draws {_f(t['limit'])})"
    w = entry["worst"]
    if w["test"] is not None:
        head += f"; worst draw: {w['test']} {_f(w['value'])} (limit {_f(w['limit'])}, draw {w['draw']})"
    return head


def markdown_table(report: dict[str, Any]) -> str:
    """A Markdown table of a report (as written to JSON): one row per sub-criterion."""
    rows = ["| criterion | test | verdict | generated vs validation | limit | baseline (auxiliary vs validation) |",
            "|---|---|---|---|---|---|"]
    for name, c in report["criteria"].items():
        for x in c["criteria"]:
            rows.append(f"| {name} | {x['name']} | {'pass' if x['passed'] else '**FAIL**'} | "
                        f"{_f(x['value'])} | {_f(x['limit'])} | {_f(x['baseline'])} |")
    return "\n".join(rows)


def _criterion_entry(verdict, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    d = verdict.to_dict()
    crit = [c for c in d["criteria"] if names is None or c["name"] in names]
    passed = all(c["passed"] for c in crit)
    head = "; ".join(f"{c['name']} {_f(c['value'])} (limit {_f(c['limit'])}, baseline {_f(c['baseline'])})"
                     for c in crit)
    return {"passed": passed, "headline": head, "criteria": crit, "detail": d}


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def default_workers() -> int:
    """Threads for the certification's statistics: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                                     # not on Linux
        return max(1, os.cpu_count() or 1)


def certify(inputs: Inputs, config: CertificationConfig | None = None, *, memorisation: bool = True,
            progress: bool = False, novelty: NoveltyConfig | None = None, workers: int | None = None,
            horizon: HorizonConfig | None = None) -> Report:
    """Run every criterion on ``inputs``; see the module docstring. Each criterion's entry gets its
    horizon n* (:mod:`.horizon`). The report keeps each set's statistics (``report.statistics``, not
    written to JSON), computed once, for the figures.

    ``workers``: threads (default :func:`default_workers`); the statistics are split over the maps, the
    criteria run side by side, each with its own seed, so the report does not depend on it.
    """
    cfg = config or CertificationConfig()
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise PaperReproError(f"workers: expected a positive number of threads, found {workers}")
    t0 = time.perf_counter()
    say = (lambda m: print(m, flush=True)) if progress else (lambda m: None)
    with ThreadPoolExecutor(workers, thread_name_prefix="paper_repro.certify") as pool:
        # descriptive numbers of the maps themselves, beside the statistics (NumPy and SciPy release the GIL)
        side = {"pooled_pixel_ks_p": pool.submit(pooled_pixel_ks, inputs.generated, inputs.validation),
                "fourier_modes": pool.submit(compare_fourier_modes, inputs.generated, inputs.validation)}
        edges = pixel_edges(inputs.validation)
        stats = {}
        for name, arr in (("generated", inputs.generated), ("validation", inputs.validation),
                          ("auxiliary", inputs.auxiliary)):
            say(f"statistics: {len(arr):,} {name} maps ...")
            stats[name] = statistics_of(np.asarray(arr), inputs.angle_deg, edges, workers=workers)
        say("peak and minimum counts: generated, validation, auxiliary maps ...")
        add_extremum_counts(stats, inputs, cfg, workers=workers)
        groups = {k: inputs.parents.get(k) for k in ("generated", "validation", "auxiliary")}
        say("bootstrap tests: " + ", ".join(STATISTICS + EXTRA_STATISTICS) + " ...")
        verdicts = {stat: pool.submit(
            calibrate, stats["generated"][stat][1], stats["validation"][stat][1], stats["auxiliary"][stat][1],
            statistic=stat, labels=stats["validation"][stat][0], config=cfg,
            correlation=(stat == "power_spectrum"), baseline_source=inputs.baseline_source, groups=groups)
            for stat in STATISTICS + EXTRA_STATISTICS}
        covariance = covariance_entry(stats, inputs, cfg)
        side = {k: f.result() for k, f in side.items()}
        verdicts = {k: f.result() for k, f in verdicts.items()}
    criteria: dict[str, dict[str, Any]] = {}
    for stat, v in verdicts.items():
        if stat == "power_spectrum":
            base = tuple(c.name for c in v.criteria if c.name != "correlation")
            criteria["power_spectrum"] = _criterion_entry(v, base)
            criteria["correlation_matrices"] = _criterion_entry(v, ("correlation",))
            criteria["correlation_matrices"].pop("detail")
        else:
            criteria[stat] = _criterion_entry(v)
    criteria["covariance"] = covariance
    if memorisation and inputs.training is not None:
        say("memorisation: nearest training vs nearest held-out maps (shift/flip invariant) ...")
        nv = novelty or NoveltyConfig()
        rng = np.random.default_rng(cfg.seed)
        gen = np.asarray(inputs.generated[np.sort(rng.permutation(len(inputs.generated))[:nv.memorisation_maps])])
        held = np.concatenate([np.asarray(inputs.validation), np.asarray(inputs.auxiliary)])
        par = inputs.parents
        known = all(k in par for k in ("validation", "auxiliary", "training"))
        with ticking(say if progress else None, f"memorisation: searching {len(gen):,} generated maps "
                     f"against {len(inputs.training):,} training and {len(held):,} held-out maps"):
            m = copying_test(gen, inputs.training, held,
                             training_parents=par["training"] if known else None,
                             held_out_parents=np.concatenate([par["validation"], par["auxiliary"]]) if known else None,
                             alpha=nv.alpha, tail_sigma=nv.copying_tail_sigma, seed=cfg.seed,
                             modes=nv.copying_modes)
        criteria["memorisation"] = {
            "passed": bool(m.passed),
            "headline": (f"p {m.p_value:.3g} (fails below {m.alpha:g}); of {m.n_generated:,} maps, those whose "
                         f"nearest set stands out: training {m.training_tail} vs held-out {m.held_out_tail}; "
                         f"median nearest (invariant features) distance training "
                         f"{m.median_distance_training:.4g} vs held-out {m.median_distance_held_out:.4g}"),
            "criteria": [{"name": "memorisation", "passed": bool(m.passed), "value": m.p_value,
                          "limit": m.alpha, "baseline": None,
                          "rule": "generated maps no closer to training maps than to held-out maps of "
                                  "the same parent structure (an outlying nearest set is a training set no more often than chance)"}],
            "detail": m.to_dict()}
    say("horizon n* per criterion ...")
    horizon_s = add_horizons(criteria, stats, groups, cfg, horizon, say=say,
                             covariance=lambda sub, grp: covariance_entry(sub, inputs, cfg, grp)["passed"])
    descriptive = {
        "horizon_seconds": horizon_s,
        "pooled_pixel_ks_p": side["pooled_pixel_ks_p"],
        "pooled_pixel_ks_note": "paper Fig. 2 style: all pixels pooled; pixels within a map are "
                                "correlated, so this p is descriptive only",
        "paper_style_tallies": {k: criteria[k]["detail"]["paper_style_tallies"]
                                for k in ("power_spectrum", "minkowski_functionals")},
        "pixel_std": {k: float(np.asarray(a[:2000]).std()) for k, a in
                      (("generated", inputs.generated), ("validation", inputs.validation))},
        # where the power-spectrum error lives: single 2-D modes, the stride grid, a fixed pattern
        "fourier_modes": side["fourier_modes"],
    }
    info = {"n_generated": int(len(inputs.generated)), "n_validation": int(len(inputs.validation)),
            "n_auxiliary": int(len(inputs.auxiliary)),
            "n_training": None if inputs.training is None else int(len(inputs.training)),
            "map_size": int(inputs.validation.shape[1]), "angle_deg": inputs.angle_deg,
            "baseline_source": inputs.baseline_source, "sources": inputs.sources,
            "clusters": inputs.clusters(), "clusters_note": CLUSTERS_NOTE,
            "config": cfg.to_dict()}
    return Report(criteria, info, descriptive, seconds=time.perf_counter() - t0, statistics=stats)


def add_extremum_counts(stats: dict, inputs: Inputs, cfg: CertificationConfig, *,
                        workers: int | None = None) -> None:
    """Add each set's peak and minimum counts (``"peak_counts"``) to ``stats``, in bins of kappa over
    the rms of the smoothed validation maps (one binning for the three sets); ``workers``: threads."""
    sigma = reference_sigma(inputs.validation, inputs.angle_deg, cfg.peak_smoothing_arcmin)
    for name, arr in (("generated", inputs.generated), ("validation", inputs.validation),
                      ("auxiliary", inputs.auxiliary)):
        stats[name]["peak_counts"] = extremum_counts(arr, inputs.angle_deg, sigma,
                                                     scale_arcmin=cfg.peak_smoothing_arcmin, workers=workers)


def covariance_entry(stats: dict, inputs: Inputs, cfg: CertificationConfig, groups: dict | None = None
                     ) -> dict[str, Any]:
    """The ``covariance`` criterion's report entry from the sets' statistics (P(ell) rebinned to bands);
    ``groups``: parent ids per set of these statistics (default: the inputs')."""
    size = int(inputs.validation.shape[1])
    blocks = {}
    for stat in ("power_spectrum", "minkowski_functionals", "peak_counts"):
        sets = [stats[k][stat][1] for k in ("generated", "validation", "auxiliary")]
        if stat == "power_spectrum":
            sets = [power_bands(p, size, inputs.angle_deg, n_bands=cfg.cov_bands)[1] for p in sets]
        blocks[stat] = tuple(sets)
    crit, detail = covariance_criterion(blocks, cfg, groups=inputs.parents if groups is None else groups)
    worst = detail["worst_offdiag_relative_error"]
    head = "; ".join(f"{c.name} {_f(c.value)} (limit {_f(c.limit)}, baseline {_f(c.baseline)})" for c in crit
                     if c.name.endswith("correlation_rms"))
    head += "; worst off-diagonal relative error " + ", ".join(
        f"{k} {_f(v)} (baseline {_f(worst['auxiliary_vs_validation'][k])})"
        for k, v in worst["generated_vs_validation"].items())
    return {"passed": all(c.passed for c in crit), "headline": head, "criteria": [c.to_dict() for c in crit],
            "detail": jsonable(detail)}


@contextlib.contextmanager
def ticking(say: Callable[[str], None] | None, what: str, every: float = 30.0) -> Iterator[None]:
    """While the block runs, say ``what`` and the elapsed seconds every ``every`` s (a long search
    that reports no progress of its own is not silent); nothing when ``say`` is None."""
    if say is None:
        yield
        return
    stop, t0 = threading.Event(), time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            say(f"{what} ... {time.perf_counter() - t0:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        say(f"{what}: done in {time.perf_counter() - t0:.0f} s")


def generation_speed(generator, latent_dim: int, n: int = 1024, batch_size: int = 256,
                     flops_per_map: float | None = None) -> dict[str, float]:
    """Maps per second of ``generator`` on this machine, with FLOP efficiency vs a matmul measured now
    (``keras.ops``, so on whichever backend the generator runs)."""
    import keras

    z = np.random.default_rng(0).standard_normal((batch_size, latent_dim)).astype(np.float32)
    generator(z, training=False)
    reps = max(1, n // batch_size)
    t = time.perf_counter()
    for _ in range(reps):
        np.asarray(generator(z, training=False))
    rate = reps * batch_size / (time.perf_counter() - t)
    a = keras.ops.convert_to_tensor(np.random.default_rng(1).standard_normal((2048, 2048)).astype(np.float32))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
    best = min(_timed(lambda: keras.ops.convert_to_numpy(keras.ops.matmul(a, a))) for _ in range(5))
    peak = 2 * 2048 ** 3 / best
    out = {"maps_per_s": rate, "matmul_gflops": peak / 1e9}
    if flops_per_map:
        out["gflop_per_map"] = flops_per_map / 1e9
        out["efficiency"] = rate * flops_per_map / peak
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
