"""Simulation-based scaled residuals and their tests: the ideas of DHARMa (Hartig), in Python.

The idea in three steps:

1. simulate ``n`` new responses :math:`y^*_{i1}, \\dots, y^*_{in}` for every observation from the
   fitted model;
2. the scaled residual of observation *i* is where :math:`y_i` falls among its own simulations, the
   probability integral transform (PIT) :math:`r_i = \\hat F_i(y_i)` with :math:`\\hat F_i` the
   empirical distribution of the simulations;
3. if the model is right, :math:`r_1, \\dots, r_N` are uniform on [0, 1] *whatever the family*: one
   QQ plot against the uniform and a few tests serve every GLMM.

The core needs only the observed response and the simulation matrix (DHARMa's narrow interface):
:func:`scaled_residuals` and :meth:`ScaledResiduals.from_simulations`. :func:`simulate_residuals`
takes both from a fitted model. The tests (:func:`test_uniformity`, :func:`test_dispersion`,
:func:`test_outliers`, :func:`test_zero_inflation`, :func:`test_quantiles`,
:func:`test_categorical`) each return a :class:`TestResult`. One test needs the fitted model rather
than simulations: :func:`test_pearson_dispersion`, Pearson's chi-squared, the dispersion test to use
for a GLMM (with ``n_boot``).

The residuals compare the data with a model fitted to the same data, which makes some tests
conservative (the KS test above all). :func:`bootstrap_statistics` calibrates them by a parametric
bootstrap with refits: pass ``n_boot`` to a test.

Random numbers come from ``numpy.random.default_rng(seed)``; the global random state is never used,
and the same seed gives the same residuals.
"""
from __future__ import annotations

import functools
import textwrap
import warnings
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .laplace import NotPositiveDefinite
from .problems import ConvergenceWarning
from .parallel import map_items, replicate_seeds
from .rformat import r_format_pval

QUANTILES = (0.25, 0.5, 0.75)


# ---- the core: observed response + simulations -> scaled residuals ----------------------------------
def scaled_residuals(observed, simulated, rng=None) -> np.ndarray:
    """Randomised probability integral transform of each observation among its simulations.

    .. math::

        r_i = \\frac{1}{n}\\sum_{k} [y^*_{ik} < y_i] \\; + \\; U_i \\,
              \\frac{1}{n}\\sum_{k} [y^*_{ik} = y_i], \\qquad U_i \\sim \\mathrm{Uniform}(0, 1),

    a uniform draw between :math:`\\hat P(y^* < y_i)` and :math:`\\hat P(y^* \\le y_i)` (DHARMa's
    ``method = "PIT"``). For integer-valued responses (counts, binomial successes) ties are common and
    the draw makes :math:`r_i` uniform instead of lumped. For continuous responses ties have
    probability zero, so :math:`r_i = \\hat P(y^* < y_i)`; a tie that does occur (an exact zero, say)
    is randomised in the same way, as DHARMa does.

    Parameters
    ----------
    observed : array of shape (N,)
        The response, on the scale of the simulations (binomial: success counts).
    simulated : array of shape (N, n)
        ``n`` simulated responses for each observation.
    rng : numpy.random.Generator or int, optional
        The source of the :math:`U_i` (a seed is turned into ``numpy.random.default_rng(seed)``).

    Returns
    -------
    numpy.ndarray of shape (N,), values in [0, 1]
    """
    y, y_star = _as_observed_and_simulated(observed, simulated)
    below = np.mean(y_star < y[:, None], axis=1)
    tied = np.mean(y_star == y[:, None], axis=1)
    U = np.random.default_rng(rng).uniform(size=len(y))
    return below + U * tied


def _as_observed_and_simulated(observed, simulated):
    y = np.asarray(observed, float).ravel()
    y_star = np.asarray(simulated, float)
    if y_star.ndim != 2 or y_star.shape[0] != len(y):
        raise ValueError(f"simulated must have one row per observation ({len(y)}) and one column per "
                         f"simulation; got shape {y_star.shape}")
    return y, y_star


def _randomisation_rng(seed: int) -> np.random.Generator:
    """The generator of the PIT's uniform draws: its own stream, derived from the seed."""
    return np.random.default_rng([seed, 1])


