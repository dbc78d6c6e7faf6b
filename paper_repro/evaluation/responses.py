"""Responses of the summary statistics to the parameters: emulated against simulated, at a centre node.

The response of a statistic's mean to a parameter at the centre node (default: the paper's
fiducial (0.26, 0.798) when it is a training node) is a central finite difference between the two
training nodes next to it along that parameter, the other parameter fixed:

    d<s>/d theta ~ (<s>(theta + h_+) - <s>(theta - h_-)) / (h_+ + h_-)

- **simulator**: the means over the two nodes' own maps (independent simulations); the standard
  error is sqrt(SE_+^2 + SE_-^2) / (h_+ + h_-), each SE cluster-robust over the node's parent maps
  (:func:`paper_repro.stats.twosample.clustered_se`), since crops of one parent are correlated;
- **emulator**: maps generated at the same two parameter points from the same seed (common random
  numbers: the same latents, or for the simulator stand-in the same parent fields), so the
  difference is taken map by map and its standard error is that of the mean per-map difference
  (clustered by the emulator's parent ids when it has them); it is far smaller than the simulator's.

Per statistic, parameter and component the report gives both responses, their ratio
emulator / simulator with a first-order error sqrt((s_e / e)^2 + (s_s / s)^2) |r|, and the
difference in units of the combined standard error. Per statistic and parameter a summary ratio:
the least-squares amplitude A of the emulated response against the simulated one,
A = sum(e s / v) / sum(s^2 / v) with v = s_e^2 + s_s^2, its error from the full cluster-robust
covariances of both responses (the components of one statistic share parent maps, so their errors
are correlated), and the number of components whose ratio is within 10% of 1.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import PaperReproError
from ..stats.twosample import cluster_codes
from .emulators import STATISTICS

#: parameters, in the order of a grid node's (Omega_m, sigma_8)
PARAMETERS = ("Omega_m", "sigma_8")
#: the paper's fiducial cosmology
FIDUCIAL = (0.26, 0.798)
#: a ratio within this of 1 counts as agreeing (the issue's goal: 10%)
RATIO_TOLERANCE = 0.10


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def neighbours(nodes: list[dict], centre=None) -> dict:
    """The centre node and, per parameter, its neighbours (lower, upper) among training ``nodes``
    (manifest entries with name, Omega_m, sigma_8). ``centre`` (Omega_m, sigma_8): default the
    fiducial if it is a node with neighbours on all sides, else the node with them nearest the box's
    centre. Returns {"centre": node, "Omega_m": (lo, hi), "sigma_8": (lo, hi)}."""
    if not nodes:
        raise PaperReproError("responses need training nodes; the grid has none")

    def around(c: dict) -> dict | None:
        out = {"centre": c}
        for j, name in enumerate(PARAMETERS):
            other = PARAMETERS[1 - j]
            line = [n for n in nodes if _close(n[other], c[other])]
            lo = [n for n in line if n[name] < c[name] and not _close(n[name], c[name])]
            hi = [n for n in line if n[name] > c[name] and not _close(n[name], c[name])]
            if not lo or not hi:
                return None
            out[name] = (max(lo, key=lambda n: n[name]), min(hi, key=lambda n: n[name]))
        return out

    if centre is not None:
        om, s8 = (float(v) for v in centre)
        match = [n for n in nodes if _close(n["Omega_m"], om) and _close(n["sigma_8"], s8)]
        if not match:
            raise PaperReproError(f"centre ({om:g}, {s8:g}) is not a training node of the grid")
        found = around(match[0])
        if found is None:
            raise PaperReproError(f"centre ({om:g}, {s8:g}) lacks a neighbouring node on some side "
                                  f"(central differences need both)")
        return found
    candidates = [a for a in map(around, nodes) if a is not None]
    if not candidates:
        raise PaperReproError("no training node has neighbours on all sides: responses need a grid of at "
                              "least 3 x 3 nodes")
    for a in candidates:
        if _close(a["centre"]["Omega_m"], FIDUCIAL[0]) and _close(a["centre"]["sigma_8"], FIDUCIAL[1]):
            return a
    om = [n["Omega_m"] for n in nodes]
    s8 = [n["sigma_8"] for n in nodes]
    mid = (0.5 * (min(om) + max(om)), 0.5 * (min(s8) + max(s8)))
    return min(candidates, key=lambda a: ((a["centre"]["Omega_m"] - mid[0]) / (max(om) - min(om))) ** 2
               + ((a["centre"]["sigma_8"] - mid[1]) / (max(s8) - min(s8))) ** 2)


def mean_cov(values, groups=None) -> np.ndarray:
    """Cluster-robust covariance (K, K) of the column means of ``values`` (N, K), clusters = parent ids
    (None: independent maps, giving cov / N): G / (G - 1) sum_g s_g s_g^T / N^2, s_g the cluster's
    summed residuals. Its diagonal is :func:`paper_repro.stats.twosample.clustered_se` squared."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    resid = x - x.mean(axis=0)
    codes = cluster_codes(groups, n)
    sums = resid if codes is None else np.eye(int(codes.max()) + 1)[codes].T @ resid     # (G, K) per cluster
    g = len(sums)
    return g / (g - 1.0) * (sums.T @ sums) / n ** 2


