"""Counter-based random numbers: one module for numpy, numba and Brian2's C++ code.

Every draw in cortexsim outside the seeded numpy generators that lay out a network is a pure
function of integers (seed, stream, step, index): no generator state, so results do not depend on
threads, block splits, code-generation target or where a run was stopped and resumed.  All three
implementations use the same splitmix64 constants and finaliser (Steele, Lea & Flood 2014 OOPSLA
"Fast splittable pseudorandom number generators"), defined once below; the C++ source is
generated from them.

Two constructions:

* **Structural kernel** (numba, with a numpy reference): a per-(seed, stream, step) key is made
  by two splitmix64 finalisers (:func:`step_keys`); the draw for a site is
  ``mix64(key + (site + 1) * GOLDEN)``, i.e. element ``site`` of the splitmix64 sequence started
  at that key.  Keys are computed once per call in numpy, so the per-draw cost in the kernel is
  one ``mix64``.  The exponential variate ``-ln(u)`` is computed by :func:`neg_log` from
  ``frexp`` and a fixed polynomial (atanh series) with only ``+ - * /``, which IEEE-754 rounds
  identically in numpy and numba (``np.log`` and libm ``log`` differ in the last bit for ~0.3 %
  of arguments on this machine, measured).
* **Network noise** (Brian2 C++ with a numpy twin): Brian2's standalone binary compiles its RNG
  seed in, so a compiled network re-run with ``run_args`` would replay the same noise.  The
  background input draws from a hash of (run seed, neuron index, time step, stream)
  (:func:`hashed_uniform_np`, C++ ``hash_poisson``), which makes each run's noise a function of a
  per-run seed variable that ``run_args`` can change.  Run seeds (:meth:`SeedSchedule.noise_seed`,
  52 bits) are exact in the float64 variable that carries them.

Every seed of a run is derived from the experiment seed in one place, the **seed schedule**
(:class:`SeedSchedule`, registry :data:`STREAMS`): a named stream and its index (a condition, a
session) make a :class:`numpy.random.SeedSequence` ``SeedSequence(seed, spawn_key=(stream id,
*index))``, from which come the numpy generators that lay out a network, the integer seed of the
structural kernel above and the noise seed of every network run.  No two streams of one seed, or
of two seeds, share a SeedSequence, so their numbers are independent (up to the chance of a
64-bit -- for noise seeds 52-bit -- collision, tested for a long protocol).
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

# --------------------------------------------------------------------------- constants
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
TWO_M53 = 2.0**-53

# streams (distinct key families)
STREAM_INIT = 1  # residual hazard drawn at the start of a call
STREAM_NEXT = 2  # residual hazard redrawn after an event
STREAM_FATE = 3  # fate of a nascent spine (stabilise vs eliminate)

_LN2 = math.log(2.0)
_SQRT_HALF = math.sqrt(0.5)
_C3 = 1.0 / 3.0
_C5 = 1.0 / 5.0
_C7 = 1.0 / 7.0
_C9 = 1.0 / 9.0
_C11 = 1.0 / 11.0
_C13 = 1.0 / 13.0
_C15 = 1.0 / 15.0


def _mix64_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _S30)) * _M2
    z = (z ^ (z >> _S27)) * _M3
    return z ^ (z >> _S31)


def step_keys(seed: int, stream: int, steps) -> np.ndarray:
    """uint64 key for each absolute step index (array) of one stream.

    Parameters
    ----------
    seed : int
        Run seed.
    stream : int
        Stream number (one per use).
    steps : array_like of int
        Absolute step indices.

    Returns
    -------
    ndarray of uint64
        Same shape as ``steps``.
    """
    steps = np.atleast_1d(np.asarray(steps, dtype=np.int64)).astype(np.uint64)
    s = np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    st = np.array([int(stream)], dtype=np.uint64)
    base = _mix64_np(s + st * _M3 + GOLDEN)
    return _mix64_np(base ^ _mix64_np(steps * GOLDEN + _M2))


def bits_np(key, sites: np.ndarray) -> np.ndarray:
    """Raw 64-bit draws for ``sites`` (int array) under ``key`` (scalar or array).

    Parameters
    ----------
    key : int or ndarray of uint64
        Key(s) from :func:`step_keys`.
    sites : ndarray of int
        Site indices.

    Returns
    -------
    ndarray of uint64
        Broadcast shape of ``key`` and ``sites``.
    """
    return _mix64_np(np.asarray(key, dtype=np.uint64) + (sites.astype(np.uint64) + _ONE) * GOLDEN)


def uniform_open_np(key, sites):
    """Uniform in (0, 1].

    Parameters
    ----------
    key : int or ndarray of uint64
        Key(s) from :func:`step_keys`.
    sites : ndarray of int
        Site indices.

    Returns
    -------
    ndarray of float
    """
    return ((bits_np(key, sites) >> _S11) + _ONE).astype(np.float64) * TWO_M53


def uniform_np(key, sites):
    """Uniform in [0, 1).

    Parameters
    ----------
    key : int or ndarray of uint64
        Key(s) from :func:`step_keys`.
    sites : ndarray of int
        Site indices.

    Returns
    -------
    ndarray of float
    """
    return (bits_np(key, sites) >> _S11).astype(np.float64) * TWO_M53


def neg_log_np(u: np.ndarray) -> np.ndarray:
    """-ln(u) for u in (0, 1], same arithmetic as :func:`neg_log` (numba).

    Parameters
    ----------
    u : ndarray
        Uniform draws in (0, 1].

    Returns
    -------
    ndarray
    """
    m, e = np.frexp(u)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)
    ef = e.astype(np.float64) - np.where(low, 1.0, 0.0)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = s2 * (_C3 + s2 * (_C5 + s2 * (_C7 + s2 * (_C9 + s2 * (_C11 + s2 * (_C13 + s2 * _C15))))))
    lnm = 2.0 * s * (1.0 + p)
    return -(lnm + ef * _LN2)


@njit(inline="always", cache=True)
def mix64(z):
    z = (z ^ (z >> _S30)) * _M2
    z = (z ^ (z >> _S27)) * _M3
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def bits(key, site):
    return mix64(key + (np.uint64(site) + _ONE) * GOLDEN)


@njit(inline="always", cache=True)
def uniform_open(key, site):
    return np.float64((bits(key, site) >> _S11) + _ONE) * TWO_M53


@njit(inline="always", cache=True)
def uniform(key, site):
    return np.float64(bits(key, site) >> _S11) * TWO_M53


@njit(inline="always", cache=True)
def neg_log(u):
    m, e = math.frexp(u)
    ef = np.float64(e)
    if m < _SQRT_HALF:
        m = m * 2.0
        ef = ef - 1.0
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = s2 * (_C3 + s2 * (_C5 + s2 * (_C7 + s2 * (_C9 + s2 * (_C11 + s2 * (_C13 + s2 * _C15))))))
    lnm = 2.0 * s * (1.0 + p)
    return -(lnm + ef * _LN2)


# --------------------------------------------------------------------------- network noise
def hashed_uniform_np(seed, i, step, stream):
    """Uniform in [0, 1) of (seed, i, step, stream): numpy twin of the C++ ``_cs_uniform``
    (same bits for the same integers).

    Parameters
    ----------
    seed, i, step, stream : int or ndarray of int
        Run seed, neuron index, time step, stream number (broadcast).

    Returns
    -------
    ndarray of float
    """
    with np.errstate(over="ignore"):
        b = np.broadcast_arrays(
            np.asarray(seed), np.asarray(i), np.asarray(step), np.asarray(stream)
        )
        seed, i, step, stream = (np.asarray(x).astype(np.int64).astype(np.uint64) for x in b)
        z = seed * GOLDEN
        z = _mix64_np(z + i)
        z = _mix64_np(z + step)
        z = _mix64_np(z + stream)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def hashed_poisson_np(lam, i, step, seed, stream):
    """Poisson(lam) counts of (i, step, seed, stream): numpy twin of the C++ ``hash_poisson``.

    Parameters
    ----------
    lam : float or ndarray
        Mean count.
    i, step, seed, stream : int or ndarray of int
        Neuron index, time step, run seed, stream number (broadcast).

    Returns
    -------
    ndarray of int
    """
    lam, i, step, seed, stream = np.broadcast_arrays(
        *(np.asarray(x) for x in (lam, i, step, seed, stream))
    )
    u = hashed_uniform_np(seed, i, step, stream)
    lam = lam.astype(np.float64)
    p = np.exp(-lam)
    c = p.copy()
    k = np.zeros(lam.shape, dtype=np.int32)
    todo = (u > c) & (lam > 0)
    n = 0
    while todo.any() and n < 1000:
        n += 1
        k[todo] += 1
        p = np.where(todo, p * lam / np.maximum(k, 1), p)
        c = np.where(todo, c + p, c)
        todo &= u > c
    return np.where(lam > 0, k, 0)


def _hex(c) -> str:
    return f"0x{int(c):016X}ULL"


_CPP_MIX = f"""
static inline unsigned long long _cs_mix64(unsigned long long z) {{
    z = (z ^ (z >> 30)) * {_hex(_M2)};
    z = (z ^ (z >> 27)) * {_hex(_M3)};
    return z ^ (z >> 31);
}}
static inline double _cs_uniform(long long seed, long long i, long long step, long long stream) {{
    unsigned long long z = (unsigned long long)seed * {_hex(GOLDEN)};
    z = _cs_mix64(z + (unsigned long long)i);
    z = _cs_mix64(z + (unsigned long long)step);
    z = _cs_mix64(z + (unsigned long long)stream);
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}}
"""
CPP_POISSON = (
    _CPP_MIX
    + r"""