# ---- the residual object ---------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class ScaledResiduals:
    """Scaled residuals and what they were computed from: DHARMa's object, as
    :func:`simulate_residuals` returns it (R: ``simulateResiduals(fit)``). Each attribute names its
    counterpart in R's DHARMa object.
    """

    #: The scaled residuals, one per observation, in [0, 1].
    #:
    #: R: ``res$scaledResiduals``.
    scaled: np.ndarray
    #: The response on the scale of the simulations (for binomial the success counts), shape (N,).
    #:
    #: R: ``res$observedResponse``.
    observed: np.ndarray
    #: The simulated responses, shape (N, n), one column per simulation.
    #:
    #: R: ``res$simulatedResponse``.
    simulated: np.ndarray
    #: The model's predicted response (for binomial the probability), the x axis of the residual plot, at
    #: the population level (without random effects) when the simulations drew new random effects, with
    #: the fitted random effects when they kept them (see :func:`simulate_residuals`).
    #:
    #: R: ``res$fittedPredictedResponse``.
    fitted: np.ndarray
    #: ``fitted`` on the scale of ``observed`` (binomial trials x probability), the centre of the
    #: residuals in :func:`test_dispersion`.
    #:
    #: R: no field of its own; DHARMa computes it inside its tests.
    expected: np.ndarray
    #: Whether the response is integer-valued (its ties were randomised).
    #:
    #: R: ``res$integerResponse``.
    integer: bool
    #: The seed of the simulations and of the randomisation.
    #:
    #: R: ``res$randomState$seed``.
    seed: int
    #: How the simulations treated the random effects, False (new ones drawn), True (the fitted ones
    #: kept), ``"none"`` (a model without random effects) or None (simulations supplied by the caller).
    #:
    #: R: lme4's ``re.form`` in ``simulate()``, ``NA`` for False and ``NULL`` for True.
    conditional: bool | str | None = None
    #: After :meth:`recalculate`, the group label of each residual; None before.
    #:
    #: R: the ``group`` argument of ``recalculateResiduals()``.
    group: np.ndarray | None = None
    #: The model's data, if given, so that :meth:`recalculate` accepts a column name.
    #:
    #: R: no counterpart (DHARMa takes the grouping vector itself).
    data: pd.DataFrame | None = field(default=None, repr=False)
    #: The fitted model the simulations came from (None when supplied by the caller); the parametric
    #: bootstrap of the tests (``n_boot``) refits it.
    #:
    #: R: ``res$fittedModel``.
    fit: object = field(default=None, repr=False)
    #: After :meth:`recalculate`, the group label of every original observation (so that bootstrap
    #: residuals are grouped alike); None before.
    #:
    #: R: no counterpart (DHARMa does not bootstrap grouped residuals).
    observation_groups: np.ndarray | None = field(default=None, repr=False)
    #: n_boot -> the tests' statistics on the bootstrap data sets (see :func:`bootstrap_statistics`),
    #: kept so that several tests share one bootstrap.
    #:
    #: R: no counterpart.
    null_statistics: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_simulations(cls, observed, simulated, fitted=None, expected=None, integer=None,
                         seed: int | None = 123) -> "ScaledResiduals":
        """Scaled residuals from any observed response and simulations (from R, for instance).
        R: ``createDHARMa(simulatedResponse, observedResponse, fittedPredictedResponse)``.

        ``expected`` defaults to ``fitted``, and ``fitted`` to the mean of each row of ``simulated``;
        ``integer`` defaults to whether every value is a whole number.
        """
        y, y_star = _as_observed_and_simulated(observed, simulated)
        seed = np.random.SeedSequence(seed).entropy
        fitted = y_star.mean(axis=1) if fitted is None else np.asarray(fitted, float)
        expected = fitted if expected is None else np.asarray(expected, float)
        if integer is None:
            integer = bool(np.all(y == np.round(y)) and np.all(y_star == np.round(y_star)))
        scaled = scaled_residuals(y, y_star, _randomisation_rng(seed))
        return cls(scaled, y, y_star, fitted, expected, integer, seed)

    @property
    def n_sim(self) -> int:
        """The number of simulations, n.

        R: ``res$nSim``."""
        return self.simulated.shape[1]

    def __len__(self) -> int:
        return len(self.scaled)

    def __str__(self) -> str:
        how = {False: "new random effects drawn in each simulation",
               True: "the fitted random effects kept",
               "none": "a model without random effects",
               None: "simulations supplied by the caller"}[self.conditional]
        values = " ".join(f"{r:.3g}" for r in self.scaled[:20]) + (" ..." if len(self) > 20 else "")
        grouped = f", summed within {len(self)} groups" if self.group is not None else ""
        # Lines of at most 80 characters, as R prints to its console (a few values per line).
        head = textwrap.fill(f"Scaled residuals from {self.n_sim} simulations (refit = False, {how}{grouped}). "
                             "See help(glmmteach.simulate_residuals).", 80)
        prefix = "Scaled residual values: "
        return head + "\n\n" + textwrap.fill(values, 80, initial_indent=prefix,
                                              subsequent_indent=" " * len(prefix))

    __repr__ = __str__

    #: The function that draws :meth:`plot`. The core imports no plotting; ``import glmmteach`` sets this to
    #: :func:`glmmteach.plotting.plot_scaled_residuals`, which loads matplotlib only when a plot is asked for.
    #:
    #: R: no counterpart (DHARMa's ``plot.DHARMa`` method).
    painter: ClassVar = None

    def plot(self, form=None, quantiles=QUANTILES, n_boot: int = 0, n_jobs: int = 1):
        """DHARMa's two panels; see :func:`glmmteach.plotting.plot_scaled_residuals`.

        R: ``plot(res)``."""
        return type(self).painter(self, form=form, quantiles=quantiles, n_boot=n_boot, n_jobs=n_jobs)

    def recalculate(self, group) -> "ScaledResiduals":
        """Residuals of group totals: sum observations and simulations within groups, recompute
        (R: ``recalculateResiduals(res, group)``).

        .. math:: y_g = \\sum_{i \\in g} y_i, \\qquad y^*_{gk} = \\sum_{i \\in g} y^*_{ik},

        and likewise ``fitted`` and ``expected``; then :func:`scaled_residuals` with a generator made
        afresh from the same seed. Use it for data with several observations per unit (a plate, a
        time series, a site), where the tests should count units and not observations.

        Parameters
        ----------
        group : array of shape (N,) or str
            A label per observation, or the name of a column of the model's data (only when the data
            were kept with the residuals, see :func:`simulate_residuals`).

        Returns
        -------
        ScaledResiduals
            One residual per group, in sorted order of the labels (``.group``).
        """
        labels = self._group_labels(group)
        codes, levels = pd.factorize(labels, sort=True)
        if np.any(codes < 0):
            raise ValueError("group has missing labels; give every observation a group")
        totals = _group_sum_matrix(codes, len(levels))
        observed, simulated = totals @ self.observed, totals @ self.simulated
        scaled = scaled_residuals(observed, simulated, _randomisation_rng(self.seed))
        return replace(self, scaled=scaled, observed=observed, simulated=simulated,
                       fitted=totals @ self.fitted, expected=totals @ self.expected,
                       group=np.asarray(levels), data=None, null_statistics={},
                       observation_groups=self._labels_of_observations(labels))

    def _labels_of_observations(self, labels: np.ndarray) -> np.ndarray:
        """The label of every original observation, when the residuals are already group totals."""
        if self.observation_groups is None:
            return labels
        previous = pd.factorize(self.observation_groups, sort=True)[0]
        return labels[previous]

    def _group_labels(self, group) -> np.ndarray:
        if isinstance(group, str):
            if self.data is None or group not in self.data:
                raise ValueError(f"no data column {group!r} is known to these residuals (the fitted model "
                                 "does not keep its data); pass the column itself, e.g. "
                                 f"res.recalculate(group=data[{group!r}])")
            group = self.data[group]
        labels = np.asarray(group)
        if labels.shape != (len(self),):
            raise ValueError(f"group must give one label per residual ({len(self)}); got shape {labels.shape}")
        return labels


