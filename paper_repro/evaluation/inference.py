"""Parameter recovery: (Omega_m, sigma_8) of an observed set of maps, by a Gaussian likelihood on a grid.

**Observation.** The mean data vector d (P(ell) bands and peak counts, :func:`.emulators.science_statistics`)
of a survey of M maps: a held-out node's validation maps, all of them. Its covariance is that of a
mean of M crops that share parent fields, Cov(d) = D C(theta) D / M: C the per-map covariance at
theta (from the model) and D = diag(sqrt(deff)), deff_k the *design effect* of component k, the
ratio of the cluster-robust variance of a mean over parent maps to the naive var / M. The design
effect is a property of the survey (crops per parent, crop size), not of the model; it is measured
on the simulator's training nodes, whose sets are cut like the observation (mean over nodes).

**Model** of the mean and covariance as functions of theta, from maps at the training nodes
(:class:`DataModel`): the simulator's own node maps, or an emulator's maps generated at the nodes'
parameters (one seed for every node: common random numbers, so the node means share their noise and
the fitted surface is smooth).

- mean: per component a polynomial of total degree ``degree`` (default 3: 10 terms) in the
  logarithms of the parameters mapped to [-1, 1] over the grid's box, least squares over the nodes,
  fitted to the log of the mean for components positive at every node (a power law in the
  parameters is then exact, and the higher terms take its running; on the ``cosmo-grid`` preset with
  the simulator as the model, degree 2 missed the high-peak counts at the edge node (0.35, 0.835)
  by 2-3 standard errors, chi^2 110 for 19 components at the truth, degree 3 gave 19);
- covariance: the per-map covariance at the nodes, interpolated bilinearly over the rectangular grid
  (a convex combination of covariance matrices, so always positive definite), constant beyond it;
- the fitted mean's own noise is added to the likelihood's covariance: h(theta) D_m C D_m / n for
  independent node sets (h the fit's leverage, D_m the model's design effect, n maps per node), the
  full D_m C D_m / n for paired nodes (common random numbers: the noise is shared, the fit cannot
  average it down). D_m is 1 for independent maps (a generator's); for maps cut from parent fields
  it is measured like the survey's, and an emulator whose maps are cut like the grid's sets (the
  simulator stand-in) takes the survey's, measured on many more independent parents than its own.

**Likelihood**: -2 ln L = r^T Psi r with r = d - mu(theta) and Psi = (n - K - 2) / (n - 1) x
(Cov(d) + fit noise)^-1 (Hartlap et al. 2007, n the maps behind one node's covariance, K the
components), the covariance taken at a fixed theta* and iterated (theta* = the box centre, then the
posterior mean, three passes); flat prior on the grid's box widened by ``margin`` of its width on
each side (the held-out edge node must not sit at the prior's edge). The posterior is evaluated on a
fine grid, the last passes zoomed to the posterior mean +/- 6 sd. Reported: posterior mean, sd and
correlation, the bias (mean - truth) / sd per parameter, and the posterior mass more probable than
the truth (0.39 at the 1-sigma contour of a 2-D Gaussian, 0.86 at 2 sigma), and the share of the
posterior variance owed to the model's own noise (a bias in sd is diluted by it: with 4,000 emulated
maps a node it was 0.41 of the ``cpu64-shape`` emulator's variance at a held-out node, 0.15 with
16,000; the report flags shares above ``NOISY_MODEL``). The ratio of two
models' posterior widths is taken without the fitted means' noise (``sd_survey``: the survey's
covariance alone), so that it compares what the models predict, not how many maps made them.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..errors import PaperReproError
from ..stats.twosample import clustered_se
from .responses import fmt as _f

#: a model owing more than this share of its posterior variance to its own noise is flagged in the report
NOISY_MODEL = 0.25
#: parameters of the likelihood, in the order of a node's (Omega_m, sigma_8)
PARAMETERS = ("Omega_m", "sigma_8")


def summarise(values, groups=None) -> dict:
    """One node's statistic (N, K): mean (K,), per-map covariance (K, K), n, and design effect (K,):
    the cluster-robust variance of the mean over the naive var / N (1 for independent maps)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 3:
        raise PaperReproError(f"a node's data vectors must be (N >= 3, K), found shape {x.shape}")
    n = x.shape[0]
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    naive = np.diag(cov) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = np.ones(x.shape[1]) if groups is None else np.where(naive > 0, clustered_se(x, groups) ** 2 / naive, 1.0)
    return {"mean": x.mean(axis=0), "cov": cov, "n": n, "deff": deff}


