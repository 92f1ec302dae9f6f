"""A resumed run equals an uninterrupted one, bit for bit (issue 9, kind 3; faults 06 and 08).

A run in a subprocess is stopped by SIGINT or SIGKILL at chosen points -- right after a
checkpoint is written (phase boundaries and sessions), in the middle of a slow phase (before a
structural step), right after a network run (mid-session, mid-read-outs) -- and resumed from
its checkpoint folder, again and again, until one run finishes; its results.nc variables must
equal those of an uninterrupted run.  A changed model file never resumes old state; a changed
criterion threshold does.

This file is also the driver of the stopped runs:
``python test_resume.py SPEC.json CHECKPOINT_DIR OUT.nc [POINT:COUNT:SIGNAL]``.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

PROTO = {"base": "itbs600", "n_pulses": 30, "sessions_per_day": 2, "session_interval_min": 5}

# one stressed, stimulated condition at 100 neurons with two sessions, so that a stop can fall
# between them; each session simulates its first second (settings.session_sample_s), so the
# session build is the read-out build (baseline_fast_s) and a process compiles or copies one
# network (the one of tests/test_experiment.py's TINY: same scale, seed and phase length)
SPEC = {
    "experiment": {"name": "resume", "seed": 3},
    "settings": {"scale": 100, "baseline_fast_s": 1.0, "slow_dt_h": 2.0,
                 "session_sample_s": 1.0},
    "timeline": [
        {"kind": "baseline", "days": 1, "readout": "baseline"},
        {"kind": "stress", "days": 1, "hours_per_day": 6},
        {"kind": "stimulation"},
        {"kind": "rest", "days": 1, "readout": "24h"},
    ],
    "conditions": {"stress_tbs": {"protocol": PROTO, "intensity_pct_rmt": 120}},
    "criteria": [{"name": "spines present", "var": "spine_density", "condition": "stress_tbs",
                  "readout": "24h", "populations": ["IT_L5"], "op": ">", "value": 0.0}],
}

# (point, count, signal): stop this process at the count-th event of a kind.  Events: "save" --
# a checkpoint was written (after each phase and each session); "advance" -- a structural step
# is about to run (inside a slow phase, or a gap between sessions); "run" -- a network run
# returned (pass 1's resting run and the sessions' reference run happen once: a resumed process
# finds them stored; then the sessions, then two runs per read-out).
# Each run resumes from the previous one's checkpoints; every kind of stop gets both signals.
STOPS = [
    ("save", 1, "SIGINT"),       # end of the baseline phase (pass 1 stored before it)
    ("advance", 2, "SIGKILL"),   # mid stress phase
    ("run", 2, "SIGINT"),        # reference run, session 1 simulated, not yet checkpointed
    ("save", 1, "SIGKILL"),      # after session 1 (mid stimulation phase)
    ("advance", 1, "SIGINT"),    # in the slow gap before session 2
    ("run", 1, "SIGKILL"),       # session 2 simulated, not yet checkpointed
    ("save", 2, "SIGINT"),       # end of the stimulation phase (after session 2's checkpoint)
    ("advance", 1, "SIGKILL"),   # mid rest phase
    ("save", 1, "SIGKILL"),      # end of the timeline, before the read-outs
    ("run", 1, "SIGINT"),        # mid first read-out
    ("run", 3, "SIGKILL"),       # mid second read-out (the first one stored)
]


# --------------------------------------------------------------------------- the driver
def _stop_at(point: str, count: int, signame: str) -> None:
    """Make this process send itself ``signame`` at the ``count``-th ``point`` event."""
    from cortexsim.circuit import network
    from cortexsim.experiment import phases
    from cortexsim.plasticity import structural
    seen = [0]

    def event():
        seen[0] += 1
        if seen[0] == count:
            os.kill(os.getpid(), getattr(signal, signame))

    def wrap(owner, name, after: bool):
        orig = getattr(owner, name)

        def wrapped(*a, **k):
            if not after:
                event()
            out = orig(*a, **k)
            if after:
                event()
            return out
        setattr(owner, name, wrapped)

    {"save": lambda: wrap(phases.ConditionRun, "save", True),
     "advance": lambda: wrap(structural, "advance", False),
     "run": lambda: wrap(network.Circuit, "run", True)}[point]()


def _main(argv):
    spec_path, ckpt, out = argv[:3]
    if len(argv) > 3:
        point, count, signame = argv[3].split(":")
        _stop_at(point, int(count), signame)
    from cortexsim.experiment import Experiment
    spec = json.loads(Path(spec_path).read_text())
    res = Experiment.from_dict(spec).run(progress=False, checkpoint_dir=ckpt)
    res.data.to_netcdf(out)
    Path(out).with_suffix(".criteria.json").write_text(json.dumps(res.criteria))


def _drive(tmp: Path, spec: dict, ckpt: Path, stop=None, env=None) -> tuple[int, str]:
    sp = tmp / "spec.json"
    sp.write_text(json.dumps(spec))
    args = [sys.executable, __file__, str(sp), str(ckpt), str(tmp / "out.nc")]
    if stop is not None:
        args.append(":".join(map(str, stop)))
    import cortexsim
    root = str(Path(cortexsim.__file__).resolve().parent.parent)    # the cortexsim under test
    path = os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": path, **(env or {})})
    return proc.returncode, proc.stderr


def _assert_identical(a, b, same_config: bool = True):
    import xarray as xr
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)   # bit for bit
    assert a.attrs["models"] == b.attrs["models"]
    assert (a.attrs["config"] == b.attrs["config"]) == same_config


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def uninterrupted():
    from cortexsim.experiment import Experiment
    return Experiment.from_dict(copy.deepcopy(SPEC)).run(progress=False).data


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory):
    """The run stopped at every point of STOPS (each one resumed from the previous one's
    checkpoints), then run to its end: ``(folder, [(stop, rc, stderr, out.nc written)],
    final rc, final stderr)``; ``folder / "ck"`` holds the finished run's checkpoints."""
    tmp = tmp_path_factory.mktemp("stopped")
    ckpt = tmp / "ck"
    stops = []
    for stop in STOPS:
        rc, err = _drive(tmp, SPEC, ckpt, stop)
        stops.append((stop, rc, err, (tmp / "out.nc").exists()))
    rc, err = _drive(tmp, SPEC, ckpt)
    return tmp, stops, rc, err


