import math
import pickle
from pathlib import Path

import pytest

from cortexsim.errors import InputError, check_choice, check_number
from cortexsim.params import ParamTree, is_param, load_model, models_dir, read_toml


def test_every_model_parameter_has_unit_and_source():
    files = sorted(models_dir().glob("*.toml"))
    assert files, "models/ holds no parameter files"
    for f in files:
        tree = load_model(f)  # validates: no bare floats, params have value/unit/source

        def walk(node, path, fname=f.name):
            if is_param(node):
                assert node["unit"] != "" and isinstance(node["unit"], str), path
                assert len(node["source"]) > 5, f"{fname}:{path} has no real source"
                return
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}.{k}", fname)
        walk(dict(tree), f.stem)


def test_dotted_access_and_override():
    t = ParamTree.from_dict({"IT": {"tau_m": {"value": 20.0, "unit": "ms", "source": "x 2000"}},
                             "names": ["a"]}, name="t")
    assert t.value("IT.tau_m") == 20.0
    t.set("IT.tau_m", 25.0)
    assert t.values()["IT"]["tau_m"] == 25.0
    assert t.meta("IT.tau_m")["unit"] == "ms"
    with pytest.raises(InputError, match="tau_x"):
        t.value("IT.tau_x")
    with pytest.raises(InputError, match="expected a number"):
        t.set("IT.tau_m", "fast")


def test_bare_float_rejected():
    with pytest.raises(InputError, match="bare float"):
        ParamTree.from_dict({"a": 1.5})
    with pytest.raises(InputError, match="lacks"):
        ParamTree.from_dict({"a": {"value": 1.0, "unit": "ms"}})


def test_missing_and_malformed_files(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        read_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(InputError, match="malformed"):
        read_toml(bad)
    with pytest.raises(InputError, match="unknown model"):
        load_model("no_such_model")


def test_checks():
    assert check_number("x", 3, min=0) == 3
    for bad in (-1, math.nan, math.inf, "abc"):
        with pytest.raises(InputError, match="^x"):
            check_number("x", bad, min=0)
    with pytest.raises(InputError, match="allowed: a, b"):
        check_choice("kind", "c", ["a", "b"])


def test_input_error_pickles_and_nests():
    """InputError crosses process boundaries (sweep workers) intact and can be placed inside a
    file/table prefix without losing the allowed values."""
    e = InputError("cell_type", "unknown value 'X'", ["PT_L5", "PV"])
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is InputError and str(e2) == str(e)
    assert (e2.field, e2.message, e2.allowed) == (e.field, e.message, e.allowed)
    n = e.within("spec.toml [a] ")
    assert n.field == "spec.toml [a] cell_type"
    assert str(n) == "spec.toml [a] cell_type: unknown value 'X' (allowed: PT_L5, PV)"


def test_model_files_have_no_float_settings():
    """Plain (non-table) entries of the coupling and protocol files are settings: strings,
    booleans or integer counts; a physical number must carry unit and source."""
    for name in ("coupling", "protocols"):
        tree = load_model(name)

        def walk(node, path):
            if is_param(node):
                assert isinstance(node["source"], str) and node["source"].strip(), path
                return
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}.{k}")
                return
            assert isinstance(node, (str, bool, int)), f"{path} = {node!r}"
        walk(dict(tree), name)
