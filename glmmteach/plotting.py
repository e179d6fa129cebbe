"""Pictures for the diagnostics lessons (matplotlib); the core never imports this module.

* :func:`plot_scaled_residuals` (``res.plot()``): DHARMa's two panels, a QQ plot of the scaled
  residuals against the uniform with three tests written in it, and the residuals against the
  rank-transformed predictions with quantile-regression curves at 0.25, 0.5 and 0.75 (boxplots per
  level for a categorical predictor). Significant results are drawn in red, as DHARMa does.
* :func:`plot_qq_uniform` and :func:`plot_residuals`: the two panels on their own.
* :func:`plot_observed_vs_simulated`: observed responses (gold) over responses simulated from the
  fitted model (open circles), along a variable such as the day of measurement.
* :func:`plot_raw_residuals`: conventional raw residuals against fitted values.

Every function returns the matplotlib ``Figure`` (pass ``ax=`` to draw into an existing one).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .diagnostics import (QUANTILES, ScaledResiduals, is_categorical, rank_transform, test_categorical,
                          test_dispersion, test_outliers, test_quantiles, test_uniformity)

SIGNIFICANT = "red"
ALPHA = 0.05

#: The widest figure, in inches: the book's text column at a desktop width (780 px at 96 px per inch), so
#: that no figure is shrunk there and its text shows at the size it was set in.
BOOK_WIDTH = 8.0
#: Text sizes in points: the smallest (tick labels, legends, the test results in a residual plot) is 9 pt.
BOOK_FONTS = {"font.size": 10, "axes.labelsize": 10, "axes.titlesize": 11, "figure.titlesize": 12,
              "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 10}


def book_style(sharp: bool = True) -> None:
    """The look of the book's figures, set once by the first cell of every lesson.

    seaborn's ``whitegrid`` theme with the text sizes of :data:`BOOK_FONTS`, 96 dots per inch (so that a
    figure :data:`BOOK_WIDTH` inches wide fills the text column), and, in a notebook, figures stored as PNG
    at twice that resolution and shown at half their pixel size: sharp on high-density screens and when
    zoomed. (SVG would be sharper still, but a scatter plot of the 2000 salmon weighings is megabytes of it.)
    ``sharp=False`` keeps the notebook's usual PNG figures.
    """
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", rc={**BOOK_FONTS, "figure.dpi": 96})
    if sharp:
        try:
            from matplotlib_inline.backend_inline import set_matplotlib_formats
        except ImportError:   # not in IPython: nothing to set
            return
        set_matplotlib_formats("retina")


def _axes(ax, figsize=(5.5, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _p_text(pvalue: float, n_sim: int) -> str:
    """``p = 0.0123``; a simulation-based p-value of 0 is only below the resolution 1/n of n simulations:
    ``p < 0.004`` for 250 (DHARMa prints ``p = 0``)."""
    return f"p < {1 / n_sim:.2g}" if pvalue == 0 else f"p = {pvalue:.3g}"


def _colour(pvalue: float) -> str:
    return SIGNIFICANT if np.isfinite(pvalue) and pvalue < ALPHA else "black"


def plot_scaled_residuals(res: ScaledResiduals, form=None, quantiles=QUANTILES, n_boot: int = 0,
                          n_jobs: int = 1):
    """DHARMa's residual plot: QQ-uniform panel (left), residuals against a predictor (right).

    Parameters
    ----------
    res : ScaledResiduals
    form : array (N,), optional
        The predictor of the right panel; default the model's predictions. A categorical (or text,
        or boolean) predictor gives boxplots per level.
    quantiles : tuple of float
    n_boot : int
        If above 0, the left panel's p-values come from a parametric bootstrap with this many refits
        (see :func:`glmmteach.diagnostics.bootstrap_statistics`).
    n_jobs : int
        Processes for those refits (-1: every core); the p-values do not depend on it.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: ``fig.axes[0]`` the QQ plot, ``fig.axes[1]`` the residual plot.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(BOOK_WIDTH, 4.4))
    plot_qq_uniform(res, ax=left, n_boot=n_boot, n_jobs=n_jobs)
    plot_residuals(res, form, ax=right, quantiles=quantiles)
    fig.suptitle("Simulation-based (DHARMa) residual diagnostics")
    fig.tight_layout()
    return fig


