"""Sweeps that run networks (scale 50, 1-day tiny spec): end to end on local workers and on a
Dask LocalCluster, resume, and SIGKILL of a worker or of the parent mid-run."""
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import xarray as xr

from cortexsim.cli import main
from cortexsim.sweep import load_sweep
from test_sweep import TINY

pytestmark = pytest.mark.slow
SCALE = "50"

SWEEP = """
[sweep]
name = "run"
base = "fast.toml"
design = "grid"
seeds = [SEEDS]
[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
values = [VALUES]
[[metrics]]
name = "it5"
var = "spine_density_rel"
condition = "stim"
minus_condition = "control"
readout = "24h"
population = "IT_L5"
[[metrics]]
name = "density"
criterion = "spines remain"
population = "IT_L5"
"""


def _spec(folder, values="60, 120", seeds="1"):
    _base(folder)
    p = folder / "sw.toml"
    p.write_text(SWEEP.replace("SEEDS", seeds).replace("VALUES", values))
    return p


def _base(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY)
    # the smoke-test spec with shorter fast phases and half-day slow phases (cheaper runs); the
    # session simulates its first 0.4 s (the rest carried over by the plasticity rule), so the
    # session build is the read-out build: one compiled network per seed, one build per run
    (folder / "fast.toml").write_text(
        'extends = "tiny.toml"\n[settings]\nbaseline_fast_s = 0.4\nsession_tail_s = 0.1\n'
        'session_sample_s = 0.4\nslow_dt_h = 4.0\n'
        '[[timeline]]\nkind = "baseline"\ndays = 0.5\nreadout = "baseline"\n'
        '[[timeline]]\nkind = "stimulation"\n[[timeline]]\nkind = "rest"\ndays = 0.5\n'
        'readout = "24h"\n')


def _records(store):
    """Every record in the store (all must parse; results must load)."""
    recs = {}
    for f in store.iterdir():
        if f.name.startswith("."):
            continue                       # a temporary file of a killed writer, never read
        if f.suffix == ".json":
            recs[f.stem] = json.loads(f.read_text())
        else:
            xr.load_dataset(f)
    return recs


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    spec = _spec(folder)
    out = folder / "out"
    rc = main(["sweep", str(spec), "--workers", "2", "--scale", SCALE, "--out", str(out),
               "--quiet", "--plot", "it5"])
    return spec, out, rc


def test_local_sweep_writes_dataset_table_and_plot(local_sweep):
    spec, out, rc = local_sweep
    assert rc == 0
    ds = xr.load_dataset(out / "sweep.nc")
    assert ds.it5.dims == ("conditions.stim.intensity_pct_rmt", "seed")
    assert list(ds["conditions.stim.intensity_pct_rmt"].values) == [60.0, 120.0]
    assert json.loads(ds.attrs["sweep_spec"])["sweep"]["name"] == "run"
    assert "brian2" in json.loads(ds.attrs["versions"])
    df = pd.read_parquet(out / "points.parquet")
    assert list(df.status) == ["ok", "ok"]
    assert (df.density > 0).all()
    assert ds.density.values.ravel().tolist() == df.density.tolist()
    assert (out / "plot_it5.png").stat().st_size > 0
    # each distinct network is compiled at most once per sweep: the intensity is a run-time
    # value, so both runs use the same builds (compiled by one worker, copied by the other)
    per_run = (df.builds + df.cache_hits).tolist()
    assert per_run[0] == per_run[1] >= 1
    assert df.builds.sum() <= per_run[0]


