"""Everything a user can give is checked before any network is built (issue 9, kinds 1, 2, 4):
types (a boolean is not a number, a numeric string is not a number, a list stays a list),
ranges, names (criteria's populations, read-outs, conditions), overrides in both TOML forms,
seeds, scales, settings and ``--out``.  One line naming the field, exit status 2.

The inputs are of the kinds in the reported faults (shared/cases 02-05, 07, 10, 11) and others of
the same kinds.  A run that should fail must fail before the network is built: the circuit class
is replaced by one that fails the test if it is ever constructed.
"""

import copy
import os
import stat
import textwrap

import pytest

from cortexsim.cli import main
from cortexsim.errors import InputError
from cortexsim.experiment import parse_spec, read_spec
from cortexsim.params import experiments_dir

TINY = (experiments_dir() / "tiny.toml").read_text()  # the shipped smoke-test spec


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if a network is built (validation must come first)."""
    from cortexsim.circuit import network

    class Forbidden:
        def __init__(self, *a, **k):
            raise AssertionError("a network was built before the input was validated")

    monkeypatch.setattr(network, "Circuit", Forbidden)


def _spec(tmp_path, extra: str, name="case.toml"):
    (tmp_path / "tiny.toml").write_text(TINY)
    p = tmp_path / name
    p.write_text('extends = "tiny.toml"\n' + textwrap.dedent(extra))
    return p


def _cli_error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


# --------------------------------------------------------------------------- overrides
def test_unquoted_and_quoted_dotted_overrides_are_the_same_path(tmp_path):
    quoted = read_spec(
        _spec(tmp_path, '[overrides]\n"circuit.conn.IT_L5.PT_L5.p" = 0.2\n', "q.toml")
    )
    bare = read_spec(_spec(tmp_path, "[overrides]\ncircuit.conn.IT_L5.PT_L5.p = 0.2\n", "b.toml"))
    assert quoted["overrides"] == bare["overrides"] == {"circuit.conn.IT_L5.PT_L5.p": 0.2}
    assert parse_spec(bare)["overrides"] == {"circuit.conn.IT_L5.PT_L5.p": 0.2}
    # a child's unquoted path replaces the parent's quoted one (one merge rule)
    (tmp_path / "child.toml").write_text(
        'extends = "q.toml"\n[overrides]\ncircuit.conn.IT_L5.PT_L5.p = 0.3\n'
    )
    assert read_spec(tmp_path / "child.toml")["overrides"] == {"circuit.conn.IT_L5.PT_L5.p": 0.3}


def test_condition_overrides_unquoted(tmp_path):
    p = _spec(tmp_path, "[conditions.stim.overrides]\nstructural.activity.ltp_gain = 0.5\n")
    cfg = parse_spec(read_spec(p))
    assert cfg["conditions"]["stim"]["overrides"] == {"structural.activity.ltp_gain": 0.5}


@pytest.mark.parametrize(
    "extra, field, words",
    [
        # a bare model name (fault 02)
        ("[overrides]\ncircuit = 1.0\n", "overrides.circuit", "dotted path"),
        # wrong types (fault 04 and its kind)
        (
            '[overrides]\n"circuit.plasticity.nmda_calcium" = "false"\n',
            "overrides.circuit.plasticity.nmda_calcium",
            "true or false",
        ),
        (
            '[overrides]\n"circuit.plasticity.nmda_calcium" = 0.0\n',
            "overrides.circuit.plasticity.nmda_calcium",
            "true or false",
        ),
        (
            '[overrides]\n"structural.activity.ltp_gain" = "0.5"\n',
            "overrides.structural.activity.ltp_gain",
            "expected a number",
        ),
        (
            '[overrides]\n"structural.activity.ltp_gain" = true\n',
            "overrides.structural.activity.ltp_gain",
            "expected a number",
        ),
        # ranges (fault 10 and its kind)
        ('[overrides]\n"circuit.sim.dt" = -0.1\n', "overrides.circuit.sim.dt", "[0.01, 0.2] ms"),
        ('[overrides]\n"circuit.sim.dt" = 0.0\n', "overrides.circuit.sim.dt", "[0.01, 0.2] ms"),
        ('[overrides]\n"circuit.sim.dt" = 0.3\n', "overrides.circuit.sim.dt", "[0.01, 0.2] ms"),
        ('[overrides]\n"circuit.sim.dt" = 1e-4\n', "overrides.circuit.sim.dt", "[0.01, 0.2] ms"),
        ('[overrides]\n"circuit.sim.dt" = nan\n', "overrides.circuit.sim.dt", "finite"),
        (
            '[overrides]\n"circuit.scale.small" = 100000000\n',
            "overrides.circuit.scale.small",
            "50000",
        ),
        (
            '[overrides]\n"circuit.conn.IT_L5.PT_L5.p" = -0.2\n',
            "overrides.circuit.conn.IT_L5.PT_L5.p",
            "out of range",
        ),
        # no range in the model file: both ways within 1,000x of the default (case 32)
        (
            '[overrides]\n"circuit.synapse.tau_ampa" = 5.3e-9\n',
            "overrides.circuit.synapse.tau_ampa",
            "above 0.0053 and below 5300 ms",
        ),
        (
            '[overrides]\n"circuit.synapse.tau_ampa" = 0.0053\n',
            "overrides.circuit.synapse.tau_ampa",
            "above 0.0053",
        ),  # seconds typed into a ms field
        (
            '[overrides]\n"circuit.synapse.tau_ampa" = { value = 5.3, unit = "s" }\n',
            "overrides.circuit.synapse.tau_ampa",
            "below 5300 ms",
        ),  # checked after conversion
        (
            '[conditions.stim.overrides]\n"circuit.populations.IT_L5.g_background" = 3.85e-9\n',
            "conditions.stim.overrides.circuit.populations.IT_L5.g_background",
            "above 0.00385",
        ),
        # units: another unit of the same dimension is converted, a wrong dimension is an error
        (
            '[overrides]\n"circuit.sim.dt" = { value = 1, unit = "mV" }\n',
            "overrides.circuit.sim.dt",
            "wrong dimension",
        ),
        # unknown names
        ('[overrides]\n"circuit.nope.x" = 1.0\n', "overrides.circuit.nope.x", "no such parameter"),
        ('[overrides]\n"brain.x" = 1.0\n', "overrides.brain.x", "unknown model"),
        (
            '[conditions.stim.overrides]\n"circuit.sim.dt" = 0.3\n',
            "conditions.stim.overrides.circuit.sim.dt",
            "[0.01, 0.2] ms",
        ),
    ],
)
def test_bad_overrides_exit_2_before_any_network(tmp_path, capsys, no_network, extra, field, words):
    line = _cli_error(
        capsys,
        "run",
        str(_spec(tmp_path, extra)),
        "--scale",
        "100",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    assert f"error: {field}:" in line and words in line


def test_list_settings_stay_lists_of_their_element_type():
    from cortexsim.params import ParamTree

    tree = ParamTree.from_dict({"p": {"targets": ["IT_L5", "PT_L5"], "on": True}}, name="m")
    with pytest.raises(InputError, match="p.targets: expected a list"):
        tree.set("p.targets", "IT_L5")  # a string is not a list of one name
    with pytest.raises(InputError, match="list elements must be a string"):
        tree.set("p.targets", [1, 2])
    with pytest.raises(InputError, match="p.on: expected true or false"):
        tree.set("p.on", "false")  # the string "false" is truthy
    tree.set("p.targets", ["IT_L23"])
    assert tree.value("p.targets") == ["IT_L23"]


def test_override_units_are_converted(tmp_path):
    from cortexsim.experiment import model_trees

    for v in ('{ value = 50, unit = "us" }', '"0.05 ms"', "0.05"):
        cfg = parse_spec(read_spec(_spec(tmp_path, f'[overrides]\n"circuit.sim.dt" = {v}\n')))
        assert model_trees(cfg["overrides"])["circuit"].value("sim.dt") == pytest.approx(0.05)


# --------------------------------------------------------------------------- spec values
@pytest.mark.parametrize(
    "extra, field, words",
    [
        # booleans and numeric strings are not numbers (fault 05)
        ("[experiment]\nseed = true\n", "experiment.seed", "expected an integer"),
        (
            "[conditions.stim]\nintensity_pct_rmt = true\n",
            "conditions.stim.intensity_pct_rmt",
            "expected a number",
        ),
        ('[settings]\nbaseline_fast_s = "1.0"\n', "settings.baseline_fast_s", "expected a number"),
        ('[settings]\nslow_dt_h = "1"\n', "settings.slow_dt_h", "expected a number"),
        ("[settings]\nsession_sample_s = true\n", "settings.session_sample_s", "'all'"),
        ('[settings]\nsession_sample_s = "some"\n', "settings.session_sample_s", "'all'"),
        (
            '[[timeline]]\nkind = "baseline"\ndays = 1\n[[timeline]]\nkind = "stress"\ndays = 1\n'
            "hours_per_day = true\n",
            "timeline[1].hours_per_day",
            "expected a number",
        ),
        ('[[timeline]]\nkind = "baseline"\ndays = "1"\n', "timeline[0].days", "expected a number"),
        ('[conditions.stim]\nstress = "no"\n', "conditions.stim.stress", "true or false"),
        ('[conditions.stim]\nsilence = "IT_L5"\n', "conditions.stim.silence", "a list"),
        # ranges
        ("[experiment]\nseed = 2147483648\n", "experiment.seed", "2147483647"),
        ("[experiment]\nseed = -1\n", "experiment.seed", "2147483647"),
        ("[settings]\nscale = 1000000000\n", "settings.scale", "50000"),
        ("[settings]\nslow_dt_h = 0\n", "settings.slow_dt_h", "(0, 24]"),
        ("[settings]\nbaseline_fast_s = 1e9\n", "settings.baseline_fast_s", "(0, 600]"),
        (
            "[conditions.stim]\nintensity_pct_rmt = 1e6\n",
            "conditions.stim.intensity_pct_rmt",
            "[0, 300]",
        ),
        ('[[timeline]]\nkind = "rest"\ndays = 1e9\n', "timeline[0].days", "3650"),
        (
            "[settings.by_scale.small]\nsession_sample_s = -1\n",
            "settings.by_scale.small.session_sample_s",
            "'all'",
        ),
        ("[settings.by_scale.huge]\nsession_sample_s = 10\n", "settings.by_scale.huge", "small"),
        # unknown keys name the allowed ones
        ("[settings]\ncolour = 1\n", "settings.colour", "slow_dt_h"),
        ('[conditions.stim]\nprotocl = "itbs600"\n', "conditions.stim.protocl", "protocol"),
        # protocols are built when validated
        ('[conditions.stim]\nprotocol = "itbs9000"\n', "conditions.stim.protocol", "itbs600"),
        (
            '[conditions.stim]\nprotocol = { base = "itbs600", n_pulses = -3 }\n',
            "conditions.stim.protocol",
            "n_pulses",
        ),
    ],
)
def test_bad_spec_values_exit_2_before_any_network(
    tmp_path, capsys, no_network, extra, field, words
):
    line = _cli_error(
        capsys,
        "run",
        str(_spec(tmp_path, extra)),
        "--scale",
        "100",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    assert f"error: {field}" in line and words in line


# --------------------------------------------------------------------------- criteria
@pytest.mark.parametrize(
    "crit, field, words",
    [
        (
            'populations = ["IT_l5"]\nreadout = "24h"\nvalue = 0.0\n',
            "criteria[1].populations",
            "IT_L5",
        ),
        (
            'populations = ["IT_L5"]\nreadout = "24h"\nvalue = "0.5"\n',
            "criteria[1].value",
            "expected a number",
        ),
        ('populations = ["IT_L5"]\nvalue = 0.0\n', "criteria[1].readout", "24h"),
        ('readout = "24h"\nvalue = 0.0\n', "criteria[1].populations", "missing"),
        ('populations = []\nreadout = "24h"\nvalue = 0.0\n', "criteria[1].populations", "empty"),
        ('populations = ["IT_L5"]\nreadout = "48h"\nvalue = 0.0\n', "criteria[1].readout", "24h"),
        (
            'populations = ["IT_L5"]\nreadout = "24h"\nvalue = 0.0\nminus_condition = "shame"\n',
            "criteria[1].minus_condition",
            "control",
        ),
    ],
)
def test_bad_criteria_exit_2_before_any_network(tmp_path, capsys, no_network, crit, field, words):
    (tmp_path / "tiny.toml").write_text(TINY)
    p = tmp_path / "c.toml"
    p.write_text(
        TINY + '\n[[criteria]]\nname = "x"\nvar = "spine_density"\ncondition = "stim"\n'
        'op = ">"\n' + crit
    )
    line = _cli_error(
        capsys, "run", str(p), "--scale", "100", "--quiet", "--out", str(tmp_path / "out")
    )
    assert f"error: {field}" in line and words in line


def test_session_rate_criterion_needs_no_readout(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(
        TINY + '\n[[criteria]]\nname = "x"\nvar = "session_rate"\ncondition = "stim"\n'
        'op = ">"\nvalue = 0.0\npopulations = ["IT_L5"]\n'
    )
    assert len(parse_spec(read_spec(p))["criteria"]) == 2


# --------------------------------------------------------------------------- CLI options
@pytest.mark.parametrize(
    "args, field, words",
    [
        (["--seed", "2147483648"], "seed", "2147483647"),
        (["--seed", "-1"], "seed", "2147483647"),
        (["--scale", "1e9"], "scale", "neuron count"),
        (["--scale", "tiny"], "scale", "small"),
        (["--scale", "10"], "scale", "[50, 50000]"),
        (["--workers", "0"], "workers", ">= 1"),
        (["--session-sample", "-5"], "settings.session_sample_s", "'all'"),
    ],
)
def test_bad_run_options_exit_2(tmp_path, capsys, no_network, args, field, words):
    line = _cli_error(
        capsys, "run", str(_spec(tmp_path, "")), "--quiet", "--out", str(tmp_path / "out"), *args
    )
    assert f"error: {field}" in line and words in line


def test_out_must_be_a_writable_directory(tmp_path, capsys, no_network):
    spec = _spec(tmp_path, "")
    afile = tmp_path / "afile.json"
    afile.write_text("{}")
    line = _cli_error(
        capsys, "run", str(spec), "--scale", "100", "--quiet", "--out", str(afile / "results")
    )
    assert "--out: not a writable directory" in line
    line = _cli_error(capsys, "run", str(spec), "--scale", "100", "--quiet", "--out", str(afile))
    assert "--out: not a writable directory" in line
    if os.geteuid() != 0:  # root writes anywhere; the read-only case needs a normal user
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        line = _cli_error(capsys, "run", str(spec), "--scale", "100", "--quiet", "--out", str(ro))
        assert "--out: not a writable directory" in line


def test_numeric_scale_takes_the_settings_of_the_nearest_named_scale():
    from cortexsim.experiment import resolve_settings

    st = parse_spec(
        read_spec_from_text(TINY + "\n[settings.by_scale.small]\nsession_sample_s = 10\n")
    )["settings"]
    assert resolve_settings(st, 100)["session_sample_s"] == 10.0  # below small: small's
    assert resolve_settings(st, 600)["settings_scale"] == "small"
    assert resolve_settings(st, 4000)["session_sample_s"] == "all"  # default has no table
    assert resolve_settings(st, "small", {"session_sample_s": "all"})["session_sample_s"] == "all"


def read_spec_from_text(text):
    import tomllib

    return tomllib.loads(text)


def test_large_valid_seed_is_stored_and_used(tmp_path):
    """The largest accepted seed passes validation and is kept exactly in the config."""
    from cortexsim.experiment import SEED_MAX, Experiment

    raw = read_spec_from_text(TINY)
    exp = Experiment.from_dict(copy.deepcopy(raw))
    assert exp.resolved_config(seed=SEED_MAX)["experiment"]["seed"] == SEED_MAX
    with pytest.raises(InputError, match="seed"):
        exp.resolved_config(seed=SEED_MAX + 1)


@pytest.mark.parametrize(
    "line, field",
    [
        ("n_pulses = 1000000000", "n_pulses"),
        ("n_pulses = true", "n_pulses"),
        ('n_pulses = "30"', "n_pulses"),
        ("intra_burst_freq_hz = 1e6", "intra_burst_freq_hz"),
        ("train_duration_s = 1e7", "train_duration_s"),
        ("sessions_per_day = 1000", "sessions_per_day"),
        ("days = 100000", "days"),
    ],
)
def test_protocol_numbers_have_ranges(tmp_path, capsys, line, field):
    """A protocol file cannot ask for gigabytes of pulses or years of sessions (kind 2)."""
    f = tmp_path / "mine.toml"
    f.write_text(f'[p]\nbase = "itbs600"\n{line}\n')
    err = _cli_error(capsys, "protocols", "--file", str(f))
    assert f"protocol.{field}" in err


def test_criterion_requires_an_earlier_criterion(tmp_path, capsys, no_network):
    p = tmp_path / "c.toml"
    p.write_text(
        TINY + '\n[[criteria]]\nname = "x"\nvar = "spine_density"\ncondition = "stim"\n'
        'readout = "24h"\npopulations = ["IT_L5"]\nop = ">"\nvalue = 0.0\n'
        'requires = "no such criterion"\n'
    )
    line = _cli_error(
        capsys, "run", str(p), "--scale", "100", "--quiet", "--out", str(tmp_path / "out")
    )
    assert "criteria[1].requires" in line and "spines remain" in line
