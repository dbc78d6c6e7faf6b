"""A certification report people can look at: one self-contained HTML page.

:func:`write_html` turns a report as written to JSON (:meth:`.certification.Report.to_dict`, or a
``report.json`` read back with :func:`read_report`) into one HTML file: the verdict table (per
criterion its worst test against its limit and the real-vs-real baseline), the generator's
architecture against its preset, and per criterion a figure that explains the verdict, embedded as
a base64 PNG (no external file, no network). Everything drawn comes from the report dict: the
statistics' per-set means and standard deviations (``set_summaries``, :func:`set_summaries`), the
certified per-component z of the means (``mean_z``) and each test's value, limit and baseline. A
report without ``set_summaries`` (written before they existed) gets the z panels only.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PaperReproError
from ..maps.io import atomic_path, read_json
from ..stats.reports import jsonable

#: sub-criteria that pass when the value is at least the limit (p-values); the others at most
LOWER_BOUND = re.compile(r"(min_p|^memorisation)$")
#: statistics drawn as ratios to the validation mean (positive by construction)
RATIO_STATISTICS = ("power_spectrum", "pixel_intensity")
COLORS = {"validation": "#1f77b4", "generated": "#d62728", "auxiliary": "#2ca02c"}


# ------------------------------------------------------------------------------- report data
def set_summaries(statistics: dict) -> dict[str, Any]:
    """Per statistic its component labels and, per set, n maps and the mean and standard deviation
    over maps of each component (6 significant digits): what the page draws, small enough for JSON.
    ``statistics``: {set: {statistic: (labels, (N, K))}} as :func:`.certification.certify` keeps them."""
    out: dict[str, Any] = {}
    for set_name, stats in statistics.items():
        for stat, (labels, values) in stats.items():
            a = np.asarray(values, dtype=np.float64)
            entry = out.setdefault(stat, {"labels": jsonable(list(labels)), "sets": {}})
            entry["sets"][set_name] = {"n": int(a.shape[0]), "mean": _rounded(a.mean(axis=0)),
                                       "sd": _rounded(a.std(axis=0, ddof=1) if len(a) > 1 else np.zeros(a.shape[1]))}
    return out


def _rounded(a: np.ndarray) -> list:
    return jsonable([float(f"{v:.6g}") if math.isfinite(v) else v for v in a.tolist()])


def read_report(path: str | os.PathLike) -> dict[str, Any]:
    """A report written by ``paper-repro validate --report`` or ``reproduce``; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise PaperReproError(f"{path}: no such report file")
    report = read_json(path, "JSON report")
    if not (isinstance(report, dict) and isinstance(report.get("criteria"), dict) and report["criteria"]
            and isinstance(report.get("inputs"), dict)):
        raise PaperReproError(f"{path}: not a certification report (no criteria and inputs); write one with "
                              "'paper-repro validate --report'")
    return report