static inline int hash_poisson(double lam, long long i, long long step, long long seed, long long stream) {
    if (lam <= 0.0) return 0;
    const double u = _cs_uniform(seed, i, step, stream);
    double p = exp(-lam);
    double c = p;
    int k = 0;
    while (u > c && k < 1000) { k += 1; p *= lam / k; c += p; }
    return k;
}
"""
)
# a second copy under other names: Brian2 may paste each function's support code once per file
CPP_UNIFORM = (
    _CPP_MIX.replace("_cs_", "_csu_")
    + r"""
static inline double hash_uniform(long long i, long long step, long long seed, long long stream) {
    return _csu_uniform(seed, i, step, stream);
}
"""
)


@functools.cache
def brian2_functions() -> dict:
    """Brian2 functions ``hash_poisson(lam, i, step, seed, stream)`` and
    ``hash_uniform(i, step, seed, stream)`` (C++ for standalone, numpy for runtime), for a
    NeuronGroup's ``namespace``.  brian2 is imported only here."""
    from brian2 import check_units, implementation

    @implementation("cpp", {"support_code": CPP_POISSON}, name="hash_poisson")
    @check_units(lam=1, i=1, step=1, seed=1, stream=1, result=1)
    def hash_poisson(lam, i, step, seed, stream):
        return hashed_poisson_np(lam, i, step, seed, stream)

    @implementation("cpp", {"support_code": CPP_UNIFORM}, name="hash_uniform")
    @check_units(i=1, step=1, seed=1, stream=1, result=1)
    def hash_uniform(i, step, seed, stream):
        return hashed_uniform_np(seed, i, step, stream)

    return {"hash_poisson": hash_poisson, "hash_uniform": hash_uniform}