def _group_sum_matrix(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """The 0/1 matrix G with G[g, i] = 1 when observation i is in group g, so G @ y sums by group."""
    return sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(n_groups, len(codes)))


def simulate_residuals(fit, n: int = 250, seed: int | None = 123, conditional: bool = False,
                       data: pd.DataFrame | None = None) -> ScaledResiduals:
    """Scaled residuals of a fitted model: simulate ``n`` responses, then :func:`scaled_residuals`.

    Parameters
    ----------
    fit : GlmmFit
        A model fitted by :func:`glmmteach.glmm`.
    n : int
        Number of simulations (DHARMa's ``n = 250``).
    seed : int or None
        Seed of ``numpy.random.default_rng`` for the simulations (and, on a stream of its own, for
        the randomisation of ties). The same seed gives the same residuals; the global random
        state is not touched. ``None`` draws a fresh seed, kept in ``.seed``.
    conditional : bool
        How the simulations treat the random effects:

        * ``False`` (default): every simulation draws **new** random effects
          :math:`u^* \\sim N(0, \\hat\\Sigma)`, then :math:`y^* \\mid u^*`. The residual compares
          :math:`y_i` with its marginal distribution, so the random-effect part of the model is
          checked too. This is glmmTMB's ``simulate()`` default and DHARMa 0.4.x's behaviour.
        * ``True``: every simulation keeps the fitted random effects :math:`\\hat u`, then
          :math:`y^* \\mid \\hat u`: the residual checks the distribution of the response around
          its group's fitted mean. Recent DHARMa (0.5) made this its default (lme4's
          ``re.form = NULL``): unconditional residuals of one group are correlated, and the
          dispersion test is more sensitive with conditional simulations.

        The predictions ``.fitted`` (the plot's x axis and the centre of :func:`test_dispersion`)
        follow the same choice: population level (``re_form="~0"``, as DHARMa 0.4) for ``False``,
        with the fitted random effects for ``True``.
    data : pandas.DataFrame, optional
        The model's data, kept so that :meth:`ScaledResiduals.recalculate` accepts a column name.

    Returns
    -------
    ScaledResiduals

    Examples
    --------
    >>> res = simulate_residuals(fit, n=250, seed=123)     # doctest: +SKIP
    >>> print(res)                                         # doctest: +SKIP
    >>> res.plot()                                         # doctest: +SKIP
    """
    seed = np.random.SeedSequence(seed).entropy
    simulated = fit.simulate(n, seed=seed, conditional=conditional).to_numpy(float)
    observed = np.asarray(fit.design.y, float)
    fitted = np.asarray(fit.predict(type="response", re_form=None if conditional else "~0"), float)
    expected = fit.family.mean_of_y(fitted, fit.design.n)
    scaled = scaled_residuals(observed, simulated, _randomisation_rng(seed))
    if data is None:
        data = getattr(fit, "data", None)
    if data is not None and len(data) != len(observed):
        data = None   # rows were dropped for missing values: labels would not line up
    return ScaledResiduals(scaled, observed, simulated, fitted, expected, bool(fit.family.integer_valued),
                           seed, conditional if fit.design.q else "none", None, data, fit)


# ---- test results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestResult:
    """A test's outcome, printed like R's ``htest`` (what DHARMa's ``testDispersion(res)`` and the
    other tests return). Each attribute names its element of the ``htest`` list.
    """

    __test__ = False   # not a pytest test class

    #: Short name, e.g. ``"Dispersion test"``, the first words of the printout.
    #:
    #: R: no element (``print`` writes the method only).
    name: str
    #: What was computed.
    #:
    #: R: ``$method``.
    method: str
    #: The test statistic, or None for a test that has none.
    #:
    #: R: ``$statistic``.
    statistic: float | None
    #: The statistic's name in the printout, e.g. ``"D"``.
    #:
    #: R: ``names($statistic)``.
    statistic_name: str
    #: The p-value.
    #:
    #: R: ``$p.value``.
    pvalue: float
    #: The alternative hypothesis, ``"two-sided"``, ``"greater"`` or ``"less"``, or a sentence.
    #:
    #: R: ``$alternative``.
    alternative: str
    #: Anything else the test computed (expected values, per-quantile p-values, curves).
    #:
    #: R: the other elements of the list, such as ``$data.name``.
    details: dict = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        statistic = (f"{self.statistic_name} = {self.statistic:.4g}, " if self.statistic is not None else "")
        # A long alternative wraps at 80 characters, as R's print.htest wraps its lines.
        alternative = textwrap.fill(f"alternative hypothesis: {self.alternative}", 80, subsequent_indent="  ")
        # The first line too, once past the 88 characters a page's code column holds.
        first = textwrap.fill(f"{self.name}: {self.method}", 88, subsequent_indent="  ")
        return (f"{first}\n"
                f"{statistic}p-value = {r_format_pval([self.pvalue], 4)[0]}\n"
                f"{alternative}")

    __repr__ = __str__


