"""The circuit is data (issue 10): populations and projections declared in models/circuit.toml,
Brian2 synapse groups derived from the declarations, a new population (VIP) added by a model
folder alone, a projection with ``plasticity = "none"`` static.

Cost: one runtime (numpy) circuit of 100 cells with a 0.3-s phase, run twice; the rest reads
declarations and draws connectivity without Brian2.
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from cortexsim import populations as P
from cortexsim.circuit import equations as eq
from cortexsim.circuit.connectivity import draw, projections
from cortexsim.circuit.layout import Layout
from cortexsim.circuit.network import Circuit, Stimulus
from cortexsim.circuit.tms import Coupling
from cortexsim.errors import InputError
from cortexsim.experiment.spec import model_trees
from cortexsim.params import ParamTree, load_model, models_dir
from cortexsim.plasticity import rules

VIP_C_PF = 50.0  # the VIP cells' own capacitance (differs from every shipped cell model)


def _inline(node: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in node.items()) + " }"


def vip_model_folder(root):
    """A user's model folder: the shipped files plus a VIP population (own cell parameters,
    SST's coupling model) with E -> VIP and VIP -> SST projections."""
    for f in models_dir().glob("*.toml"):
        shutil.copy(f, root / f.name)
    with (root / "cells.toml").open("rb") as fh:
        sst = tomllib.load(fh)["SST"]
    lines = ["", "[VIP]"]
    for k, node in sst.items():
        if k != "target":
            node = dict(node, source="assumption: test population (SST values)")
            if k == "C":
                node["value"] = VIP_C_PF
            lines.append(f"{k} = {_inline(node)}")
    (root / "cells.toml").write_text((root / "cells.toml").read_text() + "\n".join(lines) + "\n")
    src = 'source = "assumption: test population"'
    (root / "circuit.toml").write_text(
        (root / "circuit.toml").read_text()
        + f"""
[populations.VIP]
cell = "VIP"
coupling = "SST"
layer = "L2/3"
type = "inhibitory"
spine_sites = false
fraction = {{ value = 0.06, unit = "1", {src} }}
g_background = {{ value = 0.5, unit = "nS", {src} }}

[conn.IT_L23.VIP]
receptors = ["AMPA", "NMDA"]
target = "soma"
plasticity = "none"
short_term = "depression"
p = {{ value = 0.3, unit = "1", {src} }}
g = {{ value = 1.0, unit = "nS", {src} }}

[conn.VIP.SST]
receptors = ["GABA_A"]
target = "soma"
plasticity = "none"
short_term = "none"
p = {{ value = 0.5, unit = "1", {src} }}
g = {{ value = 1.0, unit = "nS", {src} }}
"""
    )
    return root


@pytest.fixture(scope="module")
def vip_folder(tmp_path_factory):
    return vip_model_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def vip_circuit(vip_folder):
    """VIP added by data; IT_L23 -> IT_L23 declared static (plasticity = "none")."""
    circ = load_model(vip_folder / "circuit.toml")
    circ.set("conn.IT_L23.IT_L23.plasticity", "none")
    return Circuit(
        100,
        duration_s=0.3,
        seed=2,
        params=circ,
        target="runtime",
        cell_params=load_model(vip_folder / "cells.toml"),
    )


def _modified(edit) -> ParamTree:
    """The shipped circuit model after ``edit`` of its raw nested dict."""
    d = copy.deepcopy(dict(load_model("circuit")))
    edit(d)
    return ParamTree.from_dict(d, name="circuit")


def _pairs(c, group, pre, post):
    i, j = c.conn[group]["i"], c.conn[group]["j"]
    sp, so = c.slices[pre], c.slices[post]
    return (i >= sp.start) & (i < sp.stop) & (j >= so.start) & (j < so.stop)


