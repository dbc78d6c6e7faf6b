"""Cost of one checkpoint-selection score for the cpu64 preset, relative to one training step.

Run: ``pytest benchmarks/bench_selection.py --benchmark-only``. A score is computed every
``selection_every`` steps of the selection epochs, so the ratio score / step says how much a
selection epoch costs on top of training (extra_info ``score_over_step`` and ``overhead``).
"""
import numpy as np
import pytest

from paper_repro.config import get_preset


@pytest.fixture(scope="module")
def cpu64():
    p = get_preset("cpu64")
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(0)
    dev = gaussian_filter(rng.standard_normal((2000, 64, 64)), sigma=(0, 1.5, 1.5), mode="wrap")
    return p, (0.021 * dev / dev.std()).astype(np.float32)


@pytest.fixture(scope="module")
def step_time(cpu64):
    import time

    from paper_repro.gan.cosmogan import CosmoGAN
    p, dev = cpu64
    gan = CosmoGAN.from_preset(p, seed=0)
    real = (p.training.data_scale * dev[:p.training.batch_size, :, :, None]).astype(np.float32)
    gan.train_on_batch(real)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        gan.train_on_batch(real)
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.parametrize("score", ["power_spectrum", "statistics"])
def test_selection_score_time(benchmark, cpu64, step_time, score):
    from paper_repro.gan.models import build_generator, recalibrated_copy
    from paper_repro.evaluation.selection import SCORERS
    p, dev = cpu64
    p = p.replace(selection_score=score)
    scorer = SCORERS[score].from_maps(dev, p)
    g = build_generator(p, seed=0)
    t = p.training

    def one_score():   # as in training: a recalibrated copy, then the score
        return scorer(recalibrated_copy(g, t.bn_recalibration, t.batch_size, seed=0))

    benchmark.pedantic(one_score, rounds=3, iterations=1, warmup_rounds=1)
    s = benchmark.stats.stats.min
    benchmark.extra_info.update({
        "score_s": s, "step_s": step_time, "score_over_step": s / step_time,
        "overhead": s / (t.selection_every * step_time)})


def test_confirmation_score_time(benchmark, cpu64, step_time):
    """One confirmation score of ``paper-repro select`` (confirmation_maps on fresh latents).

    extra_info: ``select_s``, the estimated cost of the preset's ``select`` (kept candidates, the
    selection epochs' ends and best/, one score each), and ``select_over_epoch``, that cost in
    training epochs of 400 steps.
    """
    from paper_repro.gan.models import build_generator, recalibrated_copy
    from paper_repro.evaluation.selection import CONFIRMATION_SEED, StatisticsScorer
    p, dev = cpu64
    t = p.training
    scorer = StatisticsScorer.from_maps(dev, p, n_maps=t.confirmation_maps, seed=CONFIRMATION_SEED)
    g = build_generator(p, seed=0)

    def one_score():
        return scorer(recalibrated_copy(g, t.bn_recalibration, t.batch_size, seed=0))

    benchmark.pedantic(one_score, rounds=2, iterations=1, warmup_rounds=1)
    s = benchmark.stats.stats.min
    n = t.selection_candidates + t.selection_epochs + 1
    benchmark.extra_info.update({
        "confirmation_maps": t.confirmation_maps, "score_s": s, "scores": n, "select_s": n * s,
        "select_over_epoch": n * s / (400 * step_time)})