# --------------------------------------------------------------------------- seed schedule
#: bits of a network run's noise seed: exact in the float64 run-time variable that carries it
NOISE_SEED_BITS = 52
_WORD = 2**32


@dataclass(frozen=True)
class Stream:
    """One named random stream of the seed schedule (:data:`STREAMS`).

    Attributes
    ----------
    id : int
        First element of the stream's spawn key; never reused for another stream.
    index : tuple of str
        Names of the index fields: ``condition`` takes a condition name (hashed,
        :func:`condition_words`), every other field an int in [0, 2**32).
    kind : str
        What the stream gives: ``"generator"`` (a numpy Generator), ``"kernel"`` (the 64-bit
        seed of the counter-based structural kernel) or ``"noise"`` (the 52-bit seed of a
        network run's counter-based noise, C++ ``hash_poisson``).
    doc : str
        What it draws, and who shares it.
    """

    id: int
    index: tuple[str, ...]
    kind: str
    doc: str


#: The named streams of one experiment seed.  The network (connectivity, thresholds, initial
#: efficacies), the initial spine state, the structural kernel, the rest references and the
#: read-outs are shared by every condition on purpose (one animal per seed, paired comparisons:
#: conditions with the same history up to a point have the same state there, and identical
#: spine states give identical measurements, measured once); each condition's sessions have
#: their own stream, keyed by the condition's name (not its position, so adding or reordering
#: conditions changes no other condition's numbers).
STREAMS: dict[str, Stream] = {
    "connectivity": Stream(
        1, (), "generator",
        "synapses of every projection (declaration order) and the spine sites' initial "
        "occupancy; one network per seed",
    ),
    "thresholds": Stream(
        2, (), "generator",
        "TMS thresholds and polarisation gains of every cell (population order); part of the "
        "seed's network",
    ),
    "initial_efficacies": Stream(
        3, (), "generator",
        "initial per-synapse state of the plasticity rules (GB efficacies), group by group in "
        "declaration order; part of the seed's network",
    ),
    "initial_spines": Stream(
        4, (), "generator",
        "the initial spine state: every condition starts from the same one",
    ),
    "coupling_ablation": Stream(
        5, (), "generator",
        "permutation of the excitatory cells' TMS thresholds under the 'coupling' ablation; "
        "the same in every condition with the ablation",
    ),
    "spine_kernel": Stream(
        6, (), "kernel",
        "draws of the structural kernel at (step, site): shared, so that conditions with the "
        "same history up to a read-out have the same spine state there",
    ),
    "rest": Stream(
        7, (), "noise",
        "the network at rest: pass-1 statistics and the sessions' references; one measurement "
        "of a spine state wherever it is taken",
    ),
    "readout": Stream(
        8, (), "noise",
        "every read-out run (rates without stimulation, and the evoked-response pair with and "
        "without a pulse): one instrument noise for all read-outs, so that their differences "
        "come from the spine state",
    ),
    "session": Stream(
        9, ("condition", "session"), "noise",
        "stimulation session `session` (0-based; a timeline has one stimulation phase) of "
        "condition `condition`, and its paired run without stimulation",
    ),
    "receptors": Stream(
        10, (), "generator",
        "which cells express D1 / D2 dopamine receptors (structural.draw_receptors, one "
        "uniform per cell in cell order); part of the seed's animal: the same cells in every "
        "condition",
    ),
}  # fmt: skip


