"""Dopamine receptors per cell (issue 20, item 1): each cell expresses D1 or D2 with its
population's measured probability (``[dopamine.receptors.*]``), drawn once per seed from the
named stream ``"receptors"``; the gate ``G_i = 1 + DA (gain_d1 D1_i + gain_d2 D2_i)`` raises the
drive of the cells that carry a receptor (the signs measured in PFC) and never shuts one.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from cortexsim.errors import InputError
from cortexsim.experiment.phases import ConditionRun
from cortexsim.experiment.spec import model_trees
from cortexsim.plasticity import structural as SP
from cortexsim.rng import STREAMS, SeedSchedule

POPS = ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")
N_PER_POP = 20000
POP_INDEX = np.repeat(np.arange(len(POPS)), N_PER_POP)
DA_GRID = np.linspace(0.0, 0.999, 7)
GAIN_GRID = (0.0, 0.5, 2.743, 9.534, 50.0)  # the model file's range [0, 50] and the fit


def _tree(overrides=None):
    return model_trees({"mechanisms.dopamine_d1.enabled": True, **(overrides or {})})["structural"]


def _draw(seed, tree=None, pop_index=POP_INDEX):
    return SP.draw_receptors(
        POPS,
        pop_index,
        SeedSchedule(seed).generator("receptors"),
        tree if tree is not None else _tree(),
    )


def _of(x, pop):
    return x[POP_INDEX == POPS.index(pop)]


def test_receptors_are_a_named_stream_of_the_seed():
    assert STREAMS["receptors"].kind == "generator" and STREAMS["receptors"].index == ()
    assert len({s.id for s in STREAMS.values()}) == len(STREAMS)


def test_draws_reproducible_for_a_seed_and_different_for_another():
    a, b, c = _draw(1), _draw(1), _draw(2)
    np.testing.assert_array_equal(a.d1, b.d1)
    np.testing.assert_array_equal(a.d2, b.d2)
    assert not np.array_equal(a.d1, c.d1) and not np.array_equal(a.d2, c.d2)


def test_every_condition_of_a_run_gets_the_same_cells():
    """ConditionRun draws from the seed's stream: two conditions (different protocols) of one
    seed have the same receptor cells; the mechanism off draws nothing."""
    from cortexsim.protocols import get_protocol

    trees = model_trees({"mechanisms.dopamine_d1.enabled": True})

    def run(protocol):
        return SimpleNamespace(
            proto=get_protocol(protocol),
            trees=trees,
            populations=POPS,
            structural=trees["structural"].values(),
            streams=SeedSchedule(5),
            layout=SimpleNamespace(pop_index=POP_INDEX),
        )

    r1, r2 = (ConditionRun._draw_receptors(run(p)) for p in ("aitbs_day", "sham_aitbs_day"))
    np.testing.assert_array_equal(r1.d1, r2.d1)
    np.testing.assert_array_equal(r1.d2, r2.d2)
    off = model_trees({})
    assert (
        ConditionRun._draw_receptors(
            SimpleNamespace(
                trees=off,
                populations=POPS,
                streams=SeedSchedule(5),
                layout=SimpleNamespace(pop_index=POP_INDEX),
            )
        )
        is None
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_expressing_fractions_match_the_probabilities(seed):
    tree = _tree()
    p1, p2 = SP.receptor_probabilities(POPS, tree)
    rec = _draw(seed, tree)
    for k, pop in enumerate(POPS):
        for p, x in ((p1[k], _of(rec.d1, pop)), (p2[k], _of(rec.d2, pop))):
            se = np.sqrt(p * (1 - p) / N_PER_POP)
            assert abs(x.mean() - p) <= 4 * se + 1e-12, (pop, p, x.mean())
    assert not (rec.d1 & rec.d2).any()  # "little overlap" in L5: none drawn


def test_model_file_probabilities():
    """The values the sources give (Santana et al. 2009 per layer, split into IT / PT as the
    model file derives it)."""
    p1, p2 = SP.receptor_probabilities(POPS, _tree())
    np.testing.assert_allclose(p1, [0.20, 0.30, 0.10, 0.0, 0.0])
    np.testing.assert_allclose(p2, [0.05, 0.0, 0.50, 0.0, 0.0])
    # the L5 layer fractions are recovered with the model's IT share of L5 (0.5)
    assert 0.5 * p1[1] + 0.5 * p1[2] == pytest.approx(0.20)
    assert 0.5 * p2[1] + 0.5 * p2[2] == pytest.approx(0.25)


def test_a_larger_probability_only_adds_cells():
    base = _draw(1)
    more = _draw(1, _tree({"structural.dopamine.receptors.PT_L5.d1_probability": 0.3}))
    np.testing.assert_array_equal(base.d2, more.d2)  # D2 cells untouched
    assert (more.d1 >= base.d1).all() and more.d1.sum() > base.d1.sum()


def test_probabilities_summing_above_one_are_an_input_error():
    tree = _tree({"structural.dopamine.receptors.PT_L5.d1_probability": 0.6})
    with pytest.raises(InputError, match=r"structural\.dopamine\.receptors\.PT_L5"):
        _draw(1, tree)


@pytest.mark.parametrize("g1, g2", list(itertools.product(GAIN_GRID, GAIN_GRID)))
def test_no_population_gate_is_ever_zero(g1, g2):
    """Every DA in [0, 1) and every pair of gains in the model file's range: each cell's gate
    is >= 1, so no population's drive is shut (the old fraction gate was 0 for PT_L5 at
    DA > 0.73 or gain_d2 > 2.33)."""
    tree = _tree({"structural.dopamine.gain_d1": g1, "structural.dopamine.gain_d2": g2})
    rec = _draw(1, tree)
    for da in DA_GRID:
        g = np.broadcast_to(SP.dopamine_gate(da, rec, tree), POP_INDEX.shape)
        assert g.min() >= 1.0, (g1, g2, da)
        for pop in POPS:
            assert _of(g, pop).mean() >= 1.0


def test_the_gate_is_the_equation_per_cell():
    tree = _tree({"structural.dopamine.gain_d1": 9.534, "structural.dopamine.gain_d2": 2.743})
    rec = _draw(1, tree)
    g = SP.dopamine_gate(0.85, rec, tree)
    np.testing.assert_array_equal(g[rec.d1], 1 + 0.85 * 9.534)
    np.testing.assert_array_equal(g[rec.d2], 1 + 0.85 * 2.743)
    np.testing.assert_array_equal(g[~rec.d1 & ~rec.d2], 1.0)


@pytest.mark.parametrize("g2", [0.5, 2.743, 50.0])
def test_d2_cells_get_a_larger_drive(g2):
    """The measured sign (Gee et al. 2012): with the same NMDA-calcium excess, a PT_L5 cell
    expressing D2 gets a larger drive than one without receptors (D1 off to isolate D2)."""
    tree = _tree(
        {
            "structural.dopamine.gain_d1": 0.0,
            "structural.dopamine.gain_d2": g2,
            "structural.activity.nmda_gain": 100.0,
        }
    )
    rec = _draw(1, tree)
    pt = POP_INDEX == POPS.index("PT_L5")
    d2, none = pt & rec.d2, pt & ~rec.d1 & ~rec.d2
    assert d2.any() and none.any()
    n = POP_INDEX.size
    gate = SP.dopamine_gate(0.8, rec, tree)
    drive = SP.session_drive(
        np.zeros(n), np.zeros(n), np.full(n, 0.012), np.full(n, 0.01), 592.0, gate, tree
    )
    assert drive[none].min() > 0
    assert drive[d2].min() > drive[none].max()
    np.testing.assert_allclose(drive[d2] / drive[none].max(), 1 + 0.8 * g2)


@pytest.mark.parametrize("da", DA_GRID)
def test_mechanism_off_gives_gate_one(da):
    """The default model (gains 0): G = 1 everywhere, whatever the dopamine and receptors."""
    off = model_trees({})["structural"]
    assert not SP.dopamine_gains_on(off)
    assert SP.dopamine_gate(da, _draw(1), off) == 1.0
    assert SP.dopamine_gate(da, None, off) == 1.0