def _basis(u: np.ndarray, degree: int) -> np.ndarray:
    """Monomials u0^a u1^b, a + b <= degree, of points u (G, 2): (G, terms)."""
    cols = [u[:, 0] ** a * u[:, 1] ** b for a, b in itertools.product(range(degree + 1), repeat=2) if a + b <= degree]
    return np.stack(cols, axis=1)


def check_degree(degree: int, n_nodes: int) -> None:
    """A one-line error unless ``n_nodes`` nodes can fit a polynomial of total degree ``degree`` in 2 parameters."""
    terms = (degree + 1) * (degree + 2) // 2
    if not (isinstance(degree, (int, np.integer)) and degree >= 1):
        raise PaperReproError(f"the fit's degree must be a positive integer, got {degree!r}")
    if n_nodes < terms:
        raise PaperReproError(f"a degree-{degree} fit needs at least {terms} nodes, got {n_nodes}")


class DataModel:
    """Mean and covariance of the data vector as functions of (Omega_m, sigma_8), from node summaries
    (:func:`summarise`) at ``params`` (nodes, 2); ``box`` (low, high) of the parameters; ``paired``:
    node maps drawn with common random numbers; ``design_effect`` (K,) of a node's mean, when known
    better than from the nodes' own parents (default: their mean over the nodes). Module docstring
    for the scheme."""

    def __init__(self, params, summaries: list[dict], box, *, degree: int = 3, paired: bool = False,
                 design_effect=None, name: str = "model"):
        self.params = np.asarray(params, dtype=np.float64)
        if self.params.ndim != 2 or self.params.shape[1] != 2 or len(self.params) != len(summaries):
            raise PaperReproError(f"a data model needs one (Omega_m, sigma_8) per node summary, got "
                                  f"{self.params.shape} for {len(summaries)} summaries")
        if not np.all(self.params > 0):
            raise PaperReproError("a data model needs positive parameters (Omega_m, sigma_8)")
        self.low, self.high = (np.asarray(b, dtype=np.float64) for b in box)
        self.degree, self.paired, self.name = int(degree), bool(paired), name
        means = np.stack([s["mean"] for s in summaries])
        covs = np.stack([s["cov"] for s in summaries])
        self.n = int(min(s["n"] for s in summaries))
        self.k = means.shape[1]
        check_degree(self.degree, len(summaries))
        if self.n < self.k + 3:
            raise PaperReproError(f"{self.k} components need more than {self.k + 2} maps per node for an "
                                  f"invertible covariance, got {self.n}")
        self.deff = (np.mean([s["deff"] for s in summaries], axis=0) if design_effect is None
                     else np.asarray(design_effect, dtype=np.float64))
        self.log = (means > 0).all(axis=0)
        x = _basis(self.u(self.params), self.degree)
        y = np.where(self.log, np.log(np.where(self.log, means, 1.0)), means)
        self.coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        self.xtx_inv = np.linalg.pinv(x.T @ x)
        self.residuals = y - x @ self.coef
        om, s8 = np.unique(self.params[:, 0]), np.unique(self.params[:, 1])
        self._grid = None
        if len(om) * len(s8) == len(self.params) and len(om) > 1 and len(s8) > 1:
            from scipy.interpolate import RegularGridInterpolator

            cube = np.empty((len(om), len(s8), self.k, self.k))
            for (a, b), c in zip(self.params, covs):
                cube[np.searchsorted(om, a), np.searchsorted(s8, b)] = c
            self._grid = RegularGridInterpolator((om, s8), cube, method="linear")
            self._edges = (om, s8)
        self._covs = covs

    def u(self, theta) -> np.ndarray:
        """Parameters (G, 2) as logarithms mapped to [-1, 1] over the box (a power law is then linear)."""
        lo, hi = np.log(self.low), np.log(self.high)
        return 2.0 * (np.log(np.atleast_2d(theta)) - lo) / (hi - lo) - 1.0

    def mean(self, theta) -> np.ndarray:
        """Model mean data vectors (G, K) at parameter points (G, 2)."""
        y = _basis(self.u(theta), self.degree) @ self.coef
        return np.where(self.log, np.exp(np.where(self.log, y, 0.0)), y)

    def cov(self, theta) -> np.ndarray:
        """Per-map covariance (K, K) at one parameter point: bilinear over the node grid (clipped to
        it), else the nearest node's."""
        t = np.asarray(theta, dtype=np.float64).reshape(2)
        if self._grid is not None:
            om, s8 = self._edges
            return self._grid([[np.clip(t[0], om[0], om[-1]), np.clip(t[1], s8[0], s8[-1])]])[0]
        return self._covs[int(np.argmin(np.sum((self.u(self.params) - self.u(t)) ** 2, axis=1)))]

    def fit_cov(self, theta) -> np.ndarray:
        """Covariance (K, K) of the fitted mean at ``theta`` (module docstring), in data units."""
        d = np.sqrt(self.deff)
        node = self.cov(theta) * np.outer(d, d) / self.n
        if self.paired:
            return node
        x = _basis(self.u(theta), self.degree)[0]
        return float(x @ self.xtx_inv @ x) * node

    def fit_quality(self) -> dict:
        """RMS fit residual per component over the nodes (in log units where fitted in log)."""
        return {"rms_residual": np.sqrt(np.mean(self.residuals ** 2, axis=0)).tolist(),
                "log_fit": self.log.tolist(), "degree": self.degree}


