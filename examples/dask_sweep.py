"""
Running a sweep on a Dask cluster (shown, not run)
==================================================

Sweeps, fits and sensitivity analyses run on one engine; give it a Dask scheduler instead of
local worker processes.  Install the extra (``pip install 'cortexsim[dask]'``), start a
scheduler and workers with one thread each (Brian2 is imported on each worker by a plugin),
and put the output folder on a file system the workers share.

This page is not executed when the documentation is built: it needs a cluster.

From the shell::

    dask scheduler                                   # on one machine: tcp://host:8786
    dask worker tcp://host:8786 --nthreads 1 --nworkers 8
    cortexsim sweep experiments/sweep_intensity.toml --scheduler tcp://host:8786 \\
        --out /shared/sweep_intensity --plot it5_restoration_24h

From Python, on a SLURM (or PBS, ...) cluster through dask-jobqueue:
"""

from dask_jobqueue import SLURMCluster
from distributed import Client

from cortexsim.sweep import load_sweep

cluster = SLURMCluster(cores=1, processes=1, memory="4GB", walltime="04:00:00")
cluster.scale(jobs=32)
client = Client(cluster)

summary = load_sweep("experiments/sweep_intensity.toml").run(
    scheduler=client, out="/shared/out/sweep_intensity"
)
print(summary)

# %%
# On one machine, a ``distributed.LocalCluster`` gives the same engine (two workers were
# 1.84x one, benchmarks/RESULTS.md):
#
# .. code-block:: python
#
#     from distributed import Client, LocalCluster
#     with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as c:
#         load_sweep("experiments/sweep_intensity.toml").run(scheduler=c, out="out/sw")
#
# A finished run is written atomically to the store (``OUT/store``): if the cluster goes
# away, re-running the same command on another one resumes.