def simulator_response(lo, hi, step: float, lo_groups=None, hi_groups=None) -> tuple[np.ndarray, np.ndarray]:
    """(response (K,), its covariance (K, K)) from two independent sets' statistics (N, K), ``step``
    apart in the parameter; clustered by the parent ids given."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    d = (hi.mean(axis=0) - lo.mean(axis=0)) / step
    return d, (mean_cov(hi, hi_groups) + mean_cov(lo, lo_groups)) / step ** 2


def paired_response(lo, hi, step: float, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """(response (K,), its covariance (K, K)) from the statistics (N, K) of the same N draws (common
    random numbers) at two points ``step`` apart: the mean of the per-map differences, clustered."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if lo.shape != hi.shape:
        raise PaperReproError(f"paired response: the two points' statistics differ in shape, {lo.shape} and {hi.shape}")
    diff = (hi - lo) / step
    return diff.mean(axis=0), mean_cov(diff, groups)


def compare(emulated, emulated_cov, simulated, simulated_cov) -> dict:
    """Per component: ratio emulated / simulated, its first-order error, and z of the difference;
    plus the summary amplitude (module docstring), whose error uses the components' covariances
    (K, K) (a 1-D argument is taken for standard errors of independent components). Lists of plain
    floats (NaN: undefined)."""
    e, s = np.asarray(emulated, float), np.asarray(simulated, float)
    ce, cs = (np.diag(np.square(c)) if np.ndim(c) == 1 else np.asarray(c, float) for c in (emulated_cov, simulated_cov))
    se, ss = np.sqrt(np.diag(ce)), np.sqrt(np.diag(cs))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s != 0, e / s, np.nan)
        ratio_se = np.abs(ratio) * np.hypot(np.where(e != 0, se / e, np.nan), ss / np.abs(s))
        var = se ** 2 + ss ** 2
        z = np.where(var > 0, (e - s) / np.sqrt(var), np.nan)
        w = np.where(var > 0, 1.0 / var, 0.0)
        norm = np.sum(w * s ** 2)
        amp = float(np.sum(w * e * s) / norm) if norm > 0 else math.nan
        a = w * s / norm if norm > 0 else np.zeros_like(s)
        amp_se = float(np.sqrt(a @ (ce + amp ** 2 * cs) @ a)) if norm > 0 else math.nan
    within = np.abs(ratio - 1.0) <= RATIO_TOLERANCE
    return {
        "emulator": e.tolist(), "emulator_se": se.tolist(), "simulator": s.tolist(), "simulator_se": ss.tolist(),
        "ratio": ratio.tolist(), "ratio_se": ratio_se.tolist(), "z": z.tolist(),
        "amplitude": amp, "amplitude_se": amp_se,
        "within_10_percent": int(within.sum()), "components": int(len(s)),
    }


