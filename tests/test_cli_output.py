"""Text output of the command line stays readable (issue 9: the celltypes table was ~1,000
characters wide)."""

from cortexsim.cli import celltypes_table


def test_celltypes_table_fits_100_columns():
    long_source = "v_rest_mV: " + "a very long citation with table and page numbers " * 8
    rows = [
        {
            "name": n,
            "simulated": {"v_rest_mV": -70.123456, "fi_slope_Hz_per_nA": 1059.6},
            "target": {"v_rest_mV": None, "fi_slope_Hz_per_nA": 1060.0},
            "source": long_source,
        }
        for n in ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")
    ]
    text = celltypes_table(rows)
    assert max(len(line) for line in text.splitlines()) <= 100
    header = [ln for ln in text.splitlines() if ln.startswith("property")][0]
    assert header.split() == ["property", "IT_L23", "IT_L5", "PT_L5", "PV", "SST"]
    assert "-70.1 (-)" in text and "1060 (1060)" in text
    assert " ".join(text.split()).count("a very long citation") == 5 * 8  # all kept, wrapped


def test_celltypes_says_none_for_a_cell_that_does_not_resonate():
    """A low-pass cell has no resonance: "none" in the table (not "1 Hz"), null in JSON."""
    import json

    rows = [
        {
            "name": n,
            "simulated": {"sag_ratio": 0.3, "resonance_Hz": f},
            "target": {"sag_ratio": None, "resonance_Hz": t},
            "source": "s",
        }
        for n, f, t in (("IT_L5", None, None), ("PT_L5", 4.2, 4.0))
    ]
    line = [ln for ln in celltypes_table(rows).splitlines() if ln.startswith("resonance_Hz")][0]
    assert line.split() == ["resonance_Hz", "none", "(-)", "4.2", "(4)"]
    assert json.loads(json.dumps(rows))[0]["simulated"]["resonance_Hz"] is None


def test_an_unknown_spec_name_lists_the_shipped_specs(capsys):
    from cortexsim.cli import main
    from cortexsim.specs import shipped_specs

    assert main(["run", "tinyy"]) == 2
    err = capsys.readouterr().err
    assert "'tinyy'" in err and "tiny" in err and "aitbs_study" in err
    assert "sweep_intensity" not in err  # a sweep spec is not something `run` runs
    assert {"tiny", "aitbs_study"} <= set(shipped_specs("experiment"))
    assert "sweep_intensity" in shipped_specs("sweep")


def test_a_finished_run_says_where_its_checkpoints_are_and_how_to_remove_them(tmp_path):
    from cortexsim.cli import build_parser, checkpoints_note, finished_checkpoints

    ck = tmp_path / "run out" / "checkpoints"
    (ck / "stim").mkdir(parents=True)
    (ck / "stim" / "state.npz").write_bytes(b"x" * 2_500_000)
    kept = finished_checkpoints(tmp_path / "run out", keep=True)
    assert kept == {"path": str(ck), "bytes": 2_500_000, "kept": True}
    note = checkpoints_note(kept)
    assert str(ck) in note and "2.5 MB" in note and "--no-keep-checkpoints" in note
    assert f"rm -r '{ck}'" in note  # quoted: the path has a space
    gone = finished_checkpoints(tmp_path / "run out", keep=False)
    assert not ck.exists() and gone["kept"] is False and gone["bytes"] == 0
    assert "removed" in checkpoints_note(gone)
    parse = build_parser().parse_args
    assert parse(["run", "tiny"]).keep_checkpoints is True
    assert parse(["run", "tiny", "--no-keep-checkpoints"]).keep_checkpoints is False
