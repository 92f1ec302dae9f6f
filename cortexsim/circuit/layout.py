"""Layout of the circuit: how many cells of each declared population, and where they sit.

All cells live in one Brian2 ``NeuronGroup``; each population is a contiguous index range, in the
order the populations are declared in ``models/circuit.toml`` (see :mod:`cortexsim.populations`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import check_choice, check_number
from ..params import ParamTree
from ..populations import Population, population_table

#: smallest network a numeric scale may ask for
MIN_NEURONS = 50


def resolve_scale(scale, tree: ParamTree) -> int:
    """Total neuron count of ``scale``: a name of ``[scale]`` (except ``reference``) or an int.

    Parameters
    ----------
    scale : str or int
        A named scale or a total neuron count.
    tree : ParamTree
        The circuit model (``[scale]`` table).

    Returns
    -------
    int

    Raises
    ------
    InputError
        Unknown scale name, or a number that is not an integer >= :data:`MIN_NEURONS`.
    """
    named = tree.values()["scale"]
    if isinstance(scale, str):
        check_choice("scale", scale, [k for k in named if k != "reference"])
        return int(named[scale])
    return int(check_number("scale", scale, min=MIN_NEURONS, integer=True))


@dataclass(frozen=True)
class Layout:
    """Sizes and index ranges of the populations.

    Attributes
    ----------
    populations : dict
        name -> :class:`~cortexsim.populations.Population`, in cell-index order.
    sizes : dict
        name -> number of cells (at least 1 each).
    N : int
        Total number of cells.
    slices : dict
        name -> slice of the population's cell indices.
    pop_index : ndarray of int, shape (N,)
        Position of each cell's population in ``populations``.
    """

    populations: dict
    sizes: dict
    N: int
    slices: dict
    pop_index: np.ndarray

    @classmethod
    def build(cls, n_total: int, tree: ParamTree) -> Layout:
        """Split ``n_total`` cells by the declared fractions (normalised by their sum).

        Parameters
        ----------
        n_total : int
            Cells in the circuit (each population gets at least one, so the total may differ
            slightly).
        tree : ParamTree
            The circuit model (its populations and their fractions).

        Returns
        -------
        Layout
        """
        pops: dict[str, Population] = population_table(tree)
        tot = sum(p.fraction for p in pops.values())
        sizes = {name: max(1, round(n_total * p.fraction / tot)) for name, p in pops.items()}
        slices, a = {}, 0
        for name, n in sizes.items():
            slices[name] = slice(a, a + n)
            a += n
        pop_index = np.concatenate([np.full(n, k) for k, n in enumerate(sizes.values())])
        return cls(pops, sizes, a, slices, pop_index)

    def per_cell(self, values: dict) -> np.ndarray:
        """One value per cell from one value per population (``values[name]``).

        Parameters
        ----------
        values : dict
            Population name -> value (every population of the layout).

        Returns
        -------
        ndarray (N,)

        Raises
        ------
        KeyError
            A population without a value.
        """
        return np.concatenate([np.full(n, values[p]) for p, n in self.sizes.items()])