def _simulation_pvalue(simulated: np.ndarray, observed: float, alternative: str) -> float:
    """p-value of an observed summary among its simulated values (DHARMa's ``getP``).

    greater: :math:`\\hat P(T^* \\ge T)`; less: :math:`\\hat P(T^* \\le T)`;
    two-sided: :math:`\\min\\{1, 2\\min[\\hat P(T^* \\le T), \\hat P(T^* \\ge T)]\\}`.
    """
    greater, less = np.mean(simulated >= observed), np.mean(simulated <= observed)
    if alternative == "greater":
        return float(greater)
    if alternative == "less":
        return float(less)
    if alternative == "two-sided":
        return float(min(1.0, 2 * min(greater, less)))
    raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less'; got {alternative!r}")


# ---- calibration by parametric bootstrap -------------------------------------------------------------
def bootstrap_statistics(res: ScaledResiduals, n_boot: int, n_jobs: int = 1) -> pd.DataFrame:
    """The tests' statistics under the fitted model, estimation included: a parametric bootstrap.

    For :math:`b = 1, \\dots, B` (``n_boot``):

    1. simulate a data set :math:`y^*_b` from the fitted model, with new random effects (the model's
       account of how the data arose);
    2. refit the model to :math:`y^*_b` (:meth:`GlmmFit.refit`): estimates :math:`\\hat\\psi^*_b`;
    3. compute scaled residuals of :math:`y^*_b` against simulations from the *refitted* model, exactly
       as ``res`` was computed (same number of simulations, same ``conditional``, same grouping);
    4. compute every test's statistic :math:`T^*_b` on them.

    Why: the residuals of ``res`` compare the data with a model *estimated from the same data*, so
    they fit better than residuals against the true model would; a statistic such as the KS
    distance is then smaller than its textbook null distribution assumes, and that test's p-value
    is too large (Lilliefors' observation for the KS test with estimated parameters). Step 2 lets
    the estimates adapt to :math:`y^*_b` as they adapted to :math:`y`, so :math:`T^*_1, \\dots, T^*_B`
    follow the distribution that :math:`T` has when the model is right.

    Each test with ``n_boot`` uses the result; it is computed once per ``n_boot`` and kept in
    ``res.null_statistics``. The random numbers come from ``res.seed``, on streams of their own, one
    pair per refit, so ``n_jobs`` (processes for the refits, -1 for every core; see
    :func:`glmmteach.parallel.map_items`) does not change the result.

    Returns
    -------
    pandas.DataFrame
        One row per refit that converged; columns ``uniformity``, ``dispersion``, ``outliers``,
        ``zero_inflation`` (the statistics of the tests of those names).
    """
    n_boot = _check_n_boot(res, n_boot)
    if n_boot not in res.null_statistics:
        seeds = np.random.SeedSequence([res.seed, 2]).generate_state(2 * n_boot).reshape(n_boot, 2)
        rows = map_items(functools.partial(_bootstrap_replicate, res), [tuple(map(int, s)) for s in seeds],
                         n_jobs)
        _warn_failed_refits(sum(row is None for row in rows), n_boot, stacklevel=3)
        res.null_statistics[n_boot] = pd.DataFrame([row for row in rows if row is not None],
                                                   columns=list(BOOTSTRAP_TESTS))
    return res.null_statistics[n_boot]


def _whole_number_of_refits(n_boot) -> int:
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number of refits >= 1 (199 is a common choice); got {n_boot!r}")
    return int(n_boot)


def _warn_failed_refits(failed: int, n_boot: int, stacklevel: int) -> None:
    if failed:
        warnings.warn(f"{failed} of {n_boot} refits in the parametric bootstrap did not converge and "
                      "were left out", RuntimeWarning, stacklevel=stacklevel + 1)


def _check_n_boot(res: ScaledResiduals, n_boot) -> int:
    _whole_number_of_refits(n_boot)
    if res.fit is None:
        raise ValueError("n_boot needs residuals made by gt.simulate_residuals(fit): the bootstrap refits "
                         "that model, and these residuals came from simulations without one")
    return int(n_boot)


def _bootstrap_replicate(res: ScaledResiduals, seeds: tuple[int, int]) -> dict | None:
    """Steps 1-4 of :func:`bootstrap_statistics` for one data set (seeds for the data and for the
    residuals); None if the refit fails."""
    data_seed, residual_seed = seeds
    y_star = res.fit.simulate(1, seed=data_seed).to_numpy(float)[:, 0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)   # singular refits belong to the null distribution
            refitted = res.fit.refit(y_star, standard_errors=False)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError, NotPositiveDefinite):
        return None
    if not refitted.converged:
        return None
    boot = simulate_residuals(refitted, n=res.n_sim, seed=residual_seed, conditional=res.conditional is True)
    if res.observation_groups is not None:
        boot = boot.recalculate(res.observation_groups)
    return {name: test(boot).statistic for name, test in BOOTSTRAP_TESTS.items()}


