"""Figures 1-8 of Mustafa et al. (2019), drawn from a certified sample.

:func:`make_figures` takes the map sets one certification read (:class:`~.certification.Inputs`)
and its :class:`~.certification.Report`, which keeps every set's statistics: each figure shows the
certified maps, and the numbers its caption shares with ``report.json`` (set sizes and sources,
per-component bootstrap p-values, paper-style tallies, correlation-matrix distances) are the
report's own. It writes ``figN.png``, ``figN.pdf``, ``figN.txt`` (the caption and the numbers
behind it) and ``captions.json``, first under temporary names: a failure leaves no partial output.
The figure functions live in :mod:`.figures_maps`, :mod:`.figures_power` and
:mod:`.figures_morphology`; ``make-figures`` and ``paper-repro reproduce`` call this through
:mod:`.reproduction`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from ..errors import PaperReproError
from ..stats.morphology import DEFAULT_MF_THRESHOLDS
from ..stats.neighbours import nearest_neighbors
from ..stats.power import DEFAULT_L_EDGES, count_modes
from .certification import Inputs, Report
from .figures_maps import figure_1, figure_7, figure_8
from .figures_morphology import figure_2, figure_5, figure_6
from .figures_power import figure_3a, figure_3b, figure_4
from .interpolation import slerp_path

#: figure identifiers, in the paper's order (Fig. 3 has two panels, written as two files)
FIGURES = ("1", "2", "3a", "3b", "4", "5", "6", "7", "8")
#: the numbers of the report every caption file repeats under "inputs"
SHARED_INPUTS = ("n_generated", "n_validation", "n_auxiliary", "n_training", "map_size", "angle_deg",
                 "baseline_source", "sources")


def certified_pvalues(report: Report, statistic: str) -> dict:
    """The certification's bootstrap p-values of generated vs validation maps for ``statistic``, per
    component, as :func:`~.plots.component_tests` shapes them ({"KS", "AD", medians, "tallies", "test"})."""
    detail = report.criteria[statistic]["detail"]
    res = detail["generated_vs_validation"]
    comp = res["components"]

    def arr(key):
        return np.array([np.nan if v is None else v for v in comp[key]], dtype=np.float64)

    tallies = detail["paper_style_tallies"]["generated_vs_validation"]
    return {"KS": arr("ks_valid_p"), "AD": arr("ad_valid_p"),
            "KS median": arr("ks_median_p"), "AD median": arr("ad_median_p"),
            "tallies": {"KS": tallies["ks"], "AD": tallies["ad"]},
            "test": (f"bootstrap KS/AD of the certification ({res['replicates']} subsamples of "
                     f"{res['n_sub']} maps per set; p = min(1, 2 x median p))"),
            "n_sub": res["n_sub"], "replicates": res["replicates"]}


def make_figures(out: str | os.PathLike, inputs: Inputs, report: Report, generator, *,
                 data_scale: float, about: dict | None = None, seed: int = 0, n_examples: int = 4,
                 n_paths: int = 3, n_steps: int = 8, dpi: int = 150,
                 progress: bool = False) -> dict[str, list[Path]]:
    """Draw Figures 1-8 of the certified sample into ``out``; returns {figure id: written files}.

    ``inputs``, ``report``: one certification (:func:`~.certification.certify` keeps the statistics
    in ``report.statistics``). ``generator`` (a Keras model making maps / ``data_scale``) draws the
    ``n_paths`` slerp paths of ``n_steps`` maps of Fig. 8 (latent seed ``seed``); Fig. 7 shows the
    nearest training maps of the first ``n_examples`` generated maps. ``about``: what the
    captions' "inputs" say of the generator (run, preset, latent seed), besides the report's numbers.
    """
    for name, value in (("n_examples", n_examples), ("n_paths", n_paths)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise PaperReproError(f"{name}: expected a positive integer, got {value!r}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise PaperReproError(f"n_steps: expected an integer >= 2, got {n_steps!r}")
    if not report.statistics:
        raise PaperReproError("the report holds no statistics of its sets: certify in this process")
    if inputs.training is None:
        raise PaperReproError("Figure 7 needs training maps: give the run's training set (--training TRAIN.npy)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PaperReproError(f"{out}: exists and is not a directory")

    def say(msg: str) -> None:
        if progress:
            print(f"figures: {msg}", flush=True)

    st = report.statistics
    angle, size = inputs.angle_deg, int(inputs.validation.shape[1])
    gen, val, train = inputs.generated, inputs.validation, inputs.training
    ell = np.asarray(st["validation"]["power_spectrum"][0], dtype=np.float64)
    P_gen, P_val, P_aux = (st[k]["power_spectrum"][1] for k in ("generated", "validation", "auxiliary"))
    modes = count_modes(size, angle)
    nu = 0.5 * (DEFAULT_MF_THRESHOLDS[:-1] + DEFAULT_MF_THRESHOLDS[1:])   # the functionals' bin midpoints
    mf_gen, mf_val = (np.split(st[k]["minkowski_functionals"][1], 3, axis=1) for k in ("generated", "validation"))
    if len(ell) != len(DEFAULT_L_EDGES) - 1 or mf_gen[0].shape[1] != len(nu):
        raise PaperReproError("the report's statistics are not at the paper's ell bins and thresholds")
    ps_tests = certified_pvalues(report, "power_spectrum")
    mf_tests = certified_pvalues(report, "minkowski_functionals")
    test_seed = int(report.inputs["config"]["seed"])
    common = {**(about or {}), **{k: report.inputs[k] for k in SHARED_INPUTS}}
    k = min(n_examples, len(gen))
    builders: list[tuple[str, Callable[[], Figure]]] = [
        ("1", lambda: figure_1(gen, val, angle_deg=angle)),
        ("2", lambda: figure_2(gen, val, seed=test_seed)),
        ("3a", lambda: figure_3a(ell, P_gen, P_val, angle_deg=angle, modes=modes)),
        ("3b", lambda: figure_3b(ell, P_gen, P_val, modes=modes, pvalues=ps_tests, l_edges=DEFAULT_L_EDGES)),
        ("4", lambda: figure_4(P_val, P_gen, P_aux, ell=ell, modes=modes)),
        ("5", lambda: figure_5(nu, mf_gen, mf_val)),
        ("6", lambda: figure_6(nu, mf_gen, mf_val, pvalues=mf_tests)),
        ("7", lambda: _nearest_training(gen[:k], val[:k], train, angle, say)),
        ("8", lambda: _slerp_paths(generator, data_scale, angle, seed, n_paths, n_steps, say)),
    ]
    return _write(out, builders, common, dpi, say)


def _nearest_training(q: np.ndarray, base: np.ndarray, train: np.ndarray, angle: float, say) -> Figure:
    """Fig. 7 of generated maps ``q``, with the first validation maps' distances as the baseline."""
    say(f"nearest training maps of {len(q)} generated maps among {len(train)}")
    q, base = np.asarray(q), np.asarray(base)
    nn_px = nearest_neighbors(q, train, 1, space="pixel")
    nn_ps = nearest_neighbors(q, train, 1, space="power", angle_deg=angle)
    bpx = nearest_neighbors(base, train, 1, space="pixel").distances[:, 0]
    bps = nearest_neighbors(base, train, 1, space="power", angle_deg=angle).distances[:, 0]
    ipx, ips = nn_px.indices[:, 0], nn_ps.indices[:, 0]
    fig = figure_7(q, np.asarray(train[np.sort(ipx)])[np.argsort(np.argsort(ipx))],
                   np.asarray(train[np.sort(ips)])[np.argsort(np.argsort(ips))],
                   distance_pixel=nn_px.distances[:, 0], distance_power=nn_ps.distances[:, 0],
                   index_pixel=ipx, index_power=ips, angle_deg=angle, n_training=len(train))
    fig.numbers["baseline_validation_distance_pixel"] = [float(d) for d in bpx]
    fig.numbers["baseline_validation_distance_power"] = [float(d) for d in bps]
    fig.numbers["power_space"] = "L2 distance between ln P(ell) over the non-empty ell bins"
    fig.caption += (f" For comparison, the first {len(base)} validation maps lie at pixel distances "
                    f"{', '.join(f'{d:.3g}' for d in bpx)} and power-spectrum distances "
                    f"{', '.join(f'{d:.3g}' for d in bps)} from their nearest training maps. "
                    f"Power-spectrum distance: L2 between ln P(ell) over the non-empty ell bins.")
    return fig


