"""Text output of the command line stays readable (issue 9: the celltypes table was ~1,000
characters wide)."""
from cortexsim.cli import celltypes_table


def test_celltypes_table_fits_100_columns():
    long_source = "v_rest_mV: " + "a very long citation with table and page numbers " * 8
    rows = [{"name": n, "simulated": {"v_rest_mV": -70.123456, "fi_slope_Hz_per_nA": 1059.6},
             "target": {"v_rest_mV": None, "fi_slope_Hz_per_nA": 1060.0}, "source": long_source}
            for n in ("IT_L23", "IT_L5", "PT_L5", "PV", "SST")]
    text = celltypes_table(rows)
    assert max(len(line) for line in text.splitlines()) <= 100
    header = [ln for ln in text.splitlines() if ln.startswith("property")][0]
    assert header.split() == ["property", "IT_L23", "IT_L5", "PT_L5", "PV", "SST"]
    assert "-70.1 (-)" in text and "1060 (1060)" in text
    assert " ".join(text.split()).count("a very long citation") == 5 * 8   # all kept, wrapped
