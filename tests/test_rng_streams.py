"""Named random streams (issue 22, item 2; case 22): one seed schedule
(:class:`cortexsim.rng.SeedSchedule`) gives every seed of a study -- the network's generators,
the structural kernel's seed, and the noise seed of every network run --, and no two of them
are equal within a long study or between two experiment seeds.  The runner and the circuit take
their seeds from it (the seeds logged from a small study are those of the schedule, and a noise
seed reaches the network's run-time variable losslessly)."""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from cortexsim import rng as R
from cortexsim.rng import STREAMS, SeedSchedule

STUDY = Path(__file__).resolve().parent.parent / "experiments" / "aitbs_study.toml"
SESSIONS = 48 * 30  # 48 sessions a day for 30 days: a valid, long protocol


def study_streams(seed: int, conditions, n_sessions: int) -> dict:
    """(stream, index) -> the 64-bit identity of every stream a study of ``conditions`` with
    ``n_sessions`` sessions each uses: the shared ones once, each condition's sessions."""
    s = SeedSchedule(seed)
    out = {(name, ()): s.integer(name) for name, st in STREAMS.items() if not st.index}
    for c, k in itertools.product(conditions, range(n_sessions)):
        out[("session", (c, k))] = s.integer("session", condition=c, session=k)
    return out


def _study_conditions() -> list[str]:
    return list(tomllib.loads(STUDY.read_text())["conditions"])


def test_every_stream_of_a_long_study_and_of_two_seeds_is_distinct():
    """Case 22: session 490 used to get the read-out seed, session 991 the next seed's rest run,
    and the coupling ablation's generator was the network generator of seed + 7."""
    conds = _study_conditions()
    assert len(conds) == 5
    ident, noise = {}, {}
    for seed in (1, 2):
        for (name, index), v in study_streams(seed, conds, SESSIONS).items():
            assert v not in ident, f"{(seed, name, index)} shares {ident[v]}"
            ident[v] = (seed, name, index)
            if STREAMS[name].kind == "noise":
                n = SeedSchedule(seed).noise_seed(name, **dict(zip(STREAMS[name].index, index)))
                assert n not in noise, f"{(seed, name, index)} shares {noise[n]}"
                noise[n] = (seed, name, index)
    assert len(ident) == 2 * (len(conds) * SESSIONS + sum(not s.index for s in STREAMS.values()))
    assert len(noise) == 2 * (len(conds) * SESSIONS + 2)  # sessions, rest, read-out
    # the shared streams of neighbouring seeds (the old seed + 7, seed * 1000 + k offsets)
    shared = [(seed, n) for seed in range(1, 40) for n, st in STREAMS.items() if not st.index]
    vals = [SeedSchedule(seed).integer(n) for seed, n in shared]
    assert len(set(vals)) == len(vals)
    # and no stream is the plain generator of any seed (what tests and users draw from)
    plain = {
        int.from_bytes(
            np.random.SeedSequence(s).generate_state(2, np.uint32).astype(">u4").tobytes(), "big"
        )
        for s in range(0, 40)
    }
    assert not plain & set(vals)


def test_the_first_draws_of_the_generators_differ():
    """Distinct SeedSequences give generators with distinct draws (not only distinct keys)."""
    s = SeedSchedule(1)
    gens = [n for n, st in STREAMS.items() if st.kind == "generator"]
    first = {n: s.generator(n).random(4).tobytes() for n in gens}
    assert len(set(first.values())) == len(gens)
    with pytest.raises(ValueError, match="noise"):
        s.generator("readout")
    with pytest.raises(ValueError, match="generator"):
        s.noise_seed("connectivity")


def test_same_seed_same_streams_in_any_process():
    """Reproducible: the same seed gives the same streams, in another process too (condition
    names are hashed with BLAKE2b, not Python's salted ``hash``), and a few values are pinned:
    changing the schedule changes every result, so it must be a deliberate change."""
    a, b = SeedSchedule(7), SeedSchedule(7)
    assert study_streams(7, ["x", "y"], 50) == study_streams(7, ["x", "y"], 50)
    assert (
        a.generator("connectivity").random(5).tolist()
        == b.generator("connectivity").random(5).tolist()
    )
    code = (
        "from cortexsim.rng import SeedSchedule as S; s = S(7); "
        "print(s.noise_seed('session', condition='stress_aitbs', session=3), "
        "s.kernel_seed(), s.noise_seed('readout'))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": h},
        ).stdout
        for h in ("1", "2")
    }
    assert outs == {
        f"{a.noise_seed('session', condition='stress_aitbs', session=3)} "
        f"{a.kernel_seed()} {a.noise_seed('readout')}\n"
    }
    # pinned (numpy's SeedSequence is a documented, stable algorithm)
    assert SeedSchedule(1).spawn_key("session", condition="c", session=2)[0] == 9
    assert SeedSchedule(1).noise_seed("rest") == PINNED_REST_1
    assert SeedSchedule(1).noise_seed("session", condition="stim", session=0) == PINNED_STIM_0_1


PINNED_REST_1 = 3263611889608965  # SeedSchedule(1).noise_seed("rest")
PINNED_STIM_0_1 = 3053202303141099  # ... ("session", condition="stim", session=0)