def hartlap(n: int, k: int) -> float:
    """Hartlap et al. (2007) factor (n - k - 2) / (n - 1) for an inverse covariance from n samples."""
    if n < k + 3:
        raise PaperReproError(f"an inverse covariance of {k} components needs more than {k + 2} samples, got {n}")
    return (n - k - 2.0) / (n - 1.0)


def _moments(grid_om, grid_s8, post) -> tuple[np.ndarray, np.ndarray]:
    w = post / post.sum()
    om, s8 = np.meshgrid(grid_om, grid_s8, indexing="ij")
    mean = np.array([np.sum(w * om), np.sum(w * s8)])
    d = np.stack([om - mean[0], s8 - mean[1]])
    cov = np.einsum("aij,bij,ij->ab", d, d, w)
    return mean, cov


def _spread_cov(model: DataModel, theta) -> np.ndarray:
    """The model's per-map covariance at ``theta``; a component without spread there is a one-line error
    (a node set too small to vary in it, e.g. no high peaks in a few maps at low sigma_8)."""
    cov = model.cov(theta)
    flat = np.flatnonzero(~(np.diag(cov) > 0))
    if len(flat):
        raise PaperReproError(f"model {model.name!r} has no spread in component {int(flat[0])} of the data vector at "
                              f"({theta[0]:.4g}, {theta[1]:.4g}): its node sets there are too small")
    return cov


