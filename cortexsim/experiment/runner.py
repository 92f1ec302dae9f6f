"""The runner: the three passes over the conditions and the worker processes.

Pass 1 measures the resting statistics of every network configuration, pass 2 runs each
condition's timeline (:class:`cortexsim.experiment.phases.ConditionRun`, given its
:class:`cortexsim.experiment.context.ConditionContext` and the run's
:class:`cortexsim.experiment.shared.SharedStats`, checkpointed in a
:class:`cortexsim.experiment.store.CheckpointStore`), pass 3 measures the network read-outs from
the spine snapshots (:class:`cortexsim.experiment.readouts.ReadoutPass`).  Each
condition's results are an ``xarray.Dataset`` (:meth:`Recorder.dataset`), joined by
:meth:`cortexsim.results.Results.from_conditions`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import check_number
from ..rng import SeedSchedule
from .context import ConditionContext
from .phases import ConditionRun
from .progress import draw_worker_progress
from .readouts import ReadoutPass
from .recorder import by_population
from .shared import Builds, SharedStats
from .spec import MODEL_NAMES, _model_trees
from .store import CheckpointStore, code_version, condition_key, digest


class _Runner:
    """Runs the conditions of one resolved config (see :meth:`Experiment.run`)."""

    def __init__(
        self,
        cfg: dict,
        progress: bool = True,
        checkpoint_dir=None,
        workers: int = 1,
        readouts: dict | None = None,
    ):
        self.cfg = cfg
        #: the network read-outs to measure (condition -> label -> "rates" / "evoked"); None:
        #: all (:func:`cortexsim.experiment.readouts.needed_readouts`)
        self.readouts = readouts
        self.progress = progress
        self.workers = int(check_number("workers", workers, min=1, integer=True))
        self.settings = cfg["settings"]
        self.seed = cfg["experiment"]["seed"]
        #: every seed of the run, by named stream (what is shared between conditions, and why:
        #: cortexsim.rng.STREAMS)
        self.streams = SeedSchedule(self.seed)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoints = CheckpointStore(self.checkpoint_dir) if self.checkpoint_dir else None
        self.version = code_version()
        #: one compiled circuit at a time, and the drawn circuits
        self.builds = Builds(self.settings, self.seed)
        #: the statistics the conditions share (pass 1, the sessions' references, read-outs)
        self.shared = SharedStats(
            self.settings, self.streams, self.version, self.builds, self.checkpoint_dir
        )

    def condition_key(self, cname: str) -> str:
        """Checkpoint key of a condition: its config (no criteria) and the code version."""
        return condition_key(self.cfg, cname, self.version)

    def _short_circuit(self, key, trees):
        """The short build of network configuration ``key`` (:meth:`Builds.short`)."""
        return self.builds.short(key, trees)

    def _trees(self, cond: dict) -> dict:
        ov = dict(self.cfg["overrides"])
        ov.update(cond["overrides"])
        return _model_trees(ov, list(self.cfg["ablations"]) + cond["ablations"])

    def _network_key(self, trees) -> str:
        return digest({m: trees[m].values() for m in ("circuit", "cells", "synaptic", "coupling")})

    # ----------------------------------------------------------------- main
    def run(self):
        from ..results import Results

        conds = list(self.cfg["conditions"])
        if self.workers > 1 and len(conds) > 1:
            out = self._run_parallel(conds)
        else:
            out = self.run_subset(conds)
        return Results.from_conditions(
            self.cfg, {c: out[c][0] for c in conds}, {c: out[c][1] for c in conds}
        )

    def _run_parallel(self, conds):
        """One process per condition (Brian2 standalone holds one device per process); the
        longest (stimulated) conditions start first.  Results are identical to a serial run:
        every random stream depends on the seed only."""
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        from ..errors import quiet_interrupt_in_worker

        cost = {c: self.cfg["conditions"][c]["protocol"] != "none" for c in conds}
        order = sorted(conds, key=lambda c: not cost[c])
        out = {}
        ctx = mp.get_context("spawn")
        queue = drawer = None
        if self.progress:
            import threading

            manager = ctx.Manager()
            queue = manager.Queue()
            drawer = threading.Thread(target=draw_worker_progress, args=(queue,), daemon=True)
            drawer.start()
        try:
            ex = ProcessPoolExecutor(
                self.workers, mp_context=ctx, initializer=quiet_interrupt_in_worker
            )
            try:
                futs = {
                    ex.submit(
                        _run_subset_worker,
                        self.cfg,
                        [c],
                        self.checkpoint_dir,
                        queue,
                        self.readouts,
                    ): c
                    for c in order
                }
                for f in as_completed(futs):
                    out.update(f.result())
            except BaseException:
                ex.shutdown(wait=True)
                raise
            # every result is in: the workers exit (and remove their build folders) while the
            # caller goes on (the interpreter joins them at exit)
            ex.shutdown(wait=False)
        finally:
            if drawer is not None:
                queue.put(None)
                drawer.join()
                manager.shutdown()
        return out

    def run_subset(self, conds) -> dict:
        """All three passes for the conditions ``conds``; returns condition -> (Dataset, model
        values used)."""
        allc = self.cfg["conditions"]
        trees = {c: self._trees(allc[c]) for c in conds}
        keys = {c: self._network_key(trees[c]) for c in conds}
        # pass 1: resting activity statistics per network configuration (short build)
        rkey = {c: self._rest_key(keys[c], allc[c], trees[c]) for c in conds}
        rest = {}
        for c in conds:
            if rkey[c] not in rest:
                rest[rkey[c]] = self._rest_stats(keys[c], allc[c], trees[c])
        # pass 2: the timelines (session builds), conditions grouped by network configuration
        recs, runs = {}, {}
        for c in sorted(conds, key=lambda c: (keys[c], conds.index(c))):
            a0, rates, nmda0 = rest[rkey[c]]
            runs[c] = ConditionRun(
                self._context(c, trees[c], keys[c]), self.shared, a0, nmda0, rest_rates=rates
            )
            recs[c] = runs[c].run()
        # pass 3: network read-outs from the spine snapshots (short build)
        readouts = ReadoutPass(
            self.settings,
            self.shared,
            self.builds,
            self.version,
            self.seed,
            self.progress,
            needed=self.readouts,
        ).run(recs, runs, trees, keys)
        labels = [ph["readout"] for ph in self.cfg["timeline"] if ph["readout"]]
        out = {}
        for c in conds:
            a0, rates, _ = rest[rkey[c]]
            ds = recs[c].dataset(
                c,
                labels,
                readouts[c],
                rates,
                by_population(a0, runs[c].layout.pop_index, len(runs[c].populations)),
            )
            out[c] = (ds, {m: trees[c][m].values() for m in MODEL_NAMES})
        return out

    def _context(self, cname: str, trees: dict, key: str) -> ConditionContext:
        """What condition ``cname``'s timeline is given: its drawn circuit (no build), site
        maps, initial spines, thresholds and checkpoint store."""
        cond = self.cfg["conditions"][cname]
        drawn = self.builds.drawn(key, trees)
        post = drawn.site_post
        return ConditionContext(
            cname,
            cond,
            trees,
            key,
            drawn,
            post,
            drawn.pop_index[post],
            self.shared.initial_spines(drawn.n_sites, trees),
            self.shared.thresholds(drawn, self._ablations(cond)),
            self.cfg["timeline"],
            self.settings,
            self.checkpoints,
            self.condition_key(cname),
            self.progress,
        )

    def _ablations(self, cond: dict) -> list:
        return list(self.cfg["ablations"]) + cond["ablations"]

    def _rest_key(self, key: str, cond: dict, trees: dict) -> tuple:
        """What the pass-1 statistics depend on besides the seed: the network configuration,
        whether the TMS thresholds are pooled (:meth:`SharedStats.thresholds`) and the
        structural model that draws the initial spine state: its values without the subtrees
        that only the sessions' drive reads
        (:data:`cortexsim.experiment.phase_states.LATE_SUBTREES`), so that sweep points that
        vary only those share it."""
        from .phase_states import early_digest

        return (key, "coupling" in self._ablations(cond), early_digest(trees, ["structural"]))

    def _rest_stats(self, key: str, cond: dict, trees: dict) -> tuple:
        """Pass 1: :meth:`SharedStats.baseline_stats` with the initial spine state, measured
        once per :meth:`_rest_key` and shared with the other worker processes;
        ``(a0, rates, nmda0)``."""
        circuit = self._short_circuit(key, trees)
        return self.shared.rest_stats(
            [
                "pass1_rest",
                self.version,
                *self._rest_key(key, cond, trees),
                circuit.config_hash(),
                self.seed,
            ],
            circuit,
            trees,
            self.shared.thresholds(circuit, self._ablations(cond)),
        )


def _run_subset_worker(cfg, conds, checkpoint_dir, queue=None, readouts=None):
    return _Runner(
        cfg, progress=queue or False, checkpoint_dir=checkpoint_dir, readouts=readouts
    ).run_subset(conds)