def check_output(path: str | os.PathLike) -> Path:
    """``path`` if an HTML page can be written there (its folder exists), else a one-line error;
    checked before a long certification, not after."""
    path = Path(path)
    if path.is_dir():
        raise PaperReproError(f"{path}: is a folder; give the HTML file's name, e.g. {path / 'report.html'}")
    if not path.parent.is_dir():
        raise PaperReproError(f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise PaperReproError(f"{path}: folder {path.parent} is not writable")
    return path


def worst_test(criterion: dict[str, Any]) -> dict[str, Any] | None:
    """The sub-criterion nearest to (or furthest past) its limit: failed ones first, then the
    largest value / limit (limit / value for the p-value tests, which pass above their limit)."""
    tests = criterion.get("criteria") or []
    if not tests:
        return None
    return max(tests, key=lambda c: (not c.get("passed", True), _margin(c)))


def _margin(c: dict[str, Any]) -> float:
    v, lim = c.get("value"), c.get("limit")
    if v is None or lim is None:
        return -math.inf
    if LOWER_BOUND.search(c.get("name", "")):
        return math.inf if v <= 0 else lim / v
    return math.inf if lim <= 0 < v else (v / lim if lim > 0 else -math.inf)


# ------------------------------------------------------------------------------------ figures
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _groups(stat: str, labels: list) -> list[tuple[str, np.ndarray, np.ndarray, list[str] | None]]:
    """Panels of a statistic's components: (title, component indices, x values, tick labels or None).
    Labels "NAME@x" split into one panel per NAME; numeric labels are x values; others are bins."""
    labels = [str(v) for v in labels]
    if labels and all("@" in v for v in labels):
        names = list(dict.fromkeys(v.split("@")[0] for v in labels))
        out = []
        for name in names:
            idx = np.array([i for i, v in enumerate(labels) if v.split("@")[0] == name])
            rest = [labels[i].split("@", 1)[1] for i in idx]
            x = np.array([_float(r) for r in rest])
            ticks = None
            if not np.isfinite(x).all():
                x, ticks = np.arange(len(idx), dtype=float), rest
            out.append((name, idx, x, ticks))
        return out
    x = np.array([_float(v) for v in labels])
    title = stat.replace("_", " ")
    if np.isfinite(x).all():
        return [(title, np.arange(len(labels)), x, None)]
    return [(title, np.arange(len(labels)), np.arange(len(labels), dtype=float), labels)]


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _axis_x(ax, x: np.ndarray, ticks: list[str] | None, stat: str) -> None:
    if ticks is not None:
        step = max(1, len(ticks) // 8)
        shown = [t.replace("-1e+30", "-inf").replace("1e+30", "inf") for t in ticks[::step]]
        ax.set_xticks(x[::step], shown, rotation=30, fontsize=6, ha="right")
    elif stat == "power_spectrum" and (x > 0).all() and x.max() > 10 * x.min():
        from matplotlib.ticker import NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("multipole ell", fontsize=8)


def _plot(ax, x, y, **kw) -> None:
    """``ax.plot`` of the finite points only (empty bins of P(ell) are NaN)."""
    ok = np.isfinite(y)
    ax.plot(x[ok], y[ok], **kw)


def statistic_figure(stat: str, criterion: dict[str, Any], summary: dict[str, Any] | None):
    """The verdict of one statistic: the sets' means (top, when ``summary`` is given) and the
    certified z of the means per component with the baseline's worst |z| and the limit (bottom)."""
    from matplotlib.figure import Figure  # matplotlib only where pages are drawn

    detail = criterion.get("detail") or {}
    z = _array(detail.get("mean_z") or [])
    labels = (summary or {}).get("labels") or (
        detail.get("generated_vs_validation", {}).get("components", {}).get("label") or list(range(len(z))))
    groups = _groups(stat, labels)
    mean_test = next((c for c in criterion.get("criteria", []) if c["name"] == "mean_within_k_se"), None)
    sets = (summary or {}).get("sets", {})
    top = "validation" in sets
    rows = 1 + (top and z.size > 0)
    fig = Figure(figsize=(3.4 * len(groups) + 1.2, 2.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, len(groups), squeeze=False)
    marker = "o" if stat == "power_spectrum" else "o-"
    for j, (title, idx, x, ticks) in enumerate(groups):
        if top:
            _means_panel(axes[0, j], stat, sets, idx, x)
        if z.size:
            _z_panel(axes[-1, j], z[idx], x, mean_test, marker)
            if j == 0:
                axes[-1, 0].set_ylabel("z of the means\n(generated - validation)", fontsize=8)
        axes[0, j].set_title(title, fontsize=9)
        for ax in axes[:, j]:
            _axis_x(ax, x, ticks, stat)
    axes[0, 0].legend(fontsize=6, loc="best")
    if rows == 2:
        axes[1, 0].legend(fontsize=6, loc="best")
    fig.suptitle(f"{stat.replace('_', ' ')}: {'PASS' if criterion.get('passed') else 'FAIL'}", fontsize=10)
    return fig


def _means_panel(ax, stat: str, sets: dict, idx: np.ndarray, x: np.ndarray) -> None:
    val = sets["validation"]
    vm, vs = _array(val["mean"])[idx], _array(val["sd"])[idx]
    if stat in RATIO_STATISTICS:
        with np.errstate(divide="ignore", invalid="ignore"):
            for name in ("auxiliary", "generated"):
                if name in sets:
                    _plot(ax, x, _array(sets[name]["mean"])[idx] / vm, color=COLORS[name], lw=1.0,
                          label=f"{name} / validation" + (" (baseline)" if name == "auxiliary" else ""))
        ax.axhline(1.0, color="0.3", lw=0.6)
        ax.set_ylabel("mean / validation mean", fontsize=8)
    else:
        ok = np.isfinite(vm) & np.isfinite(vs)
        ax.fill_between(x[ok], (vm - vs)[ok], (vm + vs)[ok], color=COLORS["validation"], alpha=0.2, lw=0,
                        label="validation mean +/- 1 sd")
        _plot(ax, x, vm, color=COLORS["validation"], lw=1.2, label="validation")
        for name in ("auxiliary", "generated"):
            if name in sets:
                _plot(ax, x, _array(sets[name]["mean"])[idx], color=COLORS[name], lw=1.0,
                      ls="--" if name == "auxiliary" else "-",
                      label=name + (" (baseline)" if name == "auxiliary" else ""))
        ax.set_ylabel("mean over maps", fontsize=8)
    ax.tick_params(labelsize=7)


def _z_panel(ax, z: np.ndarray, x: np.ndarray, mean_test: dict | None, marker: str) -> None:
    if mean_test is not None and mean_test.get("baseline") is not None:
        b = mean_test["baseline"]
        ax.axhspan(-b, b, color="0.6", alpha=0.3, lw=0, label=f"baseline: auxiliary's worst |z| {b:.3g}")
    if mean_test is not None and mean_test.get("limit") is not None:
        lim = mean_test["limit"]
        for s in (-1, 1):
            ax.axhline(s * lim, color="k", ls="--", lw=0.8, label=f"limit +/-{lim:g}" if s > 0 else None)
    _plot(ax, x, z, color=COLORS["generated"], marker="o", ms=2.5,
          lw=0.8 if marker == "o-" else 0, label="generated vs validation")
    ax.axhline(0.0, color="0.3", lw=0.5)
    ax.tick_params(labelsize=7)


def tests_figure(name: str, criterion: dict[str, Any]):
    """Any criterion: per test, generated-vs-validation and the baseline against the limit; for the
    memorisation test the maps whose nearest set stands out, for the covariance the worst
    off-diagonal relative error beside Armijo, Thiele & Liu's (2026) figures."""
    from matplotlib.figure import Figure

    tests = [c for c in criterion.get("criteria", []) if c.get("value") is not None or c.get("baseline") is not None]
    detail = criterion.get("detail") or {}
    extras = [f for f, keys in ((_tails_panel, ("training_tail", "held_out_tail")),
                                (_offdiag_panel, ("worst_offdiag_relative_error",))) if all(k in detail for k in keys)]
    n = len(tests) + len(extras)
    cols = min(3, max(1, n))
    nrows = max(1, -(-n // cols))
    fig = Figure(figsize=(3.4 * cols, 1.7 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, c in zip(axes, tests):
        vals = [("generated", c.get("value"), COLORS["generated"] if c.get("passed") else "#7f0000"),
                ("baseline", c.get("baseline"), "0.55")]
        vals = [(k, v, col) for k, v, col in vals if v is not None]
        bars = ax.barh([k for k, _, _ in vals], [v for _, v, _ in vals], color=[col for _, _, col in vals],
                       height=0.6)
        ax.bar_label(bars, fmt="%.3g", fontsize=6, padding=2)
        if c.get("limit") is not None:
            ax.axvline(c["limit"], color="k", ls="--", lw=1.0)
        low = bool(LOWER_BOUND.search(c["name"]))
        if low and all(v > 0 for _, v, _ in vals) and (c.get("limit") or 0) > 0:
            ax.set_xscale("log")      # p-values: the limit (0.01) and p near 1 both visible
        ax.set_title(f"{c['name'].replace(':', ': ')}\n{'pass' if c.get('passed') else 'FAIL'} "
                     f"({'>=' if low else '<='} limit, dashed)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax, panel in zip(axes[len(tests):], extras):
        panel(ax, detail)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{name.replace('_', ' ')}: {'PASS' if criterion.get('passed') else 'FAIL'}", fontsize=10)
    return fig


def _tails_panel(ax, detail: dict) -> None:
    bars = ax.bar(["training", "held-out"], [detail["training_tail"], detail["held_out_tail"]],
                  color=[COLORS["generated"], "0.55"])
    ax.bar_label(bars, fontsize=7)
    ax.set_ylim(bottom=0, top=max(1, detail["training_tail"], detail["held_out_tail"]) * 1.15)
    ax.set_title("generated maps whose nearest set\nstands out, by that set", fontsize=7)


def _offdiag_panel(ax, detail: dict) -> None:
    worst = detail["worst_offdiag_relative_error"]
    gen, base = worst.get("generated_vs_validation", {}), worst.get("auxiliary_vs_validation", {})
    names = list(gen)
    y = np.arange(len(names))
    ax.barh(y + 0.2, [np.nan if gen[k] is None else gen[k] for k in names], height=0.4,
            color=COLORS["generated"], label="generated")
    ax.barh(y - 0.2, [np.nan if base.get(k) is None else base[k] for k in names], height=0.4,
            color="0.55", label="baseline")
    for v, ls in ((0.25, "--"), (0.10, ":")):
        ax.axvline(v, color="k", ls=ls, lw=0.8)
    ax.set_yticks(y, [k.replace("_", " ") for k in names], fontsize=6)
    ax.set_title("worst off-diagonal relative error\n(Armijo et al. 2026: 25% worst, 10% typical)", fontsize=7)
    ax.legend(fontsize=6, loc="lower right")


def criterion_figure(name: str, criterion: dict[str, Any], report: dict[str, Any]):
    """The figure of one criterion: :func:`statistic_figure` where the report has per-component
    z of the means, else :func:`tests_figure`."""
    if (criterion.get("detail") or {}).get("mean_z"):
        return statistic_figure(name, criterion, (report.get("set_summaries") or {}).get(name))
    return tests_figure(name, criterion)


# --------------------------------------------------------------------------------------- page
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;font-size:0.9em;
text-align:left}th{background:#f2f2f2}.pass{color:#176b2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}
img{max-width:100%}.num{text-align:right;font-variant-numeric:tabular-nums}p.note{color:#555;font-size:0.9em}"""

MEANS_NOTE = ("Top: each set's mean over maps per component (for P(ell) and pixel histograms as a ratio to "
              "the validation mean). Bottom: the certified difference of the means, generated minus "
              "validation, in standard errors, per component; grey band: the largest |z| an independent "
              "simulation set (auxiliary vs validation) gives, the baseline; dashed: the limit.")
TESTS_NOTE = ("Per test, its value for the generated maps against the validation maps (red, dark when it "
              "fails) and for the auxiliary maps (grey, the baseline), with the limit dashed.")


def _e(x) -> str:
    return html.escape(str(x))


def _n(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _e(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:.3g}"


def _verdict(passed) -> str:
    return f'<span class="{"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span>'


def _table(head: list[str], rows: list[list[str]], row_ids: list[str] | None = None) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, r in enumerate(rows):
        rid = f' id="{_e(row_ids[i])}"' if row_ids else ""
        out.append(f"<tr{rid}>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    return "\n".join(out) + "</table>"


def verdict_table(report: dict[str, Any]) -> str:
    rows, ids = [], []
    for name, c in report["criteria"].items():
        w = worst_test(c) or {}
        rows.append([_e(name), _verdict(c.get("passed")), _e(w.get("name", "")),
                     f'<span class="num">{_n(w.get("value"))}</span>', _n(w.get("limit")), _n(w.get("baseline")),
                     _e((c.get("horizon") or {}).get("text", "n/a"))])
        ids.append(f"verdict-{name}")
    return _table(["criterion", "verdict", "worst test", "generated vs validation", "limit",
                   "baseline (auxiliary vs validation)", "horizon n* (generated maps)"], rows, ids)


def draws_section(draws: dict[str, Any] | None) -> str:
    """The verdict over independent validation/auxiliary draws (``validate --draws``), if any: per
    criterion its pass count and its worst test over the draws; the verdicts above are the first draw's."""
    if not draws:
        return ""
    rows = []
    for name, c in draws["criteria"].items():
        t = c["tests"].get(c.get("deciding") or "", {})
        rows.append([_e(name), _verdict(c["passed"]), f"{c['passes']} of {c['draws']}", _e(c.get("deciding") or ""),
                     f'<span class="num">{_n(t.get("median"))}</span>', _n(t.get("limit")),
                     f'{_e(c["worst"]["test"] or "")} {_n(c["worst"]["value"])} (draw {_n(c["worst"]["draw"])})'])
    seeds = draws.get("seeds")
    said = ("; seeds (validation, auxiliary): " + ", ".join(f"({s['validation']}, {s['auxiliary']})" for s in seeds)
            if seeds else "")
    return (f"<h2>Over {draws['k']} draws: {_verdict(draws['passed'])}</h2>"
            + _table(["criterion", "verdict", "draws passed", "deciding test", "median over draws",
                      "limit over draws", "worst single draw"], rows)
            + f'<p class="note">{_e(draws["rule"])}{_e(said)}. The verdict table above is the first draw\'s.</p>')


def _shape(shape) -> str:
    """(H, W, C) as the paper writes it, C x H x W; (K,) as K."""
    shape = list(shape or [])
    return " x ".join(map(str, shape[-1:] + shape[:-1])) if len(shape) == 3 else " x ".join(map(str, shape))


def architecture_section(arch: dict[str, Any] | None) -> str:
    if arch is None:
        return "<p>No generator was checked (the generated maps were given as a file).</p>"
    head = (f"<p>{_verdict(arch['matches'])} generator <code>{_e(arch['source'])}</code> against preset "
            f"<b>{_e(arch['preset'])}</b>: {arch['trainable']:,} trainable parameters (expected "
            f"{arch['expected_trainable']:,}), {arch['non_trainable']:,} non-trainable (expected "
            f"{arch['expected_non_trainable']:,}).</p>")
    if arch.get("mismatches"):
        head += "<ul>" + "".join(f"<li>{_e(m)}</li>" for m in arch["mismatches"]) + "</ul>"
    rows = []
    for r in arch["layers"]:
        f, x = r.get("found") or {}, r.get("expected") or {}
        rows.append([_e(r["name"]), _e(f.get("kind", x.get("kind", ""))), _shape(f.get("output_shape")),
                     _shape(x.get("output_shape")), _n(f.get("trainable")), _n(x.get("trainable")),
                     _n(f.get("non_trainable")), "yes" if r.get("matches") else '<span class="fail">no</span>'])
    cal = arch.get("calibration")
    if cal:
        rows.append([_e(cal["name"]), _e(cal["kind"]), _shape(cal["output_shape"]), "(not in the preset)",
                     _n(cal["trainable"]), "-", _n(cal["non_trainable"]), "reported apart"])
    table = _table(["layer", "kind", "output shape (C x H x W)", "expected", "trainable", "expected",
                    "non-trainable", "matches"], rows)
    if cal:
        table += f'<p class="note">{_e(arch.get("calibration_note", ""))}</p>'
    if arch.get("paper_table_1"):
        table += "<p>Table 1 of the paper, row by row:</p>" + _table(
            ["layer", "Table 1", "shape", "parameters", "printed", "agrees"],
            [[_e(t.get("name", "")), _e(t.get("table_type", "")), _e(" x ".join(map(str, t.get("shape", [])))),
              _n(t.get("params")), _e(t.get("table_params", "")), "yes" if t.get("agrees") else "no"]
             for t in arch["paper_table_1"]])
    return head + table


def criterion_section(name: str, c: dict[str, Any], report: dict[str, Any]) -> str:
    rows = [[_e(t["name"]), _verdict(t.get("passed")), _n(t.get("value")), _n(t.get("limit")),
             _n(t.get("baseline")), _e(t.get("rule", ""))] for t in c.get("criteria", [])]
    fig = criterion_figure(name, c, report)
    note = MEANS_NOTE if (c.get("detail") or {}).get("mean_z") else TESTS_NOTE
    return (f'<h3 id="criterion-{_e(name)}">{_e(name)}: {_verdict(c.get("passed"))}</h3>'
            f"<p>{_e(c.get('headline', ''))}</p>"
            + _table(["test", "verdict", "generated vs validation", "limit", "baseline", "rule"], rows)
            + f'<img alt="{_e(name)}" src="data:image/png;base64,{_png(fig)}"><p class="note">{_e(note)}</p>')


def render_html(report: dict[str, Any], *, title: str = "paper_repro certification") -> str:
    """The page of ``report`` (a dict as written to JSON), as one string with the figures inside."""
    from .. import __version__

    inputs = report.get("inputs", {})
    draws = report.get("draws")
    passed = draws["passed"] if draws else all(c.get("passed") for c in report["criteria"].values())
    sources = ", ".join(f"{_e(k)}: <code>{_e(v)}</code>" for k, v in (inputs.get("sources") or {}).items())
    parts = [
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}: '
        f'{"PASS" if passed else "FAIL"}</title><style>{CSS}</style></head><body>',
        f"<h1>{_e(title)}: {_verdict(passed)}</h1>",
        f"<p>{_n(inputs.get('n_generated'))} generated, {_n(inputs.get('n_validation'))} validation and "
        f"{_n(inputs.get('n_auxiliary'))} auxiliary maps of {_n(inputs.get('map_size'))}^2 px, "
        f"{_n(inputs.get('angle_deg'))} deg on a side; baseline: {_e(inputs.get('baseline_source', ''))}."
        + (f" Sources: {sources}." if sources else "") + "</p>",
        "<h2>Verdicts</h2>", verdict_table(report),
        '<p class="note">Each criterion passes when every one of its tests does; the worst test is the one '
        "nearest to (or furthest past) its limit. The horizon n*: up to how many generated maps (every set "
        "grown alike) the criterion would still pass, with its interval; unbounded when these maps resolve "
        "no difference from simulations.</p>",
        draws_section(draws),
        "<h2>Architecture</h2>", architecture_section(report.get("architecture")),
        "<h2>Criteria</h2>",
    ]
    parts += [criterion_section(name, c, report) for name, c in report["criteria"].items()]
    parts.append(f'<p class="note">paper_repro {_e(__version__)}; certification took '
                 f"{_n(report.get('seconds'))} s.</p></body></html>")
    return "\n".join(parts)


def write_html(report: dict[str, Any], path: str | os.PathLike, **kw) -> Path:
    """Write :func:`render_html` of ``report`` to ``path`` atomically; returns the path."""
    path = check_output(path)
    text = render_html(report, **kw)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