def test_a_condition_is_identified_by_its_name_not_its_position():
    s = SeedSchedule(1)
    one = s.noise_seed("session", condition="stress_aitbs", session=0)
    assert one == SeedSchedule(1).noise_seed("session", condition="stress_aitbs", session=0)
    assert one != s.noise_seed("session", condition="stress_sham", session=0)
    assert one != s.noise_seed("session", condition="stress_aitbs", session=1)
    assert one != SeedSchedule(2).noise_seed("session", condition="stress_aitbs", session=0)


@pytest.mark.parametrize(
    "stream, index, match",
    [
        ("nope", {}, "unknown random stream"),
        ("readout", {"session": 1}, "indexed by"),
        ("session", {"condition": "a"}, "indexed by"),
        ("session", {"condition": "a", "session": -1}, "session must be"),
        ("session", {"condition": "a", "session": 2**32}, "session must be"),
        ("session", {"condition": "a", "session": 1.5}, "session must be"),
        ("session", {"condition": "", "session": 1}, "condition name"),
    ],
)
def test_bad_stream_requests_are_refused(stream, index, match):
    with pytest.raises(ValueError, match=match):
        SeedSchedule(1).spawn_key(stream, **index)


def test_noise_seeds_are_exact_in_float64_for_every_accepted_seed():
    """The run-time variable that carries a run's noise seed is float64: every derived seed is
    below 2**52, so it survives the round trip; the largest experiment seed included."""
    from cortexsim.experiment import SEED_MAX

    for seed in (0, 1, SEED_MAX):
        s = SeedSchedule(seed)
        for n in (
            s.noise_seed("rest"),
            s.noise_seed("readout"),
            s.noise_seed("session", condition="c", session=10**6),
        ):
            assert 0 <= n < 2**R.NOISE_SEED_BITS and int(float(n)) == n
    with pytest.raises(ValueError):
        SeedSchedule(-1)


# --------------------------------------------------------------------------- consumers
@pytest.fixture(scope="module")
def runtime_circuit():
    from cortexsim.circuit.network import Circuit

    return Circuit(100, duration_s=0.1, seed=5, target="runtime")


def test_derived_noise_seed_reaches_the_network_run(runtime_circuit):
    """``Circuit.run(run_seed=...)`` puts the seed, unrounded, into the network's ``run_seed``
    variable that the counter-based noise hashes (``hash_poisson(..., run_seed, stream)``), and
    the noise follows it: the same seed gives the same spikes, the next 52-bit seed others."""
    c = runtime_circuit
    seed = SeedSchedule(5).noise_seed("session", condition="stim", session=489)
    assert seed > 2**40  # many bits to lose in a rounding
    r1 = c.run(None, run_seed=seed)
    assert np.array_equal(np.asarray(c.G.run_seed[:]), np.full(c.N, float(seed)))
    assert int(np.asarray(c.G.run_seed[:])[0]) == seed
    r2 = c.run(None, run_seed=seed)
    r3 = c.run(None, run_seed=seed + 1)
    assert r1.spike_i.size > 0
    assert np.array_equal(r1.spike_i, r2.spike_i) and np.array_equal(r1.spike_t, r2.spike_t)
    assert not (np.array_equal(r1.spike_i, r3.spike_i) and np.array_equal(r1.spike_t, r3.spike_t))
    from cortexsim.errors import InputError

    for bad in (-1, 2**R.NOISE_SEED_BITS, 0.5):
        with pytest.raises(InputError, match="run_seed"):
            c.run(None, run_seed=bad)


def test_the_circuit_draws_from_its_named_streams(runtime_circuit):
    """Connectivity, thresholds and initial efficacies each come from their own stream: the
    thresholds are those the ``thresholds`` stream gives for the layout, whatever the
    connectivity drew before them."""
    c = runtime_circuit
    thr, pol = c.coupling.cell_properties(c.layout, SeedSchedule(5).generator("thresholds"))
    np.testing.assert_array_equal(thr, c.tms_threshold_vpm)
    np.testing.assert_array_equal(pol, c.polarization_mV_per_vpm)


@pytest.mark.slow
def test_a_study_takes_every_seed_from_the_schedule(monkeypatch):
    """Every network run of a small study (pass 1, two stimulated conditions with two sessions
    each, a control, read-outs) gets a noise seed of the schedule, each condition's sessions
    their own; the structural kernel runs on the schedule's kernel seed."""
    from test_resume import SPEC

    from cortexsim.circuit import network
    from cortexsim.experiment import Experiment
    from cortexsim.plasticity import structural

    spec = copy.deepcopy(SPEC)
    spec["conditions"]["stress_tbs_b"] = copy.deepcopy(spec["conditions"]["stress_tbs"])
    spec["conditions"]["control"] = {"stress": False}
    runs, kernel = [], set()
    run, advance = network.Circuit.run, structural.advance

    def logged_run(self, stimulus=None, **kw):
        runs.append(kw["run_seed"])
        return run(self, stimulus, **kw)

    def logged_advance(*a, **kw):
        kernel.add(a[6])
        return advance(*a, **kw)

    monkeypatch.setattr(network.Circuit, "run", logged_run)
    monkeypatch.setattr(structural, "advance", logged_advance)
    Experiment.from_dict(spec).run(progress=False)
    s = SeedSchedule(spec["experiment"]["seed"])
    sessions = {
        s.noise_seed("session", condition=c, session=k)
        for c in ("stress_tbs", "stress_tbs_b")
        for k in (0, 1)
    }
    assert set(runs) == sessions | {s.noise_seed("rest"), s.noise_seed("readout")}
    assert len(sessions) == 4
    assert kernel == {s.kernel_seed()}
