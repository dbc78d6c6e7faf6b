"""Typed settings of the certification (criteria, novelty tests, horizon): part of
:mod:`paper_repro.config`, which re-exports them, kept apart for size."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import require as _check


# --- certification settings (paper_repro.evaluation, validation/) ------------------------------
@dataclass(frozen=True)
class CertificationConfig:
    """Every criterion and tolerance of the certification, in one place (paper_repro.evaluation).

    A statistic passes when the generated maps are no more distinguishable from the validation
    maps than an independent auxiliary simulation set is (the baseline; paper Sect. 3.1, Fig. 4),
    within these tolerances. Why not the paper's "p > 0.99 in 236 of 248 modes": under the null a
    valid p-value is uniform, so such tallies are reported (``tally_levels``) but never required.
    """

    # bootstrap (paper Sect. 3.1: bootstrapped two-sample KS and AD tests, per component)
    bootstrap_maps: int = 500        # n: maps drawn without replacement from each set per replicate
                                     # (capped at half the smallest set); fixes the tests' sensitivity, the
                                     # same n for the generated and the baseline comparison
    bootstrap_replicates: int = 100  # R: replicates; a component's reported p is the median over R (paper)
    min_maps: int = 50               # a set with fewer maps is bad input (CLI exit 2)
    alpha: float = 0.05              # per-component test level of the rejection fraction
    # criterion "rejection fraction" (KS and AD separately): fraction of tested components with p < alpha,
    # averaged over the replicates; generated <= baseline + the larger of reject_margin and
    # reject_margin_sigmas x the baseline's spread over its replicates x sqrt(2 / its parent maps) (how much
    # the fraction moves with the parents drawn; crops of few parent maps make it large; without parent
    # ids the floor; measured in paper_repro.evaluation.criteria.replicate_spread)
    reject_margin: float = 0.05
    reject_margin_sigmas: float = 3.0
    # criterion "Holm": the valid bootstrap p of a component is min(1, 2 x median p) (Meng 1994;
    # Vovk & Wang 2020); Holm-adjusted across components, the smallest must be >= holm_level
    holm_level: float = 0.01
    # criterion "correlation" (statistics with a correlation matrix, the power spectrum: paper Fig. 4):
    # the corr_quantile of |C_gen - C_val| over off-diagonal pairs <= corr_factor x the baseline's
    # (the baseline scaled by sqrt((1/n_gen + 1/n_val) / (1/n_aux + 1/n_val)) for unequal set sizes)
    corr_quantile: float = 0.99
    corr_factor: float = 1.5
    # criterion "mean": |mean_gen - mean_val| <= mean_k_sigma standard errors, every component
    mean_k_sigma: float = 4.0
    # reported only: the paper-style tallies "bootstrap median p > level in k of K components"
    tally_levels: tuple = (0.99, 0.95, 0.9, 0.8)
    # criterion "peak_counts": peaks and minima of the maps smoothed by a Gaussian of this std (arcmin),
    # binned in kappa / sigma of the smoothed validation maps (paper_repro.stats.peaks); rules as "mean" etc.
    peak_smoothing_arcmin: float = 1.0
    # criterion "covariance" (P(ell) in cov_bands log bands, Minkowski functionals, peak counts): per
    # statistic the largest and the rms |R_gen - R_val| off the diagonal <= cov_corr_factor x the
    # baseline's, the largest |ln var_gen / var_val| <= cov_variance_factor x the baseline's (both scaled
    # for set sizes as corr_factor); factors from independent simulation sets (paper_repro.stats.covariance)
    cov_corr_factor: float = 2.5
    cov_variance_factor: float = 4.0
    cov_bands: int = 12
    # checkpoint selection (paper Sect. 2.3): chi-square distance of per-component histograms
    chi2_bins: int = 20
    seed: int = 0                    # the bootstrap's random seed

    def __post_init__(self) -> None:
        _check(self.bootstrap_maps >= 2, f"bootstrap_maps must be >= 2, got {self.bootstrap_maps}")
        _check(self.bootstrap_replicates >= 1,
               f"bootstrap_replicates must be >= 1, got {self.bootstrap_replicates}")
        _check(self.min_maps >= 2, f"min_maps must be >= 2, got {self.min_maps}")
        for name in ("alpha", "holm_level", "corr_quantile"):
            v = getattr(self, name)
            _check(0.0 < v < 1.0, f"{name} must be in (0, 1), got {v}")
        _check(0.0 <= self.reject_margin <= 1.0, f"reject_margin must be in [0, 1], got {self.reject_margin}")
        _check(self.reject_margin_sigmas >= 0, f"reject_margin_sigmas must be >= 0, got {self.reject_margin_sigmas}")
        _check(self.corr_factor > 0, f"corr_factor must be > 0, got {self.corr_factor}")
        _check(self.mean_k_sigma > 0, f"mean_k_sigma must be > 0, got {self.mean_k_sigma}")
        _check(all(0.0 < v < 1.0 for v in self.tally_levels),
               f"tally_levels must be in (0, 1), got {self.tally_levels}")
        _check(self.chi2_bins >= 2, f"chi2_bins must be >= 2, got {self.chi2_bins}")
        _check(self.peak_smoothing_arcmin >= 0,
               f"peak_smoothing_arcmin must be >= 0, got {self.peak_smoothing_arcmin}")
        _check(self.cov_corr_factor > 0 and self.cov_variance_factor > 0,
               f"cov_corr_factor and cov_variance_factor must be > 0, got {self.cov_corr_factor}, "
               f"{self.cov_variance_factor}")
        _check(self.cov_bands >= 1, f"cov_bands must be >= 1, got {self.cov_bands}")
        object.__setattr__(self, "tally_levels", tuple(float(v) for v in self.tally_levels))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- novelty settings (paper_repro.stats) --------------------------------------------------------
@dataclass(frozen=True)
class NoveltyConfig:
    """Nearest-neighbour, memorisation, birthday-paradox and slerp settings (Sect. 3.2)."""

    birthday_batch: int = 32768           # Sect. 3.2: "batches of 32k maps"
    birthday_pairs: int = 10              # closest pairs reported per space
    duplicate_quantile: float = 0.01      # near-duplicate threshold: this quantile of reference NN distances
    alpha: float = 0.01                   # level of the memorisation and birthday tests (ours)
    prefilter_candidates: int = 64        # references per query checked exactly by the invariant search
    prefilter_modes: int = 2048           # lowest-|k| Fourier modes in the invariant search's lower bound
    slerp_steps: int = 16                 # maps along one slerp path (Fig. 8 shows 8 to 16)
    slerp_max_step: float = 0.5           # smooth: largest step of a statistic < this x its spread
    slerp_random_maps: int = 256          # random maps that set each statistic's spread
    block_bytes: int = 256 * 2**20        # working-memory bound of one block of maps
    memorisation_maps: int = 4000         # generated maps searched by the certification's memorisation test
                                          # (a random subset if there are more; all 4,000 so that 2% copies fail)
    copying_tail_sigma: float = 8.0       # robust sigmas by which a set must stand out (memorisation test)
    copying_modes: int = 512              # lowest-|k| Fourier modes whose orbit-sorted amplitudes are the
                                          # copying test's shift/flip-invariant features

    def __post_init__(self) -> None:
        for name in ("birthday_batch", "birthday_pairs", "prefilter_candidates", "prefilter_modes",
                     "slerp_random_maps", "block_bytes", "memorisation_maps", "copying_modes"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, f"{name} must be a positive integer, got {v!r}")
        _check(isinstance(self.slerp_steps, int) and self.slerp_steps >= 2,
               f"slerp_steps must be an integer >= 2, got {self.slerp_steps!r}")
        _check(0.0 < self.duplicate_quantile < 1.0,
               f"duplicate_quantile must be in (0, 1), got {self.duplicate_quantile!r}")
        _check(0.0 < self.alpha < 1.0, f"alpha must be in (0, 1), got {self.alpha!r}")
        _check(self.copying_tail_sigma > 0, f"copying_tail_sigma must be > 0, got {self.copying_tail_sigma!r}")
        _check(self.slerp_max_step > 0, f"slerp_max_step must be > 0, got {self.slerp_max_step!r}")


# --- horizon settings (paper_repro.evaluation.horizon) -------------------------------------------
@dataclass(frozen=True)
class HorizonConfig:
    """How the indistinguishability horizon n* of each criterion is estimated (reported, never a verdict)."""

    null_draws: int = 500                 # multiplier-bootstrap draws of the mean criterion's noise floor
    fractions: tuple = (0.125, 0.25, 0.5)  # subsample sizes (fractions of the sets' parent maps) of a criterion
                                          # that fails at the data at hand
    repeats: int = 3                      # subsamples per fraction (the pass rate's denominator)
    replicates: int = 10                  # bootstrap replicates of each subsample's KS/AD tests (the
                                          # certification's 100 would make n* cost more than the verdict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(sorted(float(f) for f in self.fractions)))
        _check(all(0.0 < f < 1.0 for f in self.fractions), f"fractions must be in (0, 1), got {self.fractions}")
        for name in ("null_draws", "repeats", "replicates"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, f"{name} must be a positive integer, got {v!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
