"""The certification's fast paths give the reference numbers: threads change nothing, the pooled KS
p-value is SciPy's."""
import numpy as np
import pytest
import scipy.stats

from paper_repro.errors import PaperReproError
from paper_repro.evaluation import certification
from tests.helpers import untimed
from tests.stats.references import field_maps


def test_report_does_not_depend_on_the_number_of_threads():
    maps = [field_maps(80, 32, seed=s, dtype=np.float32) for s in (1, 2, 3)]
    inputs = certification.prepare(*maps, angle_deg=0.1,
                                   parents={"reference": np.repeat(np.arange(8), 10)})
    one = certification.certify(inputs, workers=1).to_dict()
    two = certification.certify(inputs, workers=2).to_dict()
    assert untimed(one) == untimed(two)
    with pytest.raises(PaperReproError, match="workers"):
        certification.certify(inputs, workers=0)


@pytest.mark.parametrize("n,m", [(12_000, 15_001), (30_000, 30_000), (900, 700)])
def test_pooled_ks_p_is_scipys(n, m):
    """Exact ties (float32 values on a coarse grid), unequal sizes, SciPy's exact and asymptotic ranges."""
    rng = np.random.default_rng(n)
    a = np.round(rng.normal(size=n), 2).astype(np.float32)
    b = np.round(rng.normal(0.02, 1.0, size=m), 2).astype(np.float32)
    assert certification.ks_2samp_p(a, b) == scipy.stats.ks_2samp(a, b).pvalue
    c = rng.normal(size=m).astype(np.float32)
    assert certification.ks_2samp_p(c, a) == scipy.stats.ks_2samp(c, a).pvalue
    with pytest.raises(PaperReproError):
        certification.ks_2samp_p(a, np.array([], dtype=np.float32))