def posterior(observed, n_obs: int, design_effect, model: DataModel, *, margin: float = 0.25,
              n_grid: int = 121, passes: int = 3, model_noise: bool = True) -> dict:
    """The posterior of (Omega_m, sigma_8) for the mean data vector ``observed`` (K,) of ``n_obs``
    maps (module docstring); ``model_noise`` False leaves the fitted mean's noise out (the survey's
    covariance alone: the information the model predicts, for comparing widths). A posterior narrower
    than two cells of its grid is flagged ``resolved`` False (its sd is then a grid artefact). Returns mean, sd, correlation, covariance and the last grid
    (``grid_Omega_m``, ``grid_sigma_8``, ``density`` normalised to sum 1), as numpy arrays."""
    d = np.asarray(observed, dtype=np.float64)
    deff = np.asarray(design_effect, dtype=np.float64)
    if d.shape != (model.k,) or deff.shape != (model.k,) or not np.isfinite(d).all():
        raise PaperReproError(f"observed data vector: expected {model.k} finite components, found shape {d.shape}")
    if not (isinstance(n_obs, (int, np.integer)) and n_obs >= 1):
        raise PaperReproError(f"the survey's number of maps must be positive, got {n_obs!r}")
    width = model.high - model.low
    lo, hi = model.low - margin * width, model.high + margin * width
    window = (lo.copy(), hi.copy())
    centre = 0.5 * (model.low + model.high)
    factor = hartlap(model.n, model.k)
    scale = np.sqrt(np.diag(_spread_cov(model, centre)))     # components in units of their spread: a well-scaled solve
    for _ in range(passes):
        dd = np.sqrt(deff)
        total = _spread_cov(model, centre) * np.outer(dd, dd) / n_obs + (model.fit_cov(centre) if model_noise else 0.0)
        psi = factor * np.linalg.inv(total / np.outer(scale, scale))
        g_om = np.linspace(window[0][0], window[1][0], n_grid)
        g_s8 = np.linspace(window[0][1], window[1][1], n_grid)
        pts = np.stack(np.meshgrid(g_om, g_s8, indexing="ij"), axis=-1).reshape(-1, 2)
        r = (d - model.mean(pts)) / scale
        chi2 = np.sum((r @ psi) * r, axis=1).reshape(n_grid, n_grid)
        post = np.exp(-0.5 * (chi2 - chi2.min()))
        mean, cov = _moments(g_om, g_s8, post)
        sd = np.sqrt(np.diag(cov))
        steps = np.array([g_om[1] - g_om[0], g_s8[1] - g_s8[0]])
        centre = mean
        half = np.maximum(6 * sd, 4 * steps)            # never narrower than a few cells of this grid
        window = (np.maximum(lo, mean - half), np.minimum(hi, mean + half))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = float(cov[0, 1] / (sd[0] * sd[1]))
    return {"mean": mean, "sd": sd, "cov": cov, "correlation": rho,
            "chi2_min": float(chi2.min()), "components": model.k, "resolved": bool(np.all(sd > 2 * steps)),
            "grid_Omega_m": g_om, "grid_sigma_8": g_s8, "density": post / post.sum(),
            "prior_low": lo, "prior_high": hi}


def mass_above(post: dict, point) -> float:
    """The posterior mass on grid points more probable than ``point`` (its density interpolated);
    for a 2-D Gaussian 1 - exp(-m^2 / 2) at Mahalanobis distance m."""
    from scipy.interpolate import RegularGridInterpolator

    dens = post["density"]
    f = RegularGridInterpolator((post["grid_Omega_m"], post["grid_sigma_8"]), dens, bounds_error=False, fill_value=0.0)
    at = float(f([np.asarray(point, dtype=np.float64)])[0])
    return float(dens[dens > at].sum())


def recovery(post: dict, truth, survey: dict | None = None) -> dict:
    """Plain numbers of a posterior against the true parameters: mean, sd, bias in sd, mass above the
    truth; with ``survey`` (the posterior without the model's noise) its sd and correlation too, and
    per parameter the share of the posterior variance owed to the model's noise, 1 - (sd_survey / sd)^2."""
    t = np.asarray(truth, dtype=np.float64)
    out = {"truth": dict(zip(PARAMETERS, t.tolist()))}
    for j, name in enumerate(PARAMETERS):
        sd = float(post["sd"][j])
        out[name] = {"mean": float(post["mean"][j]), "sd": sd,
                     "bias_sd": float((post["mean"][j] - t[j]) / sd) if sd > 0 else math.nan}
        if survey is not None:
            out[name]["sd_survey"] = float(survey["sd"][j])
            # the share of the posterior variance owed to the model's own noise (the maps behind its mean)
            out[name]["model_noise_share"] = float(np.clip(1 - (survey["sd"][j] / sd) ** 2, 0, 1)) if sd > 0 else math.nan
    out["correlation"] = post["correlation"]
    if survey is not None:
        out["correlation_survey"] = survey["correlation"]
    out["mass_above_truth"] = mass_above(post, t)
    out["chi2_min"], out["components"], out["resolved"] = post["chi2_min"], post["components"], post["resolved"]
    return out


