"""Simulated weak-lensing convergence maps: pyccl theory C_ell and log-normal / Gaussian fields.

Theory: the convergence angular power spectrum C_ell for sources on one plane at z_s (Limber
approximation, Halofit non-linear matter power, from pyccl), computed once per cosmology.

Fields live on a periodic flat-sky grid ``fine_factor`` times finer than the map and are averaged
down ``fine_factor`` x ``fine_factor`` pixels -> 1, as the paper's 2048^2 -> 1024^2 maps:

- ``gaussian``: a Gaussian random field whose grid power is C(|ell|) (no non-Gaussianity; control).
- ``lognormal``: the shifted log-normal field kappa = lambda (exp(G - sigma_G^2/2) - 1) (Hilbert et
  al. 2011; Xavier et al. 2016), kappa >= -lambda. The Gaussian G gets the power that makes
  kappa's correlation function equal to the target one on the grid: xi_G = ln(1 + xi_kappa/lambda^2),
  with xi <-> C by FFT on the grid itself (exact for the periodic grid: no Hankel transform and no
  aliasing of the transform). Negative modes of C_G (only the DC mode at the paper's settings) are
  set to zero; :attr:`ConvergenceSimulator.lognormal_power_error` says how much that changes C_ell.

:meth:`ConvergenceSimulator.expected_power` gives the exact expectation of the measured power of
a whole map, including the window and aliasing of the pixel averaging, in LensTools' binning.
Units: kappa dimensionless, C_ell in steradians, angles in degrees at the interface.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import scipy.fft as sfft
from scipy.integrate import simpson
from scipy.interpolate import CubicSpline

from ..config import CosmologyConfig, SimulationConfig
from ..errors import PaperReproError

#: multipoles of the cached C_ell table (log-spaced); C_ell is a cubic spline in log-log between
ELL_MIN, ELL_MAX, N_ELL = 1.0, 3.0e6, 600
#: points along the line of sight of pyccl's single-plane lensing kernel
KERNEL_SAMPLES = 200

# ---------------------------------------------------------------------------------- cosmology
@functools.lru_cache(maxsize=16)
def ccl_cosmology(cosmology: CosmologyConfig):
    """The pyccl ``Cosmology`` (flat, massless neutrinos, Halofit) for ``cosmology``."""
    import pyccl

    if cosmology.transfer_function == "boltzmann_camb":
        try:
            import camb  # noqa: F401
        except ImportError:
            raise PaperReproError("transfer_function 'boltzmann_camb' needs the camb package "
                                  "(pip install camb); found none") from None
    if cosmology.transfer_function == "boltzmann_class":
        try:
            import classy  # noqa: F401
        except ImportError:
            raise PaperReproError("transfer_function 'boltzmann_class' needs the classy package; "
                                  "found none") from None
    return pyccl.Cosmology(
        Omega_c=cosmology.Omega_m - cosmology.Omega_b, Omega_b=cosmology.Omega_b,
        h=cosmology.h, sigma8=cosmology.sigma_8, n_s=cosmology.n_s, w0=cosmology.w, wa=0.0,
        Omega_k=0.0, m_nu=0.0, transfer_function=cosmology.transfer_function,
        matter_power_spectrum="halofit")


def lensing_tracer(cosmology: CosmologyConfig, z_source: float):
    """pyccl tracer of the convergence for all sources on the plane z = z_source.

    ``CMBLensingTracer`` is pyccl's single-source-plane convergence kernel (its name notwithstanding:
    ``z_source`` is free). It is a ``WeakLensingTracer`` with a delta n(z), which pyccl cannot
    build (a 3-point spike in ``dndz`` fails in its spline), and matches one with a narrow
    Gaussian n(z) (width 0.005) to 1e-4 at ell >= 100 (checked in tests/maps/test_simulation.py).
    """
    import pyccl

    return pyccl.CMBLensingTracer(ccl_cosmology(cosmology), z_source=float(z_source),
                                  n_samples=KERNEL_SAMPLES)


@functools.lru_cache(maxsize=32)
def cl_spline(cosmology: CosmologyConfig, z_source: float) -> CubicSpline:
    """log C_ell against log ell from pyccl on ``N_ELL`` multipoles in [``ELL_MIN``, ``ELL_MAX``],
    cached per (cosmology, z_source): :func:`theory_cl` interpolates it."""
    import pyccl

    ell = np.geomspace(ELL_MIN, ELL_MAX, N_ELL)
    tracer = lensing_tracer(cosmology, z_source)
    try:
        cl = pyccl.angular_cl(ccl_cosmology(cosmology), tracer, tracer, ell)
    except Exception as exc:  # pyccl raises its own CCLError on an impossible cosmology
        raise PaperReproError(f"pyccl could not compute C_ell for {cosmology} at z_s={z_source}: "
                              f"{exc}") from None
    cl = np.asarray(cl, dtype=np.float64)
    if not (np.all(np.isfinite(cl)) and np.all(cl > 0)):
        raise PaperReproError(f"pyccl returned non-positive or non-finite C_ell for {cosmology} "
                              f"at z_s={z_source}")
    return CubicSpline(np.log(ell), np.log(cl))


def theory_cl(ell, cosmology: CosmologyConfig | None = None, z_source: float = 1.0) -> np.ndarray:
    """Convergence C_ell (steradians) at multipoles ``ell`` for sources at ``z_source``.

    Limber + Halofit from pyccl, computed once per (cosmology, z_source) on 600 log-spaced
    multipoles in [1, 3e6] and interpolated (cubic in log-log, error < 1e-4). C_0 = 0.
    """
    cosmology = CosmologyConfig() if cosmology is None else cosmology
    ell = np.asarray(ell, dtype=np.float64)
    if np.any(~np.isfinite(ell)) or np.any(ell < 0):
        raise PaperReproError("theory_cl: ell must be finite and >= 0")
    if np.any(ell > ELL_MAX):
        raise PaperReproError(f"theory_cl: ell up to {ELL_MAX:g} supported, found {ell.max():g} "
                              f"(pixels too small for the cached C_ell table)")
    spline = cl_spline(cosmology, float(z_source))
    out = np.zeros_like(ell)
    pos = ell > 0
    out[pos] = np.exp(spline(np.log(np.maximum(ell[pos], ELL_MIN))))
    # below ell = 1 (never on a map smaller than 360 deg) hold C_ell at its ell = 1 value
    return out


@functools.lru_cache(maxsize=32)
def empty_beam_convergence(cosmology: CosmologyConfig | None = None, z_source: float = 1.0) -> float:
    """kappa_min(z_s) < 0: the convergence of a beam through empty space (delta = -1 everywhere).

    kappa_min = -(3/2) (H0/c)^2 Omega_m int_0^chi_s dchi chi (chi_s - chi) / chi_s (1 + z(chi)),
    the lower bound of kappa and the usual shift of the log-normal model (Hilbert et al. 2011).
    """
    import pyccl

    cosmology = CosmologyConfig() if cosmology is None else cosmology
    cosmo = ccl_cosmology(cosmology)
    z = np.linspace(0.0, float(z_source), 4097)
    chi = pyccl.comoving_radial_distance(cosmo, 1.0 / (1.0 + z))        # Mpc
    chi_s = chi[-1]
    h0_over_c = cosmology.h * 100.0 / 299792.458                       # 1/Mpc
    integrand = chi * (chi_s - chi) / chi_s * (1.0 + z)
    return float(-1.5 * h0_over_c ** 2 * cosmology.Omega_m * simpson(integrand, x=chi))


def averaging_window(ell_x, ell_y, fine_pixel_rad: float, factor: int) -> np.ndarray:
    """|W|^2 of averaging ``factor`` x ``factor`` fine pixels of side ``fine_pixel_rad``.

    Per axis [sin(f ell dx / 2) / (f sin(ell dx / 2))]^2: 1 at ell = 0, 0 at the coarse grid's
    sampling multipole 2 pi / (f dx) and its multiples.
    """
    def one(ell):
        x = 0.5 * np.asarray(ell, dtype=np.float64) * fine_pixel_rad
        num = np.sin(factor * x)
        den = factor * np.sin(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(np.abs(den) < 1e-300, 1.0, num / np.where(den == 0, 1.0, den))
        return r ** 2
    return one(ell_x) * one(ell_y)


def lenstools_bin(power_half: np.ndarray, angle_deg: float, l_edges) -> tuple[np.ndarray, np.ndarray]:
    """Average a power array on the rfft half plane (N, N//2+1) over LensTools' ell bins.

    The ell of mode (i, j) is (360/angle_deg) sqrt(min(i, N-i)^2 + j^2); a mode is in bin k when
    e_k < ell <= e_{k+1}; empty bins give 0; returns (bin centres, mean power per bin).
    """
    l_edges = np.asarray(l_edges, dtype=np.float64)
    n = power_half.shape[-2]
    i = np.arange(n)
    ky = np.minimum(i, n - i)[:, None]
    kx = np.arange(power_half.shape[-1])[None, :]
    ell = (360.0 / angle_deg) * np.sqrt(ky ** 2 + kx ** 2)
    idx = np.searchsorted(l_edges, ell.ravel(), side="left") - 1        # e_k < ell <= e_{k+1}
    nb = len(l_edges) - 1
    ok = (idx >= 0) & (idx < nb)
    counts = np.bincount(idx[ok], minlength=nb).astype(np.float64)
    flat = power_half.reshape(*power_half.shape[:-2], -1)
    sums = np.stack([np.bincount(idx[ok], weights=row[ok], minlength=nb)
                     for row in flat.reshape(-1, flat.shape[-1])])
    sums = sums.reshape(*power_half.shape[:-2], nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)
    return 0.5 * (l_edges[:-1] + l_edges[1:]), mean


# ---------------------------------------------------------------------------------- simulator
class ConvergenceSimulator:
    """Draws convergence maps for one :class:`~paper_repro.config.SimulationConfig`.

    Construction does the per-configuration work once (C_ell on the grid, the log-normal
    transform); :func:`get_simulator` caches simulators. Every map comes from its own seed.
    """

    def __init__(self, config: SimulationConfig | None = None):
        self.config = config = SimulationConfig() if config is None else config
        n, f = config.map_size, config.fine_factor
        m = config.fine_size
        self.fine_pixel_rad = math.radians(config.angle_deg) / m
        dx = self.fine_pixel_rad
        q = 2.0 * np.pi * sfft.fftfreq(m, d=dx)                  # ell along each axis, fft order
        qh = 2.0 * np.pi * sfft.rfftfreq(m, d=dx)
        ell_half = np.hypot(q[:, None], qh[None, :])
        if ell_half.max() > ELL_MAX:
            raise PaperReproError(
                f"fine pixels of {math.degrees(dx) * 60:.4g} arcmin reach ell {ell_half.max():.3g}, "
                f"above the supported {ELL_MAX:g}; use fewer pixels or a larger angle")
        target_half = theory_cl(ell_half, config.cosmology, config.z_source)
        target_half[0, 0] = 0.0                                    # zero-mean periodic field
        del ell_half

        self.shift: float | None = None
        self.lognormal_power_error = 0.0
        self.clipped_power_fraction = 0.0
        if config.model == "gaussian":
            power_g = target_half
            fine_half = target_half
            self.sigma_g2: float | None = None
        else:
            lam = config.shift if config.shift is not None else \
                abs(empty_beam_convergence(config.cosmology, config.z_source))
            self.shift = float(lam)
            xi = sfft.irfft2(target_half, s=(m, m)) / dx ** 2      # correlation function on grid
            arg = xi / lam ** 2
            if arg.min() <= -1.0:
                raise PaperReproError(
                    f"log-normal shift {lam:g} is too small for this C_ell: 1 + xi/shift^2 reaches "
                    f"{1 + arg.min():.3g} <= 0; use a shift above {np.sqrt(-xi.min()):.3g}")
            xi_g = np.log1p(arg)
            del xi, arg
            power_g = sfft.rfft2(xi_g).real * dx ** 2
            neg = power_g < 0
            self.clipped_power_fraction = float(-power_g[neg].sum() / power_g[~neg].sum())
            power_g = np.where(neg, 0.0, power_g)
            xi_g = sfft.irfft2(power_g, s=(m, m)) / dx ** 2        # what the clipped G realises
            self.sigma_g2 = float(xi_g[0, 0])
            fine_half = sfft.rfft2(lam ** 2 * np.expm1(xi_g)).real * dx ** 2
            del xi_g
            nz = target_half > 0
            self.lognormal_power_error = float(np.max(np.abs(fine_half[nz] / target_half[nz] - 1)))
        # G_k = w_k sqrt(P_G) / dx for white noise w: <|G_k|^2> = m^2 P_G / dx^2
        self._amp = (np.sqrt(power_g) / dx).astype(np.float32)
        self._fine_power_half = fine_half
        self._coarse_power: np.ndarray | None = None
        self.n, self.m, self.f = n, m, f

    # ------------------------------------------------------------------ maps
    def fine_field(self, seed=None) -> np.ndarray:
        """One (fine_size, fine_size) float32 convergence field before averaging."""
        rng = np.random.default_rng(seed)
        white = rng.standard_normal((self.m, self.m), dtype=np.float32)
        g = sfft.irfft2(sfft.rfft2(white) * self._amp, s=(self.m, self.m))
        if self.config.model == "gaussian":
            return g.astype(np.float32, copy=False)
        g -= np.float32(0.5 * self.sigma_g2)
        np.expm1(g, out=g)
        g *= np.float32(self.shift)
        return g

    def map(self, seed=None) -> np.ndarray:
        """One (map_size, map_size) float32 convergence map from ``seed`` (int, SeedSequence or Generator)."""
        fine = self.fine_field(seed)
        n, f = self.n, self.f
        if f == 1:
            return fine
        return fine.reshape(n, f, n, f).mean(axis=(1, 3), dtype=np.float32)

    def maps(self, n_maps: int, seed=None) -> np.ndarray:
        """``n_maps`` maps (n_maps, N, N) float32; map i uses ``SeedSequence(seed).spawn`` child i."""
        if not isinstance(n_maps, (int, np.integer)) or n_maps < 1:
            raise PaperReproError(f"number of maps must be a positive integer, got {n_maps!r}")
        seeds = map_seeds(seed, n_maps)
        out = np.empty((n_maps, self.n, self.n), dtype=np.float32)
        for i, s in enumerate(seeds):
            out[i] = self.map(s)
        return out

    # ------------------------------------------------------------------ theory
    def theory_cl(self, ell) -> np.ndarray:
        """Input C_ell of this configuration (no pixel window)."""
        return theory_cl(ell, self.config.cosmology, self.config.z_source)

    def expected_power_2d(self) -> np.ndarray:
        """Expected LensTools power (steradians) of each mode of a whole map, rfft half plane (N, N//2+1).

        Exact for this generator: the fine-grid power of the field (for the log-normal model the
        realised one), times the averaging window, summed over the f^2 aliases of each mode.
        """
        if self._coarse_power is None:
            m, n, f = self.m, self.n, self.f
            q = 2.0 * np.pi * sfft.fftfreq(m, d=self.fine_pixel_rad)
            full = _half_to_full(self._fine_power_half, m)
            full *= averaging_window(q[:, None], q[None, :], self.fine_pixel_rad, f)
            coarse = full.reshape(f, n, f, n).sum(axis=(0, 2))
            self._coarse_power = np.ascontiguousarray(coarse[:, : n // 2 + 1])
        return self._coarse_power

    def expected_power(self, l_edges) -> tuple[np.ndarray, np.ndarray]:
        """(ell, P): expected binned power spectrum of whole maps, LensTools' convention and binning."""
        return lenstools_bin(self.expected_power_2d(), self.config.angle_deg, l_edges)

    def target_power(self, l_edges) -> tuple[np.ndarray, np.ndarray]:
        """(ell, P): the input C_ell on the map's modes times the averaging window, no aliasing.

        What a perfect simulator averaged down to these pixels would show; differs from
        :meth:`expected_power` only by the aliasing of the finer grid and the log-normal clipping.
        """
        n = self.n
        dx_c = math.radians(self.config.angle_deg) / n
        q = 2.0 * np.pi * sfft.fftfreq(n, d=dx_c)
        qh = 2.0 * np.pi * sfft.rfftfreq(n, d=dx_c)
        p = self.theory_cl(np.hypot(q[:, None], qh[None, :]))
        p *= averaging_window(q[:, None], qh[None, :], self.fine_pixel_rad, self.f)
        return lenstools_bin(p, self.config.angle_deg, l_edges)

    @property
    def pixel_variance(self) -> float:
        """Expected variance of the pixels of a whole map (convergence^2)."""
        area = math.radians(self.config.angle_deg) ** 2
        p = self.expected_power_2d()
        w = np.full(p.shape[1], 2.0)
        w[0] = 1.0
        if self.n % 2 == 0:
            w[-1] = 1.0
        return float((p * w).sum() / area)


def _half_to_full(half: np.ndarray, m: int) -> np.ndarray:
    """Rebuild a real, even (P(-k) = P(k)) array (m, m) from its rfft half plane."""
    full = np.empty((m, m), dtype=np.float64)
    nh = half.shape[1]
    full[:, :nh] = half
    j = np.arange(nh, m)                   # negative kx: P(ky, kx) = P(-ky, -kx)
    full[:, nh:] = half[(-np.arange(m)) % m][:, m - j]
    return full


@functools.lru_cache(maxsize=8)
def get_simulator(config: SimulationConfig | None = None) -> ConvergenceSimulator:
    """A cached :class:`ConvergenceSimulator` for ``config`` (configs are frozen, hashable)."""
    return ConvergenceSimulator(SimulationConfig() if config is None else config)


def map_seeds(seed, n: int) -> list[np.random.SeedSequence]:
    """The ``n`` per-map seed sequences of :meth:`ConvergenceSimulator.maps` for ``seed``."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2 ** 63))
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,))
            for i in range(n)]


def simulate_maps(n_maps: int, config: SimulationConfig | None = None, seed=None) -> np.ndarray:
    """``n_maps`` convergence maps (n_maps, N, N) float32 for ``config`` (default: the paper's)."""
    return get_simulator(config).maps(n_maps, seed)


def simulate_map(config: SimulationConfig | None = None, seed=None) -> np.ndarray:
    """One convergence map (N, N) float32 for ``config`` (default: the paper's 1024^2, 3.464 deg)."""
    return get_simulator(config).map(seed)


__all__: Sequence[str] = (
    "ConvergenceSimulator", "get_simulator", "simulate_map", "simulate_maps", "map_seeds",
    "theory_cl", "empty_beam_convergence", "averaging_window", "lenstools_bin", "ccl_cosmology",
    "lensing_tracer",
)
