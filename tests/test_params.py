import math
from pathlib import Path

import pytest

from cortexsim.errors import InputError, check_choice, check_number
from cortexsim.params import ParamTree, is_param, load_model, models_dir, read_toml


def test_every_model_parameter_has_unit_and_source():
    files = sorted(models_dir().glob("*.toml"))
    assert files, "models/ holds no parameter files"
    for f in files:
        tree = load_model(f)  # validates: no bare floats, params have value/unit/source

        def walk(node, path):
            if is_param(node):
                assert node["unit"] != "" and isinstance(node["unit"], str), path
                assert len(node["source"]) > 5, f"{f.name}:{path} has no real source"
                return
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}.{k}")
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