def condition_words(name: str) -> tuple[int, int]:
    """Stable 64-bit identity of a condition name, as two 32-bit words (BLAKE2b of the UTF-8
    name): the same in every process and Python version, independent of the condition's
    position in a spec.

    Parameters
    ----------
    name : str
        Condition name.

    Returns
    -------
    tuple of int
        (high word, low word).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a condition name must be a non-empty string, got {name!r}")
    h = int.from_bytes(
        hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=b"cortexsim-cond").digest(),
        "big",
    )
    return h >> 32, h & (_WORD - 1)


@dataclass(frozen=True)
class SeedSchedule:
    """Every seed of one experiment seed, by named stream (:data:`STREAMS`).

    Stream ``name`` with index fields ``index`` is ``numpy.random.SeedSequence(seed,
    spawn_key=(STREAMS[name].id, *index words))``: a spawn key of fixed length per stream, so
    distinct (stream, index) pairs never share a SeedSequence, and no stream equals the plain
    ``default_rng(seed)`` of any seed (its spawn key is empty).

    Parameters
    ----------
    seed : int
        Experiment seed (>= 0).

    Examples
    --------
    >>> s = SeedSchedule(1)
    >>> s.noise_seed("session", condition="stress_aitbs", session=3) != s.noise_seed("readout")
    True
    """

    seed: int

    def __post_init__(self):
        if isinstance(self.seed, (bool, np.bool_)) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    def spawn_key(self, stream: str, **index) -> tuple[int, ...]:
        """Spawn key of stream ``stream`` at ``index`` (the stream's index fields, by name).

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS`.
        **index
            The stream's index fields: ``condition`` a name, the others ints in [0, 2**32).

        Returns
        -------
        tuple of int
            ``(stream id, *index words)``, each < 2**32.

        Raises
        ------
        ValueError
            Unknown stream, missing or extra index fields, or an index out of range.
        """
        if stream not in STREAMS:
            raise ValueError(f"unknown random stream {stream!r}; streams: {', '.join(STREAMS)}")
        st = STREAMS[stream]
        if set(index) != set(st.index):
            raise ValueError(f"stream {stream!r} is indexed by {st.index}, got {tuple(index)}")
        words = [st.id]
        for field in st.index:
            v = index[field]
            if field == "condition":
                words.extend(condition_words(v))
                continue
            if isinstance(v, (bool, np.bool_)) or int(v) != v or not 0 <= v < _WORD:
                raise ValueError(
                    f"stream {stream!r}: {field} must be an integer in [0, 2**32), got {v!r}"
                )
            words.append(int(v))
        return tuple(words)

    def sequence(self, stream: str, **index) -> np.random.SeedSequence:
        """The SeedSequence of stream ``stream`` at ``index`` (see :meth:`spawn_key`).

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS`.
        **index
            The stream's index fields.

        Returns
        -------
        numpy.random.SeedSequence
        """
        return np.random.SeedSequence(self.seed, spawn_key=self.spawn_key(stream, **index))

    def _of_kind(self, stream: str, kind: str) -> None:
        got = STREAMS[stream].kind if stream in STREAMS else None
        if got is not None and got != kind:
            raise ValueError(f"stream {stream!r} gives a {got}, not a {kind}")

    def generator(self, stream: str, **index) -> np.random.Generator:
        """A fresh numpy Generator (PCG64) of a ``"generator"`` stream.

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS` of kind ``"generator"``.
        **index
            The stream's index fields.

        Returns
        -------
        numpy.random.Generator
        """
        self._of_kind(stream, "generator")
        return np.random.Generator(np.random.PCG64(self.sequence(stream, **index)))

    def integer(self, stream: str, **index) -> int:
        """The 64-bit integer of stream ``stream`` at ``index`` (its identity in tests).

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS`.
        **index
            The stream's index fields.

        Returns
        -------
        int
            In [0, 2**64).
        """
        w = self.sequence(stream, **index).generate_state(2, np.uint32)
        return (int(w[0]) << 32) | int(w[1])

    def kernel_seed(self, stream: str = "spine_kernel") -> int:
        """Seed of the counter-based structural kernel (:func:`step_keys`).

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS` of kind ``"kernel"``.

        Returns
        -------
        int
            In [0, 2**64).
        """
        self._of_kind(stream, "kernel")
        return self.integer(stream)

    def noise_seed(self, stream: str, **index) -> int:
        """Seed of one network run's counter-based noise (``Circuit.run(run_seed=...)``):
        the top :data:`NOISE_SEED_BITS` bits of :meth:`integer`, exact in float64.

        Parameters
        ----------
        stream : str
            A name of :data:`STREAMS` of kind ``"noise"``.
        **index
            The stream's index fields.

        Returns
        -------
        int
            In [0, 2**52).
        """
        self._of_kind(stream, "noise")
        return self.integer(stream, **index) >> (64 - NOISE_SEED_BITS)
