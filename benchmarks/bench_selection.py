"""Cost of checkpoint selection for the cpu64 preset, relative to one training step.

Run: ``pytest benchmarks/bench_selection.py --benchmark-only``. A training-time score is computed
every ``selection_every`` steps of the selection epochs, so the ratio score / step says how much a
selection epoch costs on top of training (extra_info ``score_over_step`` and ``overhead``); the
pick then scores each kept candidate once (``pick_score_s``).
"""
import time

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from paper_repro.config import get_preset
from paper_repro.evaluation.selection import PICK_SEEDS, SCORERS, WorstMeanScorer
from paper_repro.gan.cosmogan import CosmoGAN
from paper_repro.gan.models import build_generator, recalibrated_copy


@pytest.fixture(scope="module")
def cpu64():
    p = get_preset("cpu64")
    rng = np.random.default_rng(0)
    dev = gaussian_filter(rng.standard_normal((2000, 64, 64)), sigma=(0, 1.5, 1.5), mode="wrap")
    return p, (0.021 * dev / dev.std()).astype(np.float32)


@pytest.fixture(scope="module")
def step_time(cpu64):
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


def test_pick_score_time(benchmark, cpu64, step_time):
    """One candidate's W of ``paper-repro pick`` (:class:`WorstMeanScorer`), on 1,024 maps per seed.

    extra_info: ``score_s`` at 1,024 maps per seed, and ``pick_score_s``, the estimated cost of scoring
    the preset's kept candidates at the pick's 8,192 maps per seed (generation and statistics grow
    linearly with the maps), also in training epochs of 400 steps (``pick_over_epoch``).
    """
    p, dev = cpu64
    t = p.training
    scorer = WorstMeanScorer.from_maps(dev, p, n_maps=1024, seeds=PICK_SEEDS)
    g = build_generator(p, seed=0)
    benchmark.pedantic(lambda: scorer(g), rounds=2, iterations=1, warmup_rounds=1)
    s = benchmark.stats.stats.min
    total = t.selection_candidates * s * 8192 / 1024
    benchmark.extra_info.update({"score_s": s, "candidates": t.selection_candidates, "pick_score_s": total,
                                 "pick_over_epoch": total / (400 * step_time)})