def _bootstrap_pvalue(null: np.ndarray, observed: float, alternative: str) -> float:
    """p-value of an observed statistic among B bootstrap values, counting the observed one among them:

    greater: :math:`(1 + \\#\\{T^*_b \\ge T\\}) / (B + 1)`; less: likewise with :math:`\\le`; two-sided: twice
    the smaller, at most 1. Under the model it is uniform on :math:`\\{1/(B+1), \\dots, 1\\}` (up to ties).
    """
    null = null[np.isfinite(null)]
    B = len(null)
    if not np.isfinite(observed) or B == 0:
        return float("nan")
    greater, less = (1 + np.sum(null >= observed)) / (B + 1), (1 + np.sum(null <= observed)) / (B + 1)
    return float({"greater": greater, "less": less}.get(alternative, min(1.0, 2 * min(greater, less))))


def _pvalue(res: ScaledResiduals, name: str, statistic: float, pvalue: float, alternative: str,
            n_boot: int, n_jobs: int) -> tuple[float, str]:
    """The test's own p-value (n_boot = 0), or the parametric-bootstrap one and a phrase saying so."""
    if not n_boot:
        return pvalue, ""
    null = bootstrap_statistics(res, n_boot, n_jobs)[name].to_numpy(float)
    return (_bootstrap_pvalue(null, statistic, alternative),
            f"; p-value from a parametric bootstrap with {np.isfinite(null).sum()} refits")


def test_uniformity(res: ScaledResiduals, n_boot: int = 0, n_jobs: int = 1) -> TestResult:
    """Kolmogorov-Smirnov test of the scaled residuals against Uniform(0, 1).

    :math:`D = \\sup_t |\\hat F_N(t) - t|`, with :math:`\\hat F_N` the empirical distribution of the
    residuals (``scipy.stats.kstest``; R's ``ks.test`` as DHARMa's ``testUniformity``).

    With ``n_boot = 0`` the p-value is the KS test's, which assumes the residuals come from the true
    model. For a model fitted to the same data it is **conservative**: the estimates adapt to the data,
    D comes out smaller than the KS distribution says, and a correct model is rejected far less often
    than 5% of the time (under 1% in benchmarks/CALIBRATION.md). A significant result is still
    evidence of a problem; a non-significant one says less than it seems.

    With ``n_boot = B`` (199, say) the p-value is the position of D among B values of D computed on
    data sets simulated from the fitted model and refitted (:func:`bootstrap_statistics`): it has
    its nominal level, at the cost of B refits.
    """
    ks = stats.kstest(res.scaled, "uniform")
    pvalue, how = _pvalue(res, "uniformity", float(ks.statistic), float(ks.pvalue), "greater", n_boot, n_jobs)
    return TestResult("Uniformity test", "one-sample Kolmogorov-Smirnov test against Uniform(0, 1)" + how,
                      float(ks.statistic), "D", pvalue, "the residuals are not uniform (two-sided)")


def test_dispersion(res: ScaledResiduals, alternative: str = "two-sided", n_boot: int = 0, n_jobs: int = 1) -> TestResult:
    """Simulation-based dispersion test (DHARMa's ``testDispersion(type = "DHARMa")``).

    The spread of the residuals around the model's prediction :math:`\\hat y_i` (``res.expected``),

    .. math:: s(y) = \\mathrm{var}_i(y_i - \\hat y_i),

    is computed for the observed response and for each simulation :math:`y^*_{\\cdot k}`. The
    statistic is the ratio :math:`s(y) / \\overline{s(y^*)}`: about 1 when the model's variance is
    right, above 1 for overdispersion, below 1 for underdispersion. The p-value is the position of
    :math:`s(y)` among the :math:`s(y^*_{\\cdot k})` (:func:`_simulation_pvalue`).

    DHARMa 0.4 uses the variance as here; DHARMa 0.3 used the standard deviation, whose ratio is
    about the square root of this one. The p-value is the same either way.

    With new random effects in every simulation (``conditional=False``) the simulated spread
    includes the random-effect variance: the test is conservative and loses power. With the fitted
    random effects (``conditional=True``) it is more sensitive, as DHARMa recommends, but leans
    towards underdispersion when groups are small, since the fitted random effects follow the data
    (benchmarks/CALIBRATION.md). ``n_boot = B`` takes the p-value of the ratio from B refits to data
    simulated from the fitted model instead (:func:`bootstrap_statistics`), which corrects both.

    To test a Poisson or binomial GLMM for overdispersion, :func:`test_pearson_dispersion` with
    ``n_boot`` is the more powerful test at the same level (benchmarks/CALIBRATION.md).
    """
    def spread(y):
        return np.var(y - (res.expected[:, None] if y.ndim == 2 else res.expected), axis=0, ddof=1)

    observed, simulated = spread(res.observed), spread(res.simulated)
    ratio = float(observed / simulated.mean())
    pvalue, how = _pvalue(res, "dispersion", ratio, _simulation_pvalue(simulated, observed, alternative),
                          alternative, n_boot, n_jobs)
    return TestResult("Dispersion test", "simulation-based, variance of the residuals observed vs simulated"
                      + how, ratio, "dispersion", pvalue, alternative,
                      {"observed_spread": float(observed), "simulated_spread": simulated})