# --------------------------------------------------------------------------- populations
def test_population_lists_come_from_the_model():
    tree = load_model("circuit")
    table = P.population_table(tree)
    assert P.populations(tree) == tuple(tree.values()["populations"]) == P.POPULATIONS
    assert P.excitatory(tree) == tuple(n for n, p in table.items() if p.type == "excitatory")
    assert set(P.excitatory(tree)) | set(P.inhibitory(tree)) == set(P.populations(tree))
    added = _modified(
        lambda d: d["populations"].update(VIP=dict(d["populations"]["SST"], cell="VIP"))
    )
    assert P.populations(added)[-1] == "VIP" and "VIP" in P.inhibitory(added)
    assert P.check_population("VIP", tree=added) == "VIP"
    with pytest.raises(InputError, match="cell_type"):
        P.check_population("VIP", tree=tree)


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d["populations"]["PV"].update(type="modulatory"), "populations.PV.type"),
        (lambda d: d["populations"]["PV"].pop("fraction"), "populations.PV"),
        (lambda d: d["populations"]["PV"].update(spine_sites="yes"), "populations.PV.spine_sites"),
        (lambda d: d["populations"]["PV"]["fraction"].update(value=0.0), "populations.PV.fraction"),
        (lambda d: d["populations"]["PV"].update(colour="red"), "populations.PV.colour"),
        (lambda d: d.pop("populations"), "circuit.populations"),
    ],
)
def test_bad_population_declarations(edit, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        Circuit(100, duration_s=0.1, params=_modified(edit), target="runtime")


# --------------------------------------------------------------------------- projections
@pytest.mark.parametrize(
    "edit, field, allowed",
    [
        (
            lambda d: d["conn"]["PV"]["IT_L23"].update(receptors=["AMPA"]),
            "conn.PV.IT_L23.receptors",
            "GABA_A",
        ),
        (
            lambda d: d["conn"]["IT_L5"]["PV"].update(receptors=["GABA_A"]),
            "conn.IT_L5.PV.receptors",
            "AMPA",
        ),
        (
            lambda d: d["conn"]["IT_L5"]["PV"].update(plasticity="stdp"),
            "conn.IT_L5.PV.plasticity",
            "graupner_brunel",
        ),
        (
            lambda d: d["conn"]["SST"]["PT_L5"].update(target="apical_tuft"),
            "conn.SST.PT_L5.target",
            "soma",
        ),
        (
            lambda d: d["conn"]["SST"]["PT_L5"].update(short_term="facilitation"),
            "conn.SST.PT_L5.short_term",
            "depression",
        ),
        (lambda d: d["conn"]["SST"]["PT_L5"].pop("receptors"), "conn.SST.PT_L5", "receptors"),
        (lambda d: d["conn"]["SST"].update(VIP=d["conn"]["SST"]["PV"]), "conn.SST", "IT_L23"),
        (lambda d: d["conn"]["SST"]["PV"]["p"].update(value=-0.1), "conn.SST.PV.p", None),
    ],
)
def test_bad_projection_declarations(edit, field, allowed):
    """Checked before any build; the message names the field and what is allowed."""
    with pytest.raises(InputError, match=field.replace(".", r"\.")) as e:
        Circuit(100, duration_s=0.1, params=_modified(edit), target="runtime")
    if allowed is not None:
        assert allowed in str(e.value)


def test_synapse_groups_follow_the_declarations():
    """One group per (receptors, rule, short-term dynamics, delay, target); every declared projection
    in exactly one; a projection with its own delay gets its own group."""

    def groups_of(tree):
        lay = Layout.build(200, tree)
        projs = projections(tree, lay)
        used = {p.plasticity for p in projs}
        return projs, draw(
            projs,
            lay,
            np.random.default_rng(0),
            {n: rules.get_rule(n) for n in used},
            n_total=200,
            reference=tree.value("scale.reference"),
            occupancy=tree.value("plasticity.site_occupancy"),
        )

    projs, groups = groups_of(load_model("circuit"))
    grouped = [pr for g in groups.values() for pr in g.projections]
    assert len(grouped) == len(projs) and set(grouped) == set(projs)
    assert len(groups) == len({pr.group_key for pr in projs})
    for g in groups.values():
        assert {pr.group_key for pr in g.projections} == {
            (g.receptors, g.rule, g.short_term, g.delay_ms, g.target)
        }
        assert g.sites == (
            rules.get_rule(g.rule).structural
            and any(P.population_table()[pr.post].spine_sites for pr in g.projections)
        )
    (site,) = [g for g in groups.values() if g.sites]
    assert 0 < site.conn["on"].mean() < 1  # occupancy drawn for spine sites only
    assert all(np.all(g.conn["on"] == 1) for g in groups.values() if not g.sites)
    slow = _modified(
        lambda d: d["conn"]["SST"]["PV"].update(
            delay={"value": 3.0, "unit": "ms", "source": "assumption: test"}
        )
    )
    _, g2 = groups_of(slow)
    (own,) = [g for g in g2.values() if g.delay_ms == 3.0]
    assert [(pr.pre, pr.post) for pr in own.projections] == [("SST", "PV")]
    assert len(g2) == len(groups) + 1


def test_a_new_rule_plugs_in_without_editing_the_circuit(monkeypatch):
    """A rule registered under a new name is usable by a projection at once."""

    class Halved(rules.Static):
        name, short = "halved", "half"

        def receptor_scale(self, receptor):
            return "0.5*", ""

    monkeypatch.setitem(rules.RULES, "halved", Halved)
    tree = _modified(lambda d: d["conn"]["IT_L5"]["PV"].update(plasticity="halved"))
    lay = Layout.build(200, tree)
    projs = projections(tree, lay)
    groups = draw(
        projs,
        lay,
        np.random.default_rng(0),
        {n: rules.get_rule(n) for n in {p.plasticity for p in projs}},
        n_total=200,
        reference=4000,
        occupancy=0.75,
    )
    (g,) = [g for g in groups.values() if g.rule == "halved"]
    assert g.name.endswith("_half") and [(p.pre, p.post) for p in g.projections] == [
        ("IT_L5", "PV")
    ]
    _, code = eq.transmission(g.receptors, g.short_term, Halved(), 0.25)
    assert "x_rel*0.5*g0" in code and "x_rel*0.5*0.25*g0" in code


# --------------------------------------------------------------------------- built network
def test_vip_population_added_by_data_alone(vip_circuit):
    import brian2 as b2

    c = vip_circuit
    assert c.populations[-1] == "VIP" and c.sizes["VIP"] >= 1
    assert (
        c.N == sum(c.sizes.values())
        and c.pop_index[c.slices["VIP"]].tolist() == [len(c.populations) - 1] * c.sizes["VIP"]
    )
    # its own cell parameters and the declared coupling model's thresholds
    np.testing.assert_allclose(c.G.C[c.slices["VIP"]] / b2.pF, VIP_C_PF)
    assert np.all(np.isfinite(c.tms_threshold_vpm[c.slices["VIP"]]))
    # the declared projections, and no undeclared ones, in the built Brian2 groups
    inh = [n for n, g in c.groups.items() if g.receptors == ("GABA_A",)]
    exc = [n for n, g in c.groups.items() if g.receptors == ("AMPA", "NMDA")]
    assert sum(_pairs(c, n, "VIP", "SST").sum() for n in inh) > 0
    assert sum(_pairs(c, n, "IT_L23", "VIP").sum() for n in exc) > 0
    for n in c.groups:
        S = c.synapses[n]
        np.testing.assert_array_equal(S.i[:], c.conn[n]["i"])
        np.testing.assert_array_equal(S.j[:], c.conn[n]["j"])
        for post in c.populations:
            if post != "SST":
                assert not _pairs(c, n, "VIP", post).any()
        for pre in c.populations:
            if pre != "IT_L23":
                assert not _pairs(c, n, pre, "VIP").any()
    res = c.run(run_seed=1)
    assert "VIP" in res.pop_rates_hz and res.mean_rate("VIP") >= 0


def test_static_projection_has_no_plastic_state(vip_circuit):
    """IT_L23 -> IT_L23 declared plasticity = "none": static synapses, not spine sites, with
    conductances that a stimulated run leaves unchanged; plastic sites still change."""
    c = vip_circuit
    (static,) = [
        n for n, g in c.groups.items() if g.rule == "none" and g.receptors == ("AMPA", "NMDA")
    ]
    assert _pairs(c, static, "IT_L23", "IT_L23").sum() > 0
    assert not _pairs(c, c.site_group, "IT_L23", "IT_L23").any()
    assert c.n_sites == c.conn["ee"]["i"].size == c.conn[c.site_group]["i"].size
    S = c.synapses[static]
    assert not {"rho", "c", "on", "t_above_p"} & set(S.variables)
    g_before = np.array(S.g0_[:])
    res = c.run(Stimulus(np.arange(0.04, 0.26, 0.02), 300.0), run_seed=3)
    np.testing.assert_array_equal(S.g0_[:], g_before)
    assert static not in res.groups and res.syn is res.groups[c.site_group]
    assert np.any(res.syn["rho"] != c.initial_rho)
    with pytest.raises(InputError, match="overrides"):
        c.run(overrides={f"{static}.rho": np.zeros(S.N)})


def test_vip_from_a_model_folder_named_by_the_environment(vip_folder):
    """CORTEXSIM_MODELS names the user's folder: population lists, cell models and the circuit
    come from it, with no argument passed (fresh process: cell models are read at import)."""
    code = (
        "from cortexsim.populations import populations, inhibitory\n"
        "from cortexsim.circuit.network import Circuit\n"
        "c = Circuit(100, duration_s=0.1, seed=1, target='runtime')\n"
        "print(populations()[-1], inhibitory()[-1], c.populations[-1], c.sizes['VIP'] > 0,\n"
        "      c.site_rule.name)\n"
    )
    env = dict(os.environ, CORTEXSIM_MODELS=str(vip_folder))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["VIP", "VIP", "VIP", "True", "graupner_brunel"]


# --------------------------------------------------------------------------- TMS coupling
def _coupling_with_vip(folder):
    """``folder``'s coupling file plus a ``[cells.VIP]`` coupling model: SST's table with a
    doubled firing depolarisation (so its thresholds are twice SST's)."""
    with (folder / "coupling.toml").open("rb") as fh:
        sst = tomllib.load(fh)["cells"]["SST"]
    lines = ["", "[cells.VIP]"]
    for k, node in sst.items():
        node = dict(node, source="assumption: test population (SST values)")
        if k == "dV_th_mV":
            node["value"] = 2 * node["value"]
        lines.append(f"{k} = {_inline(node)}")
    text = (folder / "coupling.toml").read_text()
    (folder / "coupling.toml").write_text(text + "\n".join(lines) + "\n")
    circ = (folder / "circuit.toml").read_text()
    (folder / "circuit.toml").write_text(
        circ.replace(
            '[populations.VIP]\ncell = "VIP"\ncoupling = "SST"',
            '[populations.VIP]\ncell = "VIP"\ncoupling = "VIP"',
        )
    )


def test_vip_in_the_threshold_and_celltypes_commands(vip_folder, tmp_path):
    """A cell model and a coupling model added by a model folder alone are listed and
    simulated by ``cortexsim celltypes`` and accepted by ``cortexsim threshold``."""
    folder = tmp_path / "models"
    shutil.copytree(vip_folder, folder)
    _coupling_with_vip(folder)
    env = dict(os.environ, CORTEXSIM_MODELS=str(folder))
    # the three commands in ONE fresh process with the folder (cell models are read at
    # import), each through cortexsim.cli.main with its own exit status and JSON document
    # (one process, not three: ~2 s of imports each)
    code = (
        "import contextlib, io, json, sys\n"
        "from cortexsim.cli import main\n"
        "for args in sys.argv[1:]:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        rc = main([*args.split(), '--json'])\n"
        "    print(json.dumps([rc, buf.getvalue()]))\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "threshold --cell-type VIP",
            "threshold --cell-type SST",
            "celltypes",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [rc for rc, _ in docs] == [0, 0, 0], out.stderr[-2000:]
    vip, sst, cells = (json.loads(doc) for _, doc in docs)
    assert vip["cell_type"] == "VIP"
    assert vip["threshold_vpm"] == pytest.approx(2 * sst["threshold_vpm"], rel=1e-6)
    rows = {r["name"]: r for r in cells}
    assert list(rows) == list(P.populations(load_model(folder / "circuit.toml")))
    assert all(v is None for v in rows["VIP"]["target"].values())
    assert rows["VIP"]["simulated"]["v_rest_mV"] == pytest.approx(
        rows["SST"]["simulated"]["v_rest_mV"], abs=0.5
    )  # same parameters but C
    # the shipped model folder does not know VIP
    out = subprocess.run(
        [sys.executable, "-m", "cortexsim.cli", "threshold", "--cell-type", "VIP"],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CORTEXSIM_MODELS"},
    )
    assert out.returncode == 2 and "cell_type" in out.stderr and "SST" in out.stderr


def test_a_population_with_an_undeclared_coupling_model():
    tree = _modified(lambda d: d["populations"]["PV"].update(coupling="chandelier"))
    lay = Layout.build(200, tree)
    with pytest.raises(InputError, match=r"circuit\.populations\.PV\.coupling") as e:
        Coupling().cell_properties(lay, np.random.default_rng(0))
    assert "afferent" in str(e.value)


def test_coupling_override_changes_that_population_only():
    """A spec's ``coupling.cells.PT_L5.*`` override (through ``model_trees``, as the runner
    builds the trees) reaches the circuit's thresholds: PT_L5's scale with its firing
    depolarisation, every other population's and every polarisation gain stay; the build key
    changes."""
    base = model_trees({})
    dv = base["coupling"].value("cells.PT_L5.dV_th_mV")
    over = model_trees({"coupling.cells.PT_L5.dV_th_mV": 1.5 * dv})
    kw = dict(duration_s=0.1, seed=1, target="runtime")
    c0 = Circuit(100, coupling_params=base["coupling"], **kw)
    c1 = Circuit(100, coupling_params=over["coupling"], **kw)
    for p, s in c0.slices.items():
        if p == "PT_L5":
            np.testing.assert_allclose(
                c1.tms_threshold_vpm[s], 1.5 * c0.tms_threshold_vpm[s], rtol=1e-12
            )
        else:
            np.testing.assert_array_equal(c1.tms_threshold_vpm[s], c0.tms_threshold_vpm[s])
    np.testing.assert_array_equal(c1.polarization_mV_per_vpm, c0.polarization_mV_per_vpm)
    np.testing.assert_array_equal(np.asarray(c1.G.thr_tms[:]), c1.tms_threshold_vpm)
    assert c1.config_hash() != c0.config_hash()
    # the default tree and no tree give the same thresholds
    c2 = Circuit(100, **kw)
    np.testing.assert_array_equal(c2.tms_threshold_vpm, c0.tms_threshold_vpm)