@pytest.mark.slow
def test_resume_after_every_kind_of_stop_equals_uninterrupted_run(stopped_runs, uninterrupted):
    import xarray as xr
    tmp, stops, rc, err = stopped_runs
    ckpt = tmp / "ck"
    for (point, count, sig), rc_stop, err_stop, wrote in stops:
        # (SIGINT: KeyboardInterrupt, after which Python ends itself by SIGINT)
        assert rc_stop == -getattr(signal, sig), \
            f"stop {point}:{count}:{sig}: rc {rc_stop}\n{err_stop[-3000:]}"
        assert not wrote
    assert rc == 0, err[-3000:]
    _assert_identical(xr.load_dataset(tmp / "out.nc"), uninterrupted)
    # one checkpoint for the one condition, the two read-outs stored, no temporary files
    assert [p.name.split(".")[0] for p in ckpt.glob("*.ckpt.npz")] == ["stress_tbs"]
    # pass 1's resting statistics and the sessions' reference
    assert len(list((ckpt / "references").glob("*.json"))) == 2
    assert len(list((ckpt / "readouts").glob("*.json"))) == 2, \
        "more read-outs stored: cortexsim's sources changed during the test (state rightly " \
        "not resumed), or a resumed run did not find the stored read-outs"
    assert not list(ckpt.rglob(".*tmp*"))


@pytest.mark.slow
def test_changed_model_file_never_resumes_and_changed_criterion_does(tmp_path, stopped_runs,
                                                                     uninterrupted):
    import xarray as xr

    from cortexsim.params import models_dir
    # a finished run's checkpoints (those of the stopped and resumed runs, run to the end)
    done, _, rc, err = stopped_runs
    assert rc == 0, err[-2000:]
    ckpt = tmp_path / "ck"
    shutil.copytree(done / "ck", ckpt)
    # a changed criterion threshold resumes the finished state: no structural step is taken
    spec = copy.deepcopy(SPEC)
    spec["criteria"][0]["value"] = 2.0
    rc, err = _drive(tmp_path, spec, ckpt, ("advance", 1, "SIGKILL"))
    assert rc == 0, err[-2000:]
    _assert_identical(xr.load_dataset(tmp_path / "out.nc"), uninterrupted, same_config=False)
    crit = json.loads((tmp_path / "out.criteria.json").read_text())
    assert crit[0]["passed"] is False
    # another model folder with one changed value: the old state is not resumed (the run gives
    # the numbers of a fresh run with those models, and differs from the old ones)
    models = tmp_path / "models"
    shutil.copytree(models_dir(), models)
    f = models / "structural.toml"
    val = tomllib.loads(f.read_text())["formation"]["k_form"]["value"]
    f.write_text(re.sub(r"^(k_form = \{ value = )[^,]+", lambda m: m.group(1) + repr(val * 100),
                        f.read_text(), count=1, flags=re.MULTILINE))
    env = {"CORTEXSIM_MODELS": str(models)}
    rc, err = _drive(tmp_path, SPEC, ckpt, env=env)
    assert rc == 0, err[-2000:]
    changed = xr.load_dataset(tmp_path / "out.nc")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rc, err = _drive(fresh, SPEC, fresh / "ck", env=env)
    assert rc == 0, err[-2000:]
    _assert_identical(changed, xr.load_dataset(fresh / "out.nc"))
    assert json.loads(changed.attrs["models"])["stress_tbs"]["structural"]["formation"][
        "k_form"] == pytest.approx(val * 100)
    assert not np.array_equal(changed.spine_density.values, uninterrupted.spine_density.values,
                              equal_nan=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