def test_outliers(res: ScaledResiduals, alternative: str = "two-sided", n_boot: int = 0, n_jobs: int = 1) -> TestResult:
    """Binomial test of the number of outliers: residuals outside all simulations (exactly 0 or 1).

    If the observation and its ``n`` simulations come from one continuous distribution, it is
    the smallest (or the largest) of the ``n + 1`` values with probability :math:`1/(n+1)` each, so
    the number of outliers among N residuals is :math:`\\mathrm{Binomial}(N, 2/(n+1))`
    (DHARMa's ``testOutliers(type = "binomial")``). For integer responses ties make outliers rarer
    than that, and the test conservative. ``n_boot = B`` compares the count with its values on B
    refits to data simulated from the fitted model instead (:func:`bootstrap_statistics`).
    """
    n_low, n_high = int(np.sum(res.scaled == 0)), int(np.sum(res.scaled == 1))
    expected = 2 / (res.n_sim + 1)
    test = stats.binomtest(n_low + n_high, len(res), expected, alternative=alternative)
    pvalue, how = _pvalue(res, "outliers", float(n_low + n_high), float(test.pvalue), alternative, n_boot, n_jobs)
    return TestResult("Outlier test", f"binomial test of residuals outside all {res.n_sim} simulations" + how,
                      float(n_low + n_high), "outliers", pvalue,
                      f"the frequency of outliers differs from the expected {expected:.4g} ({alternative})",
                      {"low": n_low, "high": n_high, "frequency": (n_low + n_high) / len(res),
                       "expected_frequency": expected})


def test_zero_inflation(res: ScaledResiduals, alternative: str = "two-sided", n_boot: int = 0, n_jobs: int = 1) -> TestResult:
    """Observed zeros against simulated zeros (DHARMa's ``testZeroInflation``).

    Statistic: :math:`Z(y) / \\overline{Z(y^*)}` with :math:`Z(y) = \\sum_i [y_i = 0]` (above 1: more
    zeros than the model expects); p-value from the position of :math:`Z(y)` among the
    :math:`Z(y^*_{\\cdot k})`. ``n_boot = B``: the ratio's p-value from B refits instead
    (:func:`bootstrap_statistics`).
    """
    observed, simulated = np.sum(res.observed == 0), np.sum(res.simulated == 0, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(observed / simulated.mean())
    pvalue, how = _pvalue(res, "zero_inflation", ratio, _simulation_pvalue(simulated, observed, alternative),
                          alternative, n_boot, n_jobs)
    return TestResult("Zero-inflation test", "simulation-based, number of zeros observed vs simulated" + how,
                      ratio, "ratioObsSim", pvalue, alternative,
                      {"observed_zeros": int(observed), "simulated_zeros": simulated})


#: the tests whose statistics :func:`bootstrap_statistics` computes, by name
BOOTSTRAP_TESTS = {"uniformity": test_uniformity, "dispersion": test_dispersion, "outliers": test_outliers,
                   "zero_inflation": test_zero_inflation}


# ---- Pearson's chi-squared dispersion test ----------------------------------------------------------
def pearson_chisq(fit) -> float:
    """Pearson's statistic of a fitted model, the sum of its squared Pearson residuals.

    .. math:: X^2 = \\sum_i r_i^2, \\qquad r_i = \\frac{(y_i - \\hat\\mu_i)\\sqrt{w_i}}{\\sqrt{V(\\hat\\mu_i)}},

    with :math:`\\hat\\mu_i` the fitted mean *with* the fitted random effects :math:`\\hat u`, V the
    family's variance function and :math:`w_i` the binomial trials or the prior weight
    (:meth:`GlmmFit.residuals` with ``type="pearson"``). For a Poisson or binomial model that is
    right, each :math:`r_i^2` is about 1 on average, and :math:`X^2` is about the number of
    observations less what the fit absorbed.

    R: ``sum(residuals(fit, type = "pearson")^2)``.
    """
    return float(np.sum(np.asarray(fit.residuals("pearson"), float) ** 2))


def bootstrap_pearson_chisq(fit, n_boot: int, seed: int | None = 123, n_jobs: int = 1) -> np.ndarray:
    """Pearson's :math:`X^2` (:func:`pearson_chisq`) under the fitted model, estimation included.

    For :math:`b = 1, \\dots, B` (``n_boot``): simulate :math:`y^*_b` from the fitted model with new
    random effects, refit the model to it (:meth:`GlmmFit.refit`), and compute :math:`X^{2*}_b` of
    the refit, with its own fitted random effects. The refits let :math:`\\hat u^*_b` follow
    :math:`y^*_b` as :math:`\\hat u` followed :math:`y`, so the :math:`X^{2*}_b` show what :math:`X^2`
    looks like when the model is right, the shrinkage of the fitted random effects included.

    Refit b draws from its own seed, the b-th of ``numpy.random.SeedSequence([seed, 3])``, so the
    values are the same for any ``n_jobs`` (processes, see :func:`glmmteach.parallel.map_items`).
    A refit that fails or does not converge gives NaN (left out by the test, which says how many).

    R: ``simulateResiduals(fit, n_boot, refit = TRUE)$refittedPearsonResiduals``, squared and summed
    per column.
    """
    n_boot = _whole_number_of_refits(n_boot)
    seeds = replicate_seeds(seed, n_boot, stream=3)
    return np.array(map_items(functools.partial(_pearson_replicate, fit), seeds, n_jobs), float)


def _pearson_replicate(fit, seed: int) -> float:
    """One :math:`X^{2*}_b`: simulate, refit, Pearson's statistic; NaN if the refit fails."""
    y_star = fit.simulate(1, seed=seed).to_numpy(float)[:, 0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)   # singular refits belong to the null distribution
            refitted = fit.refit(y_star, standard_errors=False)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError, NotPositiveDefinite):
        return np.nan
    return pearson_chisq(refitted) if refitted.converged else np.nan