def responses(sim_stats: dict, emu_stats: dict, nodes: list[dict], centre=None, *,
              sim_groups: dict | None = None, emu_groups=None) -> dict:
    """The response report at the centre node.

    ``sim_stats`` {node name: {statistic: (labels, (N, K))}} of the simulator's node maps (at least
    the centre's neighbours); ``emu_stats`` the same for the emulator's maps at those nodes'
    parameters, one seed for every node (paired draws); ``sim_groups`` {node name: parent ids},
    ``emu_groups`` the emulator's parent ids (None: independent maps)."""
    around = neighbours(nodes, centre)
    sim_groups = sim_groups or {}
    c = around["centre"]
    out = {"centre": {"name": c["name"], "Omega_m": c["Omega_m"], "sigma_8": c["sigma_8"]},
           "tolerance": RATIO_TOLERANCE, "neighbours": {}, "statistics": {}}
    for name in PARAMETERS:
        lo, hi = around[name]
        out["neighbours"][name] = {"lower": lo["name"], "upper": hi["name"], "step": hi[name] - lo[name]}
    for stat in STATISTICS:
        entry = {}
        for name in PARAMETERS:
            lo, hi = around[name]
            step = hi[name] - lo[name]
            for node in (lo, hi):
                if node["name"] not in sim_stats or node["name"] not in emu_stats:
                    raise PaperReproError(f"responses: no statistics of node {node['name']}")
            labels = sim_stats[lo["name"]][stat][0]
            s, ss = simulator_response(sim_stats[lo["name"]][stat][1], sim_stats[hi["name"]][stat][1], step,
                                       sim_groups.get(lo["name"]), sim_groups.get(hi["name"]))
            e, se = paired_response(emu_stats[lo["name"]][stat][1], emu_stats[hi["name"]][stat][1], step, emu_groups)
            entry["labels"] = labels
            entry[name] = compare(e, se, s, ss)
        out["statistics"][stat] = entry
    return out


def fmt(x, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, n/a when undefined."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def markdown(report: dict) -> str:
    """The response report as a markdown table (per statistic, component and parameter)."""
    c = report["centre"]
    lines = [f"# Responses at ({c['Omega_m']:g}, {c['sigma_8']:g}) ({c['name']})", "",
             "Central differences between neighbouring nodes "
             + ", ".join(f"{k}: {v['lower']} and {v['upper']} (step {v['step']:.3g})"
                         for k, v in report["neighbours"].items())
             + ". Ratio = emulator / simulator with its error; z = (emulator - simulator) / combined SE.", "",
             "| statistic | parameter | summary amplitude | ratios within 10% |", "|---|---|---|---|"]
    for stat, entry in report["statistics"].items():
        for p in PARAMETERS:
            r = entry[p]
            lines.append(f"| {stat} | {p} | {fmt(r['amplitude'])} +/- {fmt(r['amplitude_se'], 2)} | "
                         f"{r['within_10_percent']} of {r['components']} |")
    lines += ["", "| statistic | component | parameter | simulator | emulator | ratio | z |", "|---|---|---|---|---|---|---|"]
    for stat, entry in report["statistics"].items():
        for k, label in enumerate(entry["labels"]):
            for p in PARAMETERS:
                r = entry[p]
                lines.append(f"| {stat} | {label} | {p} | {fmt(r['simulator'][k])} +/- {fmt(r['simulator_se'][k], 2)} | "
                             f"{fmt(r['emulator'][k])} +/- {fmt(r['emulator_se'][k], 2)} | "
                             f"{fmt(r['ratio'][k])} +/- {fmt(r['ratio_se'][k], 2)} | {fmt(r['z'][k], 2)} |")
    return "\n".join(lines) + "\n"


__all__ = ["PARAMETERS", "FIDUCIAL", "RATIO_TOLERANCE", "neighbours", "mean_cov", "simulator_response", "paired_response",
           "compare", "responses", "fmt", "markdown"]
