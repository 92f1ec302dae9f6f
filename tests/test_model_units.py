"""Units of model files are enforced where the files are read (issue 22 item 1, case 21), and
overridden numbers are bounded both ways (case 32).

A user's model folder (``CORTEXSIM_MODELS``) may give a parameter in any unit of its dimension:
it is converted to the unit of the shipped file, so the same physical values give the same
cells, projections and network constants.  A unit of another dimension, an unknown unit or a
missing unit is an error naming the file and the dotted key (``cortexsim run`` exits 2 before
anything is built).  Without a ``range`` in its model file, an override keeps the default's sign
and stays less than 1,000x away from it (or is 0); with one, the range decides.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cortexsim.circuit import cells, equations
from cortexsim.circuit.connectivity import projections
from cortexsim.circuit.layout import Layout
from cortexsim.errors import InputError
from cortexsim.params import ParamTree, _shipped, load_model

SHIPPED = _shipped("models")

#: (file, table, key, factor, unit): the same physical value in another unit
#: (new value = shipped value x factor)
OTHER_UNITS = [
    ("cells", "PT_L5", "C", 1e-3, "nF"),  # capacitance
    ("cells", "PT_L5", "g_L", 1e-3, "uS"),  # conductance
    ("cells", "IT_L5", "tau_w", 1e-3, "s"),  # time constant
    ("cells", "SST", "b", 1e-3, "nA"),
    ("circuit", "background", "rate", 1e-3, "kHz"),  # rate
    ("circuit", "synapse", "tau_ampa", 1e-3, "s"),
    ("circuit", "synapse", "delay_exc", 1e3, "us"),
    ("circuit", "conn.PV.PT_L5", "g", 1e-3, "uS"),
    ("circuit", "populations.IT_L5", "g_background", 1e3, "pS"),
    ("circuit", "scale", "reference", 1e-3, "kiloneuron"),  # a count stays an integer
    ("structural", "formation", "k_form", 1 / 24, "1/h"),  # a rate per hour, not per day
    ("stress", "", "tau_cort", 60.0, "min"),
    ("synaptic", "calcium", "tau_ca", 1e-3, "s"),
]


def _rewrite(path, table: str, key: str, value=None, unit=None, factor=1.0, extra=""):
    """Rewrite ``key = { value = ..., unit = "..." ...`` of ``[table]`` (``""``: top level)
    in the file ``path``: a new value (or the old one times ``factor``), unit, extra text."""
    lines = path.read_text().splitlines()
    section = ""
    pattern = re.compile(
        rf'^{re.escape(key)}\s*=\s*\{{\s*value\s*=\s*([^,]+),\s*unit\s*=\s*"([^"]*)"'
    )
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[] ")
            continue
        m = pattern.match(line)
        if section == table and m:
            new = value if value is not None else repr(float(m.group(1)) * factor)
            lines[i] = (
                f'{key} = {{ value = {new}, unit = "{unit or m.group(2)}"{extra}' + line[m.end() :]
            )
            path.write_text("\n".join(lines) + "\n")
            return
    raise AssertionError(f"{key} not found in [{table}] of {path}")


@pytest.fixture
def user_models(tmp_path):
    """A copy of the shipped model folder with the values of :data:`OTHER_UNITS` in other units."""
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for name, table, key, factor, unit in OTHER_UNITS:
        _rewrite(folder / f"{name}.toml", table, key, unit=unit, factor=factor)
    return folder


def test_the_copy_really_uses_other_units(user_models):
    import tomllib

    raw = tomllib.loads((user_models / "cells.toml").read_text())
    assert raw["PT_L5"]["C"]["unit"] == "nF" and raw["PT_L5"]["C"]["value"] < 1
    raw = tomllib.loads((user_models / "circuit.toml").read_text())
    assert raw["background"]["rate"]["unit"] == "kHz"


@pytest.mark.parametrize("name", sorted({n for n, *_ in OTHER_UNITS}))
def test_other_units_give_the_shipped_values(user_models, name):
    """Every value of the file, converted on load, is the shipped one, bit for bit (the
    conversion's rounding noise is removed), and carries the shipped unit."""
    user, shipped = load_model(user_models / f"{name}.toml"), load_model(name)
    assert user.values() == shipped.values()
    for n, table, key, *_ in OTHER_UNITS:
        if n == name:
            path = f"{table}.{key}" if table else key
            assert user.meta(path)["unit"] == shipped.meta(path)["unit"]
    if name == "circuit":
        assert isinstance(user.value("scale.reference"), int)


def test_other_units_give_the_same_cells_projections_and_network_constants(user_models):
    """What the network is built from: each cell model's parameters (both compartments, SI),
    the projections and the circuit's Brian2 constants."""
    user_cells = load_model(user_models / "cells.toml")
    for pop in cells.cell_models():
        assert cells.compartments(pop, user_cells) == cells.compartments(pop)
        assert cells.si_values(cells.pop_values(pop, user_cells)) == cells.si_values(
            cells.pop_values(pop)
        )
    user_circ, circ = load_model(user_models / "circuit.toml"), load_model("circuit")
    lay = Layout.build(500, circ)
    assert Layout.build(500, user_circ).sizes == lay.sizes
    assert projections(user_circ, lay) == projections(circ, lay)
    a = equations.cell_namespace(user_circ.values(), 1e-4, 0.062, 3.57)
    b = equations.cell_namespace(circ.values(), 1e-4, 0.062, 3.57)
    assert a.keys() == b.keys() and all(np.all(a[k] == b[k]) for k in a)


def test_other_units_through_the_environment(user_models, monkeypatch):
    """Named by ``CORTEXSIM_MODELS`` (after import: nothing is read at import time), the folder
    gives the model trees of a run with the shipped values."""
    from cortexsim.experiment import model_trees

    shipped = {m: t.values() for m, t in model_trees({}).items()}
    monkeypatch.setenv("CORTEXSIM_MODELS", str(user_models))
    assert cells.default_cells().values() == load_model(SHIPPED / "cells.toml").values()
    user = model_trees({})
    assert {m: t.values() for m, t in user.items()} == shipped
    from cortexsim.plasticity import stress, structural, synaptic

    assert structural.equilibrium_fractions() == structural.equilibrium_fractions(
        load_model(SHIPPED / "structural.toml")
    )
    assert synaptic.get_params() == synaptic.get_params(load_model(SHIPPED / "synaptic.toml"))
    assert stress._params(None) == load_model(SHIPPED / "stress.toml").values()


def test_a_range_in_other_units_is_converted_too(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (folder / "circuit.toml").read_text()
    text = re.sub(
        r'^dt = \{ value = 0\.1, unit = "ms", range = \[0\.01, 0\.2\]',
        'dt = { value = 100, unit = "us", range = [10, 200]',
        text,
        flags=re.M,
    )
    (folder / "circuit.toml").write_text(text)
    tree = load_model(folder / "circuit.toml")
    assert tree.value("sim.dt") == 0.1 and tree["sim"]["dt"]["range"] == [0.01, 0.2]
    with pytest.raises(InputError, match=r"\[0.01, 0.2\] ms"):
        tree.set("sim.dt", 0.3)
    tree.set("sim.dt", {"value": 200, "unit": "us"})
    assert tree.value("sim.dt") == 0.2


# --------------------------------------------------------------------------- rejected units
@pytest.mark.parametrize(
    "name, table, key, value, unit, words",
    [
        ("cells", "PT_L5", "C", None, "mV", "wrong dimension"),
        ("cells", "PT_L5", "g_L", None, "furlong_per_fortnight", "cannot convert"),
        ("circuit", "synapse", "tau_ampa", None, "Hz", "wrong dimension"),
        ("circuit", "conn.PV.PT_L5", "g", None, "nA", "wrong dimension"),
        ("structural", "formation", "k_form", None, "h", "wrong dimension"),
        ("circuit", "scale", "reference", "4.0005", "kiloneuron", "not a whole number"),
        ("cells", "PT_L5", "C", '"large"', "nF", "expected a number"),
    ],
)
def test_a_bad_unit_names_file_and_key(tmp_path, name, table, key, value, unit, words):
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    f = folder / f"{name}.toml"
    _rewrite(f, table, key, value=value, unit=unit)
    with pytest.raises(InputError) as e:
        load_model(f)
    assert e.value.field == f"{f}:{table + '.' if table else ''}{key}"
    assert words in str(e.value)


def test_a_missing_unit_is_an_error(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    f = folder / "cells.toml"
    text = re.sub(
        r'^C = \{ value = 153\.929, unit = "pF", source = "[^"]*" \}',
        "C = 154",
        f.read_text(),
        flags=re.M,
    )
    assert "C = 154" in text
    f.write_text(text)
    with pytest.raises(InputError, match=re.escape(f"{f}:PT_L5.C: a parameter needs a unit")):
        load_model(f)
    f.write_text(text.replace("C = 154", 'C = { value = 154, source = "x" }'))
    with pytest.raises(InputError, match=re.escape(f"{f}:PT_L5.C: parameter lacks ['unit']")):
        load_model(f)


def test_a_user_population_takes_the_units_of_its_siblings(tmp_path):
    """Keys the shipped file lacks (a user's population, a dendrite on a cell model that has
    none) are converted like the same keys of the shipped tables."""
    sst = load_model("cells")["SST"]
    lines = ["[VIP]"] + [
        f'{k} = {{ value = {v["value"]!r}, unit = "{v["unit"]}", source = "x" }}'
        for k, v in sst.items()
        if k not in ("C", "target")
    ]
    lines += [
        'C = { value = 0.08, unit = "nF", source = "test" }',
        "[VIP.dendrite]",
        'g_c = { value = 0.01, unit = "uS", source = "test" }',
        'membrane_fraction = { value = 0.5, unit = "1", source = "test" }',
    ]
    f = tmp_path / "cells.toml"
    f.write_text((SHIPPED / "cells.toml").read_text() + "\n" + "\n".join(lines) + "\n")
    vip = load_model(f)
    assert vip.value("VIP.C") == 80.0 and vip.meta("VIP.C")["unit"] == "pF"
    assert vip.value("VIP.dendrite.g_c") == 10.0 and vip.meta("VIP.dendrite.g_c")["unit"] == "nS"
    assert cells.compartments("VIP", vip)["g_c"] == 10.0


def test_a_dict_of_values_keeps_its_units():
    """Readers handed leaves {value, unit} convert them (they never drop the unit)."""
    assert cells.pop_values("PT_L5", {"C": {"value": 0.153929, "unit": "nF"}})[
        "C"
    ] == pytest.approx(cells.pop_values("PT_L5")["C"], rel=1e-12)
    from cortexsim.plasticity import structural, synaptic

    k = load_model("structural").value("formation.k_form")
    assert structural.equilibrium_fractions(
        {"formation.k_form": {"value": k / 24, "unit": "1/h"}}
    ) == pytest.approx(structural.equilibrium_fractions(), rel=1e-12)
    tau = load_model("synaptic").value("calcium.tau_ca")
    assert synaptic.get_params(
        {"calcium.tau_ca": {"value": tau / 1000, "unit": "s"}}
    ).tau_ca == pytest.approx(synaptic.get_params().tau_ca, rel=1e-12)
    with pytest.raises(InputError, match="params.PT_L5.C: unit 'mV' has the wrong dimension"):
        cells.pop_values("PT_L5", {"C": {"value": 1.0, "unit": "mV"}})


def test_the_shipped_files_are_read_unchanged():
    """For the shipped files the conversion is the identity: the same values as the TOML."""
    import tomllib

    for f in sorted(SHIPPED.glob("*.toml")):
        with f.open("rb") as fh:
            raw = tomllib.load(fh)
        assert dict(load_model(f)) == dict(ParamTree.from_dict(raw, name=f.stem)), f.name


def test_cortexsim_run_exits_2_naming_file_and_key(tmp_path):
    """Before anything is built or simulated (the spec's model trees are read first)."""
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    _rewrite(folder / "cells.toml", "PT_L5", "C", unit="mV")
    env = dict(os.environ, CORTEXSIM_MODELS=str(folder), XDG_CACHE_HOME=str(tmp_path / "cache"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cortexsim.cli",
            "run",
            "tiny",
            "--scale",
            "100",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"{folder / 'cells.toml'}:PT_L5.C: unit 'mV' has the wrong dimension" in r.stderr
    assert "compiling" not in r.stderr + r.stdout and not (tmp_path / "out" / "results.nc").exists()


# --------------------------------------------------------------------------- override ranges
@pytest.mark.parametrize(
    "path, value, ok",
    [
        # no range in the model file: same sign, less than 1,000x away either way, or 0
        ("circuit.synapse.tau_ampa", 5.3e-9, False),  # 1e9 x below the default 5.3 ms
        ("circuit.synapse.tau_ampa", 0.0053, False),  # 5.3 ms typed in seconds
        ("circuit.synapse.tau_ampa", 5300.0, False),  # 5.3 ms typed in us
        ("circuit.synapse.tau_ampa", 0.0054, True),
        ("circuit.synapse.tau_ampa", 5299.0, True),
        ("circuit.synapse.tau_ampa", -5.3, False),
        ("circuit.synapse.tau_ampa", 0.0, True),  # switched off (as ablations do)
        ("circuit.populations.IT_L5.g_background", 3.85e-9, False),  # 3.85 nS typed in S
        ("circuit.synapse.E_inh", -0.08, False),  # -80 mV typed in V
        ("circuit.synapse.E_inh", 80.0, False),  # the sign changes
        ("circuit.synapse.E_inh", -70.0, True),
        ("structural.activity.tau_h", 1e-6, False),
        # a value with a unit is checked after conversion
        ("circuit.synapse.tau_ampa", {"value": 5.3e-9, "unit": "s"}, False),
        ("circuit.synapse.tau_ampa", {"value": 5.3, "unit": "s"}, False),
        ("circuit.synapse.tau_ampa", {"value": 0.006, "unit": "s"}, True),
        ("circuit.synapse.tau_ampa", "6 us", True),
        ("circuit.synapse.tau_ampa", "5 us", False),
        # a range declared in the model file wins (bounds included; 0 only if inside)
        ("circuit.sim.dt", 0.01, True),
        ("circuit.sim.dt", 0.0, False),
        ("structural.activity.nmda_gain", 1000.0, True),
        ("structural.activity.nmda_gain", 1000.5, False),
    ],
)
def test_override_ranges_both_ways(path, value, ok):
    from cortexsim.experiment import model_trees

    if ok:
        model_trees({path: value})
    else:
        rest = path.partition(".")[2]  # the error names the path within its model
        with pytest.raises(InputError, match=f"^{re.escape(rest)}: out of range"):
            model_trees({path: value})


def test_the_message_gives_both_bounds():
    tree = load_model("circuit")
    with pytest.raises(InputError) as e:
        tree.set("synapse.tau_ampa", 5.3e-9)
    assert str(e.value) == (
        "synapse.tau_ampa: out of range: 5.3e-09 (allowed: 0, or above 0.0053 and below 5300 ms)"
    )
