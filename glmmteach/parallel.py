"""Refit loops on several processes (joblib).

A parametric bootstrap repeats one step for b = 1, ..., B: simulate a data set from its own seed,
refit, compute a statistic. The B steps are independent, so they can run on ``n_jobs`` worker
processes; each keeps its own seed, so the results are the same for any ``n_jobs``. A profile
interval is the same kind of loop over the parameters: each is profiled on its own.
"""
from __future__ import annotations

import numpy as np
from joblib import Parallel, cpu_count, delayed


def check_n_jobs(n_jobs) -> int:
    """``n_jobs`` as joblib reads it: a whole number >= 1, or -1 for every core.

    R: the ``mc.cores`` of ``parallel::mclapply``."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be a whole number of processes >= 1, or -1 for all {cpu_count()} cores; "
                         f"got {n_jobs!r}")
    return cpu_count() if n_jobs == -1 else int(n_jobs)


def replicate_seeds(seed, n: int, stream: int) -> list[int]:
    """One seed per replicate b = 1, ..., n: the first n numbers of ``numpy.random.SeedSequence([seed,
    stream])``, a stream of its own for each kind of bootstrap (None: fresh entropy). Each replicate draws
    from its own seed, so the replicates do not depend on which process runs them.

    The streams in use: 1 the uniform draws of the scaled residuals, 2 the residual tests' refits, 3 the
    Pearson test's refits, 4 the bootstrap intervals, 5 the bootstrap likelihood-ratio test.

    R: no counterpart (R's bootstraps draw from one stream, ``set.seed()``)."""
    entropy = np.random.SeedSequence(seed).entropy
    return [int(s) for s in np.random.SeedSequence([entropy, stream]).generate_state(n)]


def map_items(step, items, n_jobs: int = 1) -> list:
    """``[step(item) for item in items]``, on ``n_jobs`` processes.

    The items are split into ``n_jobs`` contiguous chunks, one task each (``step`` and what it refers
    to are sent to a process once, not once per item); the results come back in the items' order.
    ``step`` must be picklable: a module-level function, or ``functools.partial`` of one (joblib sends
    functions defined in a script or notebook by value, with cloudpickle, so those work too).

    R: ``parallel::mclapply(items, step, mc.cores = n_jobs)``."""
    items = list(items)
    n_jobs = min(check_n_jobs(n_jobs), max(len(items), 1))
    if n_jobs == 1:
        return [step(item) for item in items]
    chunks = [[items[i] for i in index] for index in np.array_split(np.arange(len(items)), n_jobs)]
    parts = Parallel(n_jobs=n_jobs)(delayed(_run)(step, chunk) for chunk in chunks)
    return [result for part in parts for result in part]


def map_seeds(step, seeds: list, n_jobs: int = 1) -> list:
    """``[step(seed) for seed in seeds]``, on ``n_jobs`` processes: :func:`map_items` over the seeds of
    :func:`replicate_seeds`.

    R: ``parallel::mclapply(seeds, step, mc.cores = n_jobs)``."""
    return map_items(step, seeds, n_jobs)


def _run(step, items: list) -> list:
    return [step(item) for item in items]