def test_rerun_skips_finished_points(local_sweep, capsys):
    spec, out, _ = local_sweep
    store = out / "store"
    before = {f.name: f.stat().st_mtime_ns for f in store.iterdir()}
    assert main(["sweep", str(spec), "--scale", SCALE, "--out", str(out), "--quiet",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] == 2 and summary["failed"] == 0
    assert {f.name: f.stat().st_mtime_ns for f in store.iterdir()} == before


def test_dask_local_cluster_gives_the_same_numbers(local_sweep, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec, out, _ = local_sweep
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        summary = load_sweep(spec).run(scheduler=client, scale=int(SCALE), out=tmp_path,
                                       progress=False)
        pids = client.run(os.getpid)
    assert summary["finished"] == 2
    dask_df = pd.read_parquet(tmp_path / "points.parquet")
    local_df = pd.read_parquet(out / "points.parquet")
    assert dask_df.it5.tolist() == local_df.it5.tolist()
    assert dask_df.density.tolist() == local_df.density.tolist()
    assert set(_records(tmp_path / "store")[k]["pid"] for k in dask_df.key) <= set(pids.values())


def _start(spec, out, workers="2"):
    return subprocess.Popen([sys.executable, "-m", "cortexsim.cli", "sweep", str(spec),
                             "--workers", workers, "--scale", SCALE, "--out", str(out),
                             "--quiet", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _workers_of(pid):
    """Pool worker processes of the sweep process ``pid`` (not multiprocessing's helpers)."""
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if "spawn_main" in line and "resource_tracker" not in line]


def _wait_for(cond, proc, timeout=900):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"sweep exited early: {proc.stderr.read().decode()[-2000:]}")
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.5)


def test_sigkill_of_a_worker_mid_run_loses_nothing(tmp_path):
    spec = _spec(tmp_path, values="60, 120")
    out = tmp_path / "out"
    proc = _start(spec, out)
    try:
        _wait_for(lambda: len(_workers_of(proc.pid)) == 2, proc)
        _wait_for(lambda: (out / "store").is_dir()
                  and any(f.suffix == ".json" for f in (out / "store").iterdir()), proc)
        first = _records(out / "store")
        busy = [w for w in _workers_of(proc.pid)
                if w not in {r["pid"] for r in first.values()}] or _workers_of(proc.pid)
        os.kill(busy[0], signal.SIGKILL)        # a worker in the middle of a run
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    summary = json.loads(stdout)
    assert summary["finished"] == 2, summary                # (errors of failed runs shown)
    recs = _records(out / "store")
    keys = pd.read_parquet(out / "points.parquet").key.tolist()
    assert sorted(recs) == sorted(keys)                     # every run exactly once
    assert all(r["status"] == "ok" for r in recs.values())
    for k, r in first.items():                               # finished runs were kept
        assert recs[k] == r


def test_sigkill_of_the_parent_mid_run_then_resume(tmp_path):
    spec = _spec(tmp_path, values="60, 120")
    out = tmp_path / "out"
    proc = _start(spec, out)
    try:
        _wait_for(lambda: (out / "store").is_dir()
                  and any(f.suffix == ".json" for f in (out / "store").iterdir()), proc)
        os.kill(proc.pid, signal.SIGKILL)        # the sweep itself, mid-run
        proc.wait(timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)      # and its orphaned workers
    first = _records(out / "store")              # whatever is there is whole
    assert 1 <= len(first) <= 2
    assert main(["sweep", str(spec), "--workers", "2", "--scale", SCALE, "--out", str(out),
                 "--quiet"]) == 0
    recs = _records(out / "store")
    keys = pd.read_parquet(out / "points.parquet").key.tolist()
    # records of this code version (the tree may change meanwhile: then every run is new)
    code = recs[keys[0]]["code"]
    assert sorted(k for k, r in recs.items() if r["code"] == code) == sorted(keys)
    assert all(r["status"] == "ok" for r in recs.values())
    for k, r in first.items():
        if r["code"] == code:
            assert recs[k] == r                   # not run again


def test_fit_on_the_engine_writes_a_runnable_best_spec_and_resumes(tmp_path, capsys):
    from cortexsim.experiment import load_experiment
    _base(tmp_path)
    spec = tmp_path / "fit.toml"
    spec.write_text("""
[fit]
name = "tiny_fit"
base = "fast.toml"
n_trials = 2
batch = 2
seeds = [1]
validation_seeds = [2]
[[parameters]]
path = "conditions.stim.intensity_pct_rmt"
low = 60.0
high = 120.0
[[metrics]]
name = "it5"
var = "spine_density_rel"
condition = "stim"
readout = "24h"
population = "IT_L5"
[[targets]]
metric = "it5"
value = 1.0
tolerance = 0.05
[[targets]]
criterion = "spines remain"
""")
    out = tmp_path / "out"
    args = ["fit", str(spec), "--workers", "2", "--scale", SCALE, "--out", str(out), "--quiet",
            "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_trials"] == 2 and len(summary["validation"]["losses"]) == 1
    assert 60.0 <= summary["best_params"]["conditions.stim.intensity_pct_rmt"] <= 120.0
    exp = load_experiment(out / "best.toml")
    assert exp.spec["conditions"]["stim"]["intensity_pct_rmt"] == pytest.approx(
        summary["best_params"]["conditions.stim.intensity_pct_rmt"])
    runs = sorted(f.name for f in (out / "store").glob("*.json"))
    assert len(runs) == 3                                  # 2 trials + 1 validation run
    assert main(args) == 0                                 # resumed: nothing new to run
    assert sorted(f.name for f in (out / "store").glob("*.json")) == runs
    assert json.loads(capsys.readouterr().out)["best_loss"] == summary["best_loss"]
