"""gt.replicate and the map under it: any simulation loop on several processes, one seed per replicate, so the
results do not depend on the number of processes. A toy power study is the example: simulate a trial from a small
fit with a chosen effect, refit, record whether the Wald test rejects."""
import functools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import glmmteach as gt
from glmmteach.parallel import map_items, replicate_seeds


@pytest.fixture(scope="module")
def small_fit():
    """Poisson counts of 8 groups of 6, with a group effect and a covariate x."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(8), 6)
    x = rng.uniform(-1, 1, len(g))
    y = rng.poisson(np.exp(1.0 + 0.2 * x + rng.normal(0, 0.3, 8)[g])).astype(float)
    return gt.glmm("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]}), family="poisson")


def wald_test_rejects(fit, beta, seed):
    """One simulated trial: data from ``fit`` with the fixed effects ``beta``, the same model refitted, and
    (z of x, whether |z| > 1.96)."""
    y = fit.simulate(1, seed=seed, newparams={"beta": beta})["sim_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gt.ConvergenceWarning)
        refit = fit.refit(y)
    z = refit.fixef["x"] / refit.se["x"]
    return float(z), bool(abs(z) > stats.norm.ppf(0.975))


def test_a_power_loop_gives_the_same_results_on_two_processes(small_fit):
    beta = small_fit.fixef.to_numpy().copy()
    beta[1] = 0.5                                                      # the effect whose power is wanted
    step = functools.partial(wald_test_rejects, small_fit, beta)
    state = np.random.get_state()[1].copy()
    one = gt.replicate(step, 12, seed=8)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    two = gt.replicate(step, 12, seed=8, n_jobs=2)
    assert one == two
    assert one == [step(s) for s in replicate_seeds(8, 12, stream=6)]  # replicate b gets the b-th seed
    z = np.array([z for z, _ in one])
    assert len(set(z)) == 12 and z.mean() > 1                          # different trials, an effect seen
    assert gt.replicate(step, 12, seed=9) != one
    power = np.mean([rejected for _, rejected in one])
    assert 0 < power <= 1


def test_map_items_keeps_the_order_of_any_items():
    items = [("a", 1), ("b", 2), ("c", 3)]
    assert map_items(repr, items, n_jobs=2) == [repr(item) for item in items]
    assert map_items(repr, items, n_jobs=5) == [repr(item) for item in items]   # more processes than items
    assert map_items(repr, [], n_jobs=2) == []


def test_replicate_refuses_bad_input():
    for nsim in (0, 2.5, True, "3"):
        with pytest.raises(ValueError, match="nsim must be a whole number of replicates >= 1"):
            gt.replicate(int, nsim)
    with pytest.raises(TypeError, match="step must be a function of one seed"):
        gt.replicate(3, 2)
    with pytest.raises(ValueError, match="n_jobs must be a whole number of processes"):
        gt.replicate(int, 2, n_jobs=-3)
