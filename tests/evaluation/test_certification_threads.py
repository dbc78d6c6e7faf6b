"""The certification's threads change nothing in its report."""
import numpy as np
import pytest

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
