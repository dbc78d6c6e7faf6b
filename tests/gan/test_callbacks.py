"""The training loop's callbacks (paper_repro.gan.callbacks): the CSV log writer, the schedules."""
import json

import numpy as np
import pytest

from paper_repro.config import get_preset
from paper_repro.gan import callbacks as cbs
from paper_repro.gan.cosmogan import CosmoGAN


def test_csv_log_writes_a_header_and_formatted_rows_and_truncates_atomically_with_lf(tmp_path):
    path = tmp_path / "run" / "x.csv"
    log = cbs.CSVLog(path, {"global_step": "d", "epoch": "d", "weight": "g", "value": ".6g"})
    log.start(0)
    for step in range(1, 6):
        log.write({"global_step": step, "epoch": 1, "weight": 20.0, "value": 1 / step, "other": "ignored"})
    assert path.read_text().splitlines() == ["global_step,epoch,weight,value", "1,1,20,1", "2,1,20,0.5",
                                             "3,1,20,0.333333", "4,1,20,0.25", "5,1,20,0.2"]
    # a file written with CRLF endings (csv.writer's default) comes back with LF only
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    log.start(3)                               # a resume from the checkpoint at step 3
    assert path.read_bytes() == b"global_step,epoch,weight,value\n1,1,20,1\n2,1,20,0.5\n3,1,20,0.333333\n"
    log.write({"global_step": 4, "epoch": 1, "weight": 0.1, "value": 2.0})
    assert path.read_text().splitlines()[-1] == "4,1,0.1,2"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.csv"]   # no temporary file left
    missing = cbs.CSVLog(tmp_path / "none.csv", {"global_step": "d"})
    missing.truncate(10)                       # nothing to truncate: nothing written
    assert not (tmp_path / "none.csv").exists()


def test_the_shipped_models_logs_keep_their_columns():
    """The loop's logs have the columns of the shipped model's records, so those stay valid."""
    from pathlib import Path

    import paper_repro
    ref = Path(paper_repro.__file__).parent / "reference_model"
    run = Path("run")
    term = type("Term", (), {"name": "spectral"})()
    logs = cbs.MetricsLog(run, cbs.RunState(), 20, [term])
    expected = {logs.log: "log.csv", logs.term_logs["spectral"]: "spectral.csv",
                cbs.SelectionSnapshots(run, cbs.RunState(), get_preset("tiny").training, 0, None).log: "selection.csv",
                cbs.DiscriminatorMonitor(run, cbs.RunState(), {}, 1.0).log: "discriminator.csv"}
    for log, name in expected.items():
        assert log.path.name == name
        assert ",".join(log.columns) == (ref / name).read_text().splitlines()[0]
    assert json.loads((ref / "config.json").read_text())["preset"]["training"]["log_every"] == 20


def test_schedules_set_rates_and_term_weights_per_epoch():
    t = get_preset("tiny").replace(epochs=3, anneal_epochs=1, anneal_factor=0.5, d_lr_factor=2.0,
                                   d_lr_factor_from_epoch=3, spectral_weight=4.0, spectral_from_epoch=2).training

    class Term:
        name = "spectral"

        def __init__(self):
            import keras
            self.weight = keras.Variable(0.0, trainable=False)
            self.state_variables = []

        def __call__(self, fake):
            return fake[0, 0, 0, 0]

    gan = CosmoGAN.from_preset("tiny", seed=0, loss_terms=[Term()])
    hooks = [cbs.LearningRateSchedule(t), cbs.LossWeightSchedule({"spectral": t.spectral_weight_at})]
    for h in hooks:
        h.set_model(gan)
    seen = []
    for epoch in range(3):
        for h in hooks:
            h.on_epoch_begin(epoch)
        seen.append((float(gan.g_optimizer.learning_rate.numpy()), float(gan.d_optimizer.learning_rate.numpy()),
                     gan.active_terms()))
    assert seen == [(pytest.approx(2e-4), pytest.approx(2e-4), ()),
                    (pytest.approx(2e-4), pytest.approx(2e-4), ("spectral",)),
                    (pytest.approx(1e-4), pytest.approx(2e-4), ("spectral",))]
    assert float(gan.loss_terms[0].weight.numpy()) == 4.0
    assert np.isfinite(float(gan.loss_terms[0](np.ones((1, 32, 32, 1), np.float32))))