def test_pearson_dispersion(model, alternative: str = "greater", n_boot: int = 0, seed: int | None = 123,
                            n_jobs: int = 1) -> TestResult:
    """Pearson's chi-squared dispersion test, with its p-value from a parametric bootstrap (``n_boot``).

    The statistic is the dispersion ratio :math:`X^2 / \\mathrm{df}`, Pearson's statistic
    (:func:`pearson_chisq`, residuals with the fitted random effects) over the residual degrees of
    freedom :math:`\\mathrm{df} = N - \\dim\\psi` (``fit.df_resid``, fixed effects and variance
    parameters, as glmmTMB counts them): about 1 when the variance is right, above 1 for
    overdispersion.

    Its reference distribution:

    * ``n_boot = B`` (recommended, 199 say): the position of :math:`X^2` among the
      :math:`X^{2*}_1, \\dots, X^{2*}_B` of B refits to data simulated from the fitted model
      (:func:`bootstrap_pearson_chisq`), :math:`p = (1 + \\#\\{X^{2*}_b \\ge X^2\\}) / (B + 1)` for
      ``"greater"``. It has its nominal level for mixed models too, since each refit's random effects
      adapt to its data as the fitted ones did (benchmarks/CALIBRATION.md).
    * ``n_boot = 0``: :math:`X^2 \\sim \\chi^2_{\\mathrm{df}}`, the glmmFAQ test. For a mixed model
      it is biased towards underdispersion: the fitted random effects follow the data and absorb
      more of its variation than the one degree of freedom per variance parameter that df
      subtracts, so :math:`X^2` comes out small. With ``alternative="greater"`` (the default) that
      makes it conservative, and ``"less"`` or ``"two-sided"`` unreliable; it is meant for families
      whose dispersion is fixed (Poisson, binomial).

    R: ``testDispersion(res, type = "PearsonChisq", alternative = "greater")`` for ``n_boot = 0``;
    with ``n_boot``, DHARMa's ``testDispersion()`` on ``simulateResiduals(fit, refit = TRUE)``.

    Parameters
    ----------
    model : GlmmFit or ScaledResiduals
        The fitted model, or residuals made by :func:`simulate_residuals` (their model is used).
    alternative : {"greater", "two-sided", "less"}
        ``"greater"`` tests for overdispersion only.
    n_boot : int
        Refits of the parametric bootstrap; 0 for the chi-squared p-value.
    seed : int or None
        Seed of the bootstrap's simulations (the same seed gives the same p-value; the global
        random state is left alone). None draws a fresh one, kept in ``details["seed"]``.
    n_jobs : int
        Processes for the refits (-1: every core); the result does not depend on it.

    """
    fit = model.fit if isinstance(model, ScaledResiduals) else model
    if fit is None:
        raise ValueError("test_pearson_dispersion needs a fitted model: these residuals came from "
                         "simulations without one")
    _simulation_pvalue(np.zeros(1), 0.0, alternative)   # checks the alternative
    chisq, df = pearson_chisq(fit), int(fit.df_resid)
    seed = np.random.SeedSequence(seed).entropy
    details = {"chisq": chisq, "df": df, "seed": seed}
    if not n_boot:
        tail = {"greater": stats.chi2.sf(chisq, df), "less": stats.chi2.cdf(chisq, df)}
        pvalue = tail.get(alternative, min(1.0, 2 * min(stats.chi2.sf(chisq, df), stats.chi2.cdf(chisq, df))))
        how = f", against chi-squared with {df} df"
    else:
        null = bootstrap_pearson_chisq(fit, n_boot, seed, n_jobs)
        _warn_failed_refits(int(np.sum(~np.isfinite(null))), len(null), stacklevel=2)
        pvalue = _bootstrap_pvalue(null, chisq, alternative)
        how = f"; p-value from a parametric bootstrap with {np.isfinite(null).sum()} refits"
        details["null_chisq"] = null
    return TestResult("Dispersion test", "Pearson's chi-squared, residuals given the fitted random effects" + how,
                      chisq / df, "dispersion", float(pvalue), alternative, details)


# ---- residuals against a predictor ------------------------------------------------------------------
def rank_transform(x) -> np.ndarray:
    """:math:`\\mathrm{rank}(x_i) / N` (average ranks for ties), values in (0, 1]."""
    x = np.asarray(x, float)
    return stats.rankdata(x) / len(x)


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's ``p.adjust(p, "BH")``); NaN stays NaN."""
    p = np.asarray(p, float)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if len(finite):
        order = finite[np.argsort(p[finite])[::-1]]
        m = len(finite)
        ranks = np.arange(m, 0, -1)
        adjusted[order] = np.minimum(1, np.minimum.accumulate(p[order] * m / ranks))
    return adjusted


def quantile_basis(x: np.ndarray, df: int = 3) -> np.ndarray:
    """Columns [1, natural cubic spline of x with ``df`` centred columns] (formulaic's ``cr``).

    With few distinct values of x the basis shrinks: ``df`` at most (distinct values - 3); a
    straight line :math:`[1, x - \\bar x]` when that leaves fewer than 2; the intercept alone for a
    constant x.
    """
    distinct = len(np.unique(x))
    df = min(df, distinct - 3)
    if distinct < 2:
        return np.ones((len(x), 1))
    if df < 2:
        return np.column_stack([np.ones(len(x)), x - x.mean()])
    from formulaic.transforms import natural_cubic_spline
    columns = natural_cubic_spline(x, df=df, constraints="center", _state={})
    return np.column_stack([np.ones(len(x)), *columns.values()])