def plot_qq_uniform(res: ScaledResiduals, ax=None, n_boot: int = 0, n_jobs: int = 1):
    """QQ plot of the scaled residuals against Uniform(0, 1), with three tests written in the panel.

    Sorted residuals :math:`r_{(i)}` against the uniform quantiles :math:`(i - 1/2)/N`; a correct
    model puts them on the diagonal. The panel states the p-values of :func:`test_uniformity` (KS),
    :func:`test_dispersion` and :func:`test_outliers`; significant ones (p < 0.05) in red. With
    ``n_boot`` above 0 the p-values are calibrated by a parametric bootstrap with that many refits.
    """
    fig, ax = _axes(ax)
    N = len(res)
    expected = (np.arange(1, N + 1) - 0.5) / N
    ax.scatter(expected, np.sort(res.scaled), s=14, marker="^", facecolors="none", edgecolors="black",
               linewidths=0.8)
    ax.plot([0, 1], [0, 1], color=SIGNIFICANT, linewidth=1, gid="diagonal")
    tests = [("KS test", test_uniformity(res, n_boot=n_boot, n_jobs=n_jobs)),
             ("Dispersion test", test_dispersion(res, n_boot=n_boot, n_jobs=n_jobs)),
             ("Outlier test", test_outliers(res, n_boot=n_boot, n_jobs=n_jobs))]
    for k, (label, test) in enumerate(tests):
        verdict = "significant" if test.pvalue < ALPHA else "n.s."
        ax.text(0.03, 0.97 - 0.13 * k, f"{label}: {_p_text(test.pvalue, res.n_sim)}\nDeviation {verdict}",
                transform=ax.transAxes, va="top", ha="left", fontsize=9, color=_colour(test.pvalue),
                gid=label)
    title = "QQ plot of the scaled residuals" + (f"\n(p-values: parametric bootstrap, {n_boot} refits)"
                                                 if n_boot else "")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Expected (uniform quantiles)", ylabel="Observed (scaled residuals)",
           title=title)
    return fig


def plot_residuals(res: ScaledResiduals, predictor=None, ax=None, quantiles=QUANTILES, name=None):
    """Scaled residuals against a predictor: scatter with quantile curves, or boxplots per level.

    Numeric predictor (default: the model's predictions ``res.fitted``), rank-transformed to
    :math:`\\mathrm{rank}/N` so that the points spread evenly: the quantile-regression curves of
    :func:`test_quantiles` at ``quantiles`` (red when that quantile deviates, BH-adjusted
    p < 0.05), dashed reference lines at the same heights, and outliers (residual 0 or 1) as red
    stars. Categorical predictor, or a numeric one with few distinct values (as DHARMa, see
    :func:`~glmmteach.diagnostics.is_categorical`): a boxplot per level, red when
    :func:`test_categorical`'s KS test within the level is significant.
    """
    values = res.fitted if predictor is None else predictor
    label = "Model predictions" if predictor is None else (name or _name_of(predictor, "Predictor"))
    if is_categorical(values):
        return _plot_residuals_by_level(res, values, ax, quantiles, label)
    fig, ax = _axes(ax)
    x = rank_transform(values)
    outlier = (res.scaled == 0) | (res.scaled == 1)
    ax.scatter(x[~outlier], res.scaled[~outlier], s=14, facecolors="none", edgecolors="black", linewidths=0.8)
    ax.scatter(x[outlier], res.scaled[outlier], s=60, marker="*", color=SIGNIFICANT)
    _reference_lines(ax, quantiles)
    test = test_quantiles(res, values, quantiles)
    curves, pvalues = test.details["curves"], test.details["pvalues"]
    for q, curve, p in zip(quantiles, curves, pvalues):
        ax.plot(test.details["x"], curve, color=_colour(p), linewidth=2, gid=f"quantile {q}")
    deviating = bool(np.any(pvalues < ALPHA))
    title = ("Quantile deviations detected (red curves)\nCombined adjusted quantile test significant"
             if deviating else "Residuals against predicted\nNo significant problems detected")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"{label} (rank transformed)", ylabel="Scaled residual")
    ax.set_title(title, color=SIGNIFICANT if deviating else "black")
    return fig


def _reference_lines(ax, quantiles) -> None:
    for q in quantiles:
        ax.axhline(q, color="grey", linestyle="--", linewidth=1, gid=f"reference {q}")


def _name_of(values, default: str) -> str:
    return str(values.name) if isinstance(values, pd.Series) and values.name is not None else default


def _plot_residuals_by_level(res: ScaledResiduals, predictor, ax, quantiles, label):
    fig, ax = _axes(ax)
    test = test_categorical(res, predictor)
    levels = [f"{v:.3g}" if isinstance(v, (float, np.floating)) else str(v) for v in test.details["levels"]]
    codes = pd.Categorical(np.asarray(predictor)).codes
    boxes = ax.boxplot([res.scaled[codes == k] for k in range(len(levels))], patch_artist=True,
                       medianprops={"color": "black"})
    for box, p in zip(boxes["boxes"], test.details["pvalues"]):
        box.set(facecolor="tomato" if p < ALPHA else "lightgrey", edgecolor="black")
    ax.set_xticks(range(1, len(levels) + 1), levels)
    _reference_lines(ax, quantiles)
    within = "significant (red)" if np.any(test.details["pvalues"] < ALPHA) else "n.s."
    levene = "significant" if test.pvalue < ALPHA else "n.s."
    ax.set(ylim=(0, 1), xlabel=label, ylabel="Scaled residual")
    ax.set_title(f"Within-level deviations from uniformity {within}\n"
                 f"Levene test for equal variances {levene}",
                 color=SIGNIFICANT if within != "n.s." or levene != "n.s." else "black")
    return fig


