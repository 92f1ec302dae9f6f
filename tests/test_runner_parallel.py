"""Conditions run in worker processes give the numbers of a serial run, and a checkpoint folder
(resumed or not) changes no number."""
from __future__ import annotations

import copy

import pytest

from test_resume import SPEC, _assert_identical


@pytest.mark.slow
def test_parallel_and_checkpointed_runs_equal_the_serial_run(tmp_path):
    from cortexsim.experiment import Experiment
    spec = copy.deepcopy(SPEC)
    spec["conditions"]["control"] = {"stress": False}
    exp = Experiment.from_dict(spec)
    serial = exp.run(progress=False).data
    parallel = exp.run(progress=False, workers=2, checkpoint_dir=tmp_path).data
    _assert_identical(parallel, serial)
    assert list(parallel.condition.values) == ["stress_tbs", "control"]
    resumed = exp.run(progress=False, checkpoint_dir=tmp_path).data    # all finished
    _assert_identical(resumed, serial)