def _quantile_fit(r: np.ndarray, B: np.ndarray, q: float):
    """Quantile regression of :math:`r - q` on B; Wald test that all coefficients are 0."""
    from statsmodels.regression.quantile_regression import QuantReg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # iteration-limit and small-sample warnings of QuantReg
        result = QuantReg(r - q, B).fit(q=q)
    gamma, V = result.params, result.cov_params()
    try:
        wald = float(gamma @ np.linalg.solve(V, gamma))
    except np.linalg.LinAlgError:
        return B @ gamma + q, np.nan
    return B @ gamma + q, float(stats.chi2.sf(wald, df=len(gamma)))


def test_quantiles(res: ScaledResiduals, predictor=None, quantiles=QUANTILES, df: int = 3) -> TestResult:
    """Do the residuals' quantiles stay flat at 0.25, 0.5, 0.75 along a predictor?

    For each quantile *q*, a quantile regression (statsmodels ``QuantReg``) of :math:`r_i - q` on a
    smooth basis :math:`B(x_i) = [1, \\mathrm{cr}(x_i)]` (natural cubic spline, ``df`` centred
    columns) of the rank-transformed predictor :math:`x_i = \\mathrm{rank}/N`:

    .. math:: Q_q(r \\mid x) - q = B(x)\\gamma_q .

    If the model is right, the *q*-quantile of the residuals is *q* everywhere, i.e.
    :math:`\\gamma_q = 0`. The test is the Wald statistic :math:`\\hat\\gamma_q^\\top \\hat V^{-1}
    \\hat\\gamma_q \\sim \\chi^2_{\\dim\\gamma}` with QuantReg's sandwich covariance :math:`\\hat V`: a
    direct test of the whole curve against the horizontal line (DHARMa's ``testQuantiles`` fits a
    penalised spline with qgam and combines the tests of its intercept and smooth term). The
    p-values of the quantiles are Benjamini-Hochberg adjusted; the combined p-value is their minimum.

    Parameters
    ----------
    predictor : array (N,), optional
        Default: the model's predictions ``res.fitted``.

    Returns
    -------
    TestResult
        ``details``: ``quantiles``, ``pvalues`` (adjusted, one per quantile), ``x`` (the sorted
        rank-transformed predictor) and ``curves`` (the fitted quantile curves along ``x``).
    """
    x = rank_transform(res.fitted if predictor is None else predictor)
    order = np.argsort(x, kind="stable")
    x, r = x[order], res.scaled[order]
    B = quantile_basis(x, df)
    curves, pvalues = zip(*(_quantile_fit(r, B, q) for q in quantiles))
    adjusted = benjamini_hochberg(pvalues)
    combined = float(np.nanmin(adjusted)) if np.isfinite(adjusted).any() else np.nan
    return TestResult("Quantile test", f"quantile regression (natural spline, Wald test) at "
                      f"{', '.join(map(str, quantiles))}", None, "", combined,
                      "a quantile of the residuals changes along the predictor",
                      {"quantiles": tuple(quantiles), "pvalues": adjusted, "x": x, "curves": np.array(curves)})


def test_categorical(res: ScaledResiduals, predictor) -> TestResult:
    """Residuals by the levels of a categorical predictor (DHARMa's ``testCategorical``).

    Within each level a Kolmogorov-Smirnov test of uniformity (p-values Benjamini-Hochberg adjusted,
    in ``details["pvalues"]``), and across levels Levene's test that the residuals' variances are
    equal (the reported p-value).
    """
    levels, codes = _levels_and_codes(predictor, len(res))
    groups = [res.scaled[codes == k] for k in range(len(levels))]
    ks = benjamini_hochberg([stats.kstest(g, "uniform").pvalue if len(g) else np.nan for g in groups])
    sized = [g for g in groups if len(g) > 1]
    levene = stats.levene(*sized) if len(sized) > 1 else None
    return TestResult("Categorical test", "Levene's test of equal variance across levels "
                      "(and a KS test within each level)",
                      None if levene is None else float(levene.statistic), "F",
                      np.nan if levene is None else float(levene.pvalue),
                      "the residuals' variances differ between levels",
                      {"levels": levels, "pvalues": ks})


def _levels_and_codes(predictor, n: int):
    values = pd.Series(np.asarray(predictor) if not isinstance(predictor, pd.Series) else predictor.to_numpy())
    if len(values) != n:
        raise ValueError(f"the predictor must give one value per residual ({n}); got {len(values)}")
    categorical = pd.Categorical(values)
    return list(categorical.categories), categorical.codes


def is_categorical(predictor, few: int = 10) -> bool:
    """Whether residuals against ``predictor`` are best shown as boxplots per level.

    True for a pandas categorical, text or boolean predictor, and (as DHARMa's ``plotResiduals``)
    for a numeric one with fewer than ``few`` distinct values and more than three observations per
    value.
    """
    values = predictor if isinstance(predictor, pd.Series) else pd.Series(np.asarray(predictor))
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values) \
            or pd.api.types.is_bool_dtype(values):
        return True
    distinct = values.nunique()
    return distinct < few and len(values) > 3 * distinct


for _function in (test_uniformity, test_dispersion, test_outliers, test_zero_inflation, test_pearson_dispersion,
                  test_quantiles, test_categorical):
    _function.__test__ = False   # library functions, not pytest tests
