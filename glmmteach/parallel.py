"""Refit loops on several processes (joblib).

A parametric bootstrap repeats one step for b = 1, ..., B: simulate a data set from its own seed,
refit, compute a statistic. The B steps are independent, so they can run on ``n_jobs`` worker
processes; each keeps its own seed, so the results are the same for any ``n_jobs``. A profile
interval is the same kind of loop over the parameters: each is profiled on its own.

:func:`replicate` is the public form, for any simulation study (the power of a design, the coverage
of an interval): ``gt.replicate(step, nsim, seed, n_jobs)`` runs ``step(seed_b)`` for b = 1, ..., nsim.
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
    Pearson test's refits, 4 the bootstrap intervals, 5 the bootstrap likelihood-ratio test, 6
    :func:`replicate`.

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


def replicate(step, nsim: int, seed=None, n_jobs: int = 1) -> list:
    """Run a simulation ``nsim`` times, on ``n_jobs`` processes: ``[step(s_1), ..., step(s_nsim)]``.

    Replicate b gets its own seed :math:`s_b`, the b-th of :func:`replicate_seeds` ``(seed, nsim,
    stream=6)``, and ``step`` draws all its random numbers from it (``fit.simulate(1, seed=s)``,
    ``numpy.random.default_rng(s)``). The results are then the same for any ``n_jobs``, and in the
    order b = 1, ..., nsim. A power study is one such loop: simulate a trial from the truth, analyse
    it, record whether the test rejects; the power is the share of rejections.

    R: ``future.apply::future_replicate(nsim, step(), future.seed = seed)``, or
    ``parallel::mclapply(seeds, step, mc.cores = n_jobs)``.

    Parameters
    ----------
    step : callable
        A function of one seed (an ``int``), returning anything picklable. It is sent to the worker
        processes, so it must be picklable: a function defined at the top level of a module, a script or
        a notebook (joblib sends the latter two by value), or ``functools.partial`` of one with the fit
        and the settings it needs.
    nsim : int
        The number of replicates, >= 1.
    seed : int, optional
        The seed of the whole study (None: fresh entropy, a different study each time).
    n_jobs : int
        Processes (-1: every core). 1 runs the loop in this process.

    Returns
    -------
    list
        ``step(s_b)`` for b = 1, ..., nsim.

    Examples
    --------
    The power of the Wald test of ``x`` when its effect is the fitted one::

        def rejects(fit, seed):
            refit = fit.refit(fit.simulate(1, seed=seed)["sim_1"])
            return abs(refit.fixef["x"] / refit.se["x"]) > 1.96

        step = functools.partial(rejects, fit)
        power = np.mean(gt.replicate(step, 200, seed=1, n_jobs=2))
    """
    if not callable(step):
        raise TypeError(f"step must be a function of one seed, e.g. def step(seed): ...; got {step!r}")
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ValueError(f"nsim must be a whole number of replicates >= 1; got {nsim!r}")
    return map_items(step, replicate_seeds(seed, int(nsim), stream=6), n_jobs)


def _run(step, items: list) -> list:
    return [step(item) for item in items]