def _slerp_paths(generator, data_scale: float, angle: float, seed: int, n_paths: int, n_steps: int,
                 say) -> Figure:
    """Fig. 8: ``n_paths`` slerp paths of ``n_steps`` maps between latent pairs drawn with ``seed``."""
    say(f"{n_paths} slerp paths of {n_steps} maps")
    rng = np.random.default_rng([seed, 8])
    latent = int(generator.inputs[0].shape[-1])
    strips, smooth, max_steps, res = [], [], [], None
    for _ in range(n_paths):
        z0, z1 = rng.standard_normal((2, latent))
        res = slerp_path(generator, z0, z1, n_steps, data_scale=data_scale, angle_deg=angle, seed=seed)
        strips.append(res.maps)
        smooth.append(bool(res.smooth))
        max_steps.append({kk: float(v) for kk, v in res.max_step.items()})
    fig = figure_8(np.stack(strips), np.linspace(0, 1, n_steps), angle_deg=angle,
                   stats={"smooth": smooth, "max_step": max_steps})
    worst = max(max(m.values()) for m in max_steps)
    fig.caption += (f" Smoothness: the largest step of any tracked statistic (mean, variance, power "
                    f"at three ell, pixel L2) between neighbouring maps is {worst:.3g} of its spread "
                    f"over random generated maps; paths smooth (< {res.threshold:g}): "
                    f"{sum(smooth)} of {len(smooth)}.")
    return fig


def _write(out: Path, builders, common: dict, dpi: int, say) -> dict[str, list[Path]]:
    """Build each figure into a staging folder inside ``out``; move the files in only when all exist.

    Files are created as ordinary new files (permissions from the umask, readable by everyone under
    the usual 022), never with a temporary file's private 0600.
    """
    out_created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".make-figures-", dir=out))
    written: dict[str, list[Path]] = {}
    try:
        captions = {"inputs": common}
        for fid, build in builders:
            say(f"figure {fid}")
            fig = build()
            fig.savefig(stage / f"fig{fid}.png", format="png", dpi=dpi, metadata=None)
            fig.savefig(stage / f"fig{fid}.pdf", format="pdf", dpi=dpi, metadata={"CreationDate": None})
            numbers = dict(fig.numbers)
            captions[f"fig{fid}"] = {"caption": fig.caption, "numbers": numbers}
            (stage / f"fig{fid}.txt").write_text(
                fig.caption + "\n\n" + json.dumps({**common, **numbers}, indent=2, default=_json) + "\n")
            del fig
        (stage / "captions.json").write_text(json.dumps(captions, indent=2, default=_json) + "\n")
        for fid, _ in builders:
            files = []
            for ext in ("png", "pdf", "txt"):
                os.replace(stage / f"fig{fid}.{ext}", out / f"fig{fid}.{ext}")
                files.append(out / f"fig{fid}.{ext}")
            written[fid] = files
        os.replace(stage / "captions.json", out / "captions.json")
        written["captions"] = [out / "captions.json"]
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if out_created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return written


def _json(o):
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