def plot_observed_vs_simulated(data: pd.DataFrame, x: str, observed, simulated, ax=None, title=None,
                               xlabel=None, ylabel=None):
    """Observed responses (gold) over responses simulated from the fitted model (open circles).

    If the model is right, the gold points look like one more draw of the open circles: same centre,
    same spread, same shape at every value of ``x``.

    Parameters
    ----------
    data : pandas.DataFrame
    x : str
        Column for the horizontal axis (e.g. ``"day"``); numeric or categorical.
    observed : str or array (N,)
        Column name, or the observed values.
    simulated : DataFrame, Series or array (N,) or (N, k)
        Simulated responses (``fit.simulate(1)``); every column is drawn. Transform them first if
        the model was fitted to a transformed response (``np.exp(fit.simulate(1))`` for ``log(y)``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _axes(ax, figsize=(7, 4.5))
    xs, ticks = _positions(data[x])
    y = np.asarray(data[observed] if isinstance(observed, str) else observed, float)
    sims = np.asarray(simulated, float).reshape(len(y), -1)
    ax.scatter(np.repeat(xs, sims.shape[1]), sims.ravel(), s=110, facecolors="none", edgecolors="black",
               linewidths=0.8, label="simulated from the fitted model")
    ax.scatter(xs, y, s=30, facecolors="gold", edgecolors="black", linewidths=0.6, zorder=3, label="observed")
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks)
    ylabel = ylabel or (observed if isinstance(observed, str) else "Response")
    ax.set(xlabel=xlabel or x, ylabel=ylabel,
           title=title or f"Observed {ylabel} (gold) and simulated from the fitted model (open)")
    ax.legend(loc="best", frameon=False)
    return fig


def _positions(column: pd.Series):
    """Numeric x as is; categorical or text x as 0, 1, 2, ... with its levels as tick labels."""
    if is_categorical(column, few=0):
        categorical = pd.Categorical(column)
        return categorical.codes.astype(float), [str(c) for c in categorical.categories]
    return np.asarray(column, float), None


def plot_raw_residuals(fitted, residuals, ax=None, xlabel="Fitted proportion",
                       ylabel="Raw residual (observed - fitted)", title="Raw residuals against fitted values"):
    """Conventional raw residuals :math:`y_i - \\hat y_i` against the fitted values, with a line at 0.

    For a binomial GLMM with few observations, this plot shows little: its spread depends on the
    number of trials and on the fitted proportion, so no pattern can be judged by eye. The scaled
    residuals of :func:`plot_scaled_residuals` have the same distribution everywhere.
    """
    fig, ax = _axes(ax)
    ax.scatter(np.asarray(fitted, float), np.asarray(residuals, float), s=20, facecolors="none",
               edgecolors="black")
    ax.axhline(0, color="grey", linestyle="--", linewidth=1, gid="zero")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    return fig


def plot_emmeans(emm, ax=None):
    """Estimated marginal means (``emm.plot()``): each estimate as a point with its confidence interval
    as a bar, the means of one ``by`` group in one panel (as emmeans' ``plot()``), on the scale of
    ``emm`` (``type="response"``: back-transformed).

    Returns
    -------
    matplotlib.figure.Figure
    """
    table, name = emm.table, emm.estimate_name
    groups = emm.by_groups()
    if ax is not None and len(groups) > 1:
        raise ValueError(f"these means have {len(groups)} 'by' groups, one panel each; call plot() "
                         "without ax= (or make the means without by=)")
    if ax is None:
        fig, axes = plt.subplots(len(groups), 1, figsize=(6, 0.45 * len(table) + 1.0 * len(groups) + 0.6),
                                 squeeze=False)
        axes = axes[:, 0]
    else:
        fig, axes = ax.figure, [ax]
    labels = np.array([" ".join(str(table.loc[i, s]) for s in emm.specs) for i in range(len(table))])
    for panel, rows in zip(axes, groups):
        y = np.arange(len(rows))[::-1]
        sub = table.iloc[rows]
        panel.errorbar(sub[name], y, xerr=[sub[name] - sub["lower.CL"], sub["upper.CL"] - sub[name]],
                       fmt="o", color="black", ecolor="steelblue", elinewidth=4, capsize=0)
        panel.set_yticks(y, labels[rows])
        panel.set_ylim(-0.7, len(rows) - 0.3)
        panel.set_ylabel(" ".join(emm.specs))
        if emm.by:
            panel.set_title(", ".join(f"{b} = {sub.iloc[0][b]}" for b in emm.by), fontsize=10)
    axes[-1].set_xlabel(f"{name} ({emm.level:.0%} confidence interval)")
    fig.tight_layout()
    return fig
