"""One colour per condition in every panel of every figure (case 30: the right panel of
rates.png drew the stimulated conditions in the colours the legend gives to others)."""

import matplotlib
import pytest
from matplotlib.colors import to_hex
from synthetic_results import TIMELINE, synthetic_run

from cortexsim import plots
from cortexsim.results import Results

matplotlib.use("Agg")
CFG = {"timeline": TIMELINE}


def _results(conds, stimulated):
    """Results in which only ``stimulated`` conditions have sessions (others NaN, as in a run)."""
    cfg, datasets, models = synthetic_run(
        {c: {"protocol": "itbs1800"} if c in stimulated else {} for c in conds}
    )
    return Results.from_conditions(cfg, datasets, models).data


def _drawn_colors(ax) -> dict:
    """Condition -> set of colours of the lines and bars labelled with it in ``ax``."""
    seen: dict = {}
    for line in ax.get_lines():
        if not line.get_label().startswith("_"):
            seen.setdefault(line.get_label(), set()).add(to_hex(line.get_color()))
    for cont in ax.containers:
        for patch in cont.patches:
            seen.setdefault(cont.get_label(), set()).add(to_hex(patch.get_facecolor()))
    return seen


def _legend_colors(ax) -> dict:
    leg = ax.get_legend()
    if leg is None:
        return {}
    out = {}
    for text, handle in zip(leg.get_texts(), leg.legend_handles):
        col = handle.get_color() if hasattr(handle, "get_xdata") else handle.get_facecolor()
        out[text.get_text()] = to_hex(col)
    return out


@pytest.mark.parametrize("n_conds", [2, 5, 12, 25])
def test_every_condition_has_one_colour_in_every_panel_and_legend(n_conds):
    conds = [f"cond{k}" for k in range(n_conds)]
    stimulated = conds[n_conds // 2 :]  # the last ones only, as in a real spec
    figs = plots.figures(_results(conds, stimulated), CFG)
    assert set(figs) == {"spine_density.png", "rates.png", "conditions.png"}
    colour: dict = {}
    legends = 0
    for name, fig in figs.items():
        for ax in fig.axes:
            for cond, cols in _drawn_colors(ax).items():
                assert cond in conds, (name, cond)
                assert len(cols) == 1, (name, ax.get_title(), cond, cols)
                col = cols.pop()
                assert colour.setdefault(cond, col) == col, (name, ax.get_title(), cond)
            for cond, col in _legend_colors(ax).items():
                legends += 1
                assert col == colour[cond], (name, ax.get_title(), cond)
    assert set(colour) == set(conds)  # every condition drawn somewhere
    assert len(set(colour.values())) == n_conds  # and told apart by its colour
    assert legends >= n_conds  # each in at least one legend
    mapping = {c: to_hex(v) for c, v in plots.condition_colors(conds).items()}
    assert colour == mapping  # the one mapping


def test_rates_right_panel_uses_the_legend_colours_of_its_conditions():
    """Case 30: control unstimulated, stim stimulated; the right panel draws stim only."""
    left, right = plots.rates_figure(_results(["control", "stim"], ["stim"])).axes
    legend = _legend_colors(left)
    assert _drawn_colors(right) == {"stim": {legend["stim"]}}
    assert legend["control"] != legend["stim"]


def test_all_figures_writes_the_figures(tmp_path):
    names = plots.all_figures(_results(["control", "stim"], ["stim"]), tmp_path, CFG)
    assert names == ["spine_density.png", "rates.png", "conditions.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
