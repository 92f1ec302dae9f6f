"""The drawn circuit (numpy) is separate from its Brian2 build (issue 22 item 3)."""

import json
import subprocess
import sys

import numpy as np

from cortexsim.circuit.drawn import draw_circuit

_DRAW = """
import json, sys
from cortexsim.circuit.drawn import draw_circuit
d = draw_circuit(100, seed=3)
print(json.dumps({"brian2": "brian2" in sys.modules, "groups": sorted(d.conn),
                  "site": d.site_group, "n_sites": d.n_sites,
                  "i": d.conn["ee"]["i"][:20].tolist()}))
"""


def test_drawing_a_circuit_does_not_import_brian2():
    out = subprocess.run(
        [sys.executable, "-c", _DRAW], capture_output=True, text=True, check=True, timeout=300
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["brian2"] is False
    assert got["site"] is not None and got["n_sites"] > 0


def test_drawn_connectivity_equals_the_built_circuit():
    from cortexsim.circuit.network import Circuit

    d = draw_circuit(100, seed=3)
    c = Circuit(100, seed=3, duration_s=0.05, target="runtime")
    assert sorted(d.conn) == sorted(c.conn) and d.site_group == c.site_group
    for name in d.conn:
        for k in ("i", "j", "g_nS", "on"):
            np.testing.assert_array_equal(d.conn[name][k], c.conn[name][k])
        # and what Brian2 actually connected
        np.testing.assert_array_equal(np.asarray(c.synapses[name].i[:]), d.conn[name]["i"])
        np.testing.assert_array_equal(np.asarray(c.synapses[name].j[:]), d.conn[name]["j"])
    np.testing.assert_array_equal(d.tms_threshold_vpm, c.tms_threshold_vpm)
    np.testing.assert_array_equal(d.polarization_mV_per_vpm, c.polarization_mV_per_vpm)
    np.testing.assert_array_equal(d.initial_rho, c.initial_rho)
    np.testing.assert_array_equal(d.pop_index, c.pop_index)
    assert d.n_sites == c.n_sites and d.N == c.N