def compare_models(results: dict) -> dict:
    """Width ratios (each model over ``simulator``) per parameter and of the 2-D areas (sqrt det), from
    the survey-only posteriors (``sd_survey``) where :func:`recovery` has them."""
    sim = results.get("simulator")
    out = {}

    def sd(x, p):
        return x[p].get("sd_survey", x[p]["sd"])

    def area(x):
        rho = x.get("correlation_survey", x["correlation"])
        return sd(x, "Omega_m") * sd(x, "sigma_8") * math.sqrt(max(1 - rho ** 2, 0.0)) if math.isfinite(rho) else math.nan

    def ratio(a, b):
        return a / b if b > 0 else math.nan

    for name, r in results.items():
        if name == "simulator" or sim is None:
            continue
        out[name] = {p: ratio(sd(r, p), sd(sim, p)) for p in PARAMETERS}
        out[name]["area"] = ratio(area(r), area(sim))
    return out


def markdown(report: dict) -> str:
    """The recovery report as markdown: one row per held-out node and model, then the width ratios."""
    lines = ["# Parameter recovery at the held-out nodes", "",
             f"Observation: the mean data vector ({', '.join(report['data_vector'])}) of each held-out node's "
             f"validation maps; Gaussian likelihood on a grid (Hartlap factor), flat prior on the grid's box "
             f"widened by {report['margin']:g} of its width on each side.", ""]
    if report.get("models"):
        lines += ["Models:", "", *(f"- {name}: {text}" for name, text in report["models"].items()), ""]
    lines += ["| node | truth | model | Omega_m | sigma_8 | bias (sd) | sd without model noise | model noise, share of the "
              "variance | mass above truth | chi2 / K |", "|---|---|---|---|---|---|---|---|---|---|"]
    noisy = []
    for node in report["nodes"]:
        t = node["truth"]
        for model, r in node["models"].items():
            lines.append(f"| {node['name']} | ({t['Omega_m']:g}, {t['sigma_8']:g}) | {model} | "
                         f"{_f(r['Omega_m']['mean'], 4)} +/- {_f(r['Omega_m']['sd'], 2)} | "
                         f"{_f(r['sigma_8']['mean'], 4)} +/- {_f(r['sigma_8']['sd'], 2)} | "
                         f"{_f(r['Omega_m']['bias_sd'], 2)}, {_f(r['sigma_8']['bias_sd'], 2)} | "
                         f"{_f(r['Omega_m'].get('sd_survey'), 2)}, {_f(r['sigma_8'].get('sd_survey'), 2)} | "
                         f"{_f(r['Omega_m'].get('model_noise_share'), 2)}, {_f(r['sigma_8'].get('model_noise_share'), 2)} | "
                         f"{_f(r['mass_above_truth'], 2)} | {_f(r['chi2_min'], 3)} / {r['components']} |")
            if max(r[p].get("model_noise_share", 0) for p in PARAMETERS) > NOISY_MODEL:
                noisy.append(f"{model} at {node['name']}")
        for model, reason in node.get("not_computed", {}).items():
            lines.append(f"| {node['name']} | ({t['Omega_m']:g}, {t['sigma_8']:g}) | {model} | not computed: {reason} "
                         f"| | | | | | |")
    if noisy:
        lines += ["", f"More than {NOISY_MODEL:.0%} of the posterior variance is the model's own noise for "
                      f"{', '.join(noisy)}: its bias in sd is diluted by that noise; more maps behind the model "
                      f"(an emulator's --n-maps) sharpen it."]
    ratios = [(node["name"], m, w) for node in report["nodes"] for m, w in node.get("width_ratio", {}).items()]
    if ratios:
        lines += ["", "Width ratios without the models' noise (the survey's covariance alone):", "",
                  "| node | model / simulator | sd ratio Omega_m | sd ratio sigma_8 | area ratio |", "|---|---|---|---|---|"]
        lines += [f"| {n} | {m} | {_f(w['Omega_m'])} | {_f(w['sigma_8'])} | {_f(w['area'])} |" for n, m, w in ratios]
    return "\n".join(lines) + "\n"


__all__ = ["PARAMETERS", "NOISY_MODEL", "summarise", "check_degree", "DataModel", "hartlap", "posterior", "mass_above", "recovery",
           "compare_models", "markdown"]
