"""Tests of glmmteach.plotting: the figures are inspected (axes, lines, texts, colours), not just drawn."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import glmmteach as gt  # noqa: E402
from glmmteach.diagnostics import (ScaledResiduals, simulate_residuals, test_dispersion, test_outliers,  # noqa: E402
                                   test_uniformity)
from glmmteach.plotting import (plot_observed_vs_simulated, plot_qq_uniform, plot_raw_residuals,  # noqa: E402
                                plot_residuals, plot_scaled_residuals)

RED = to_rgba("red")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def seeds():
    return gt.datasets.load("crowder_seeds")


@pytest.fixture(scope="module")
def poisson_residuals():
    """A correct Poisson GLMM with a numeric covariate, so the predictions take many values."""
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(10), 20)
    x = rng.normal(size=200)
    data = pd.DataFrame({"x": x, "g": g.astype(str),
                         "y": rng.poisson(np.exp(0.5 + 0.5 * x + rng.normal(0, 0.4, 10)[g]))})
    return simulate_residuals(gt.glmm("y ~ x + (1 | g)", data, family="poisson"), n=250, seed=1)


def lines_by_gid(ax, prefix):
    return {line.get_gid(): line for line in ax.lines if (line.get_gid() or "").startswith(prefix)}


def assert_labelled(ax):
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_residual_plot_has_two_panels_with_the_tests_and_the_quantile_lines(poisson_residuals):
    fig = poisson_residuals.plot()
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    qq, right = fig.axes
    for ax in fig.axes:
        assert_labelled(ax)
    texts = " ".join(t.get_text() for t in qq.texts)
    for name in ("KS test: p = ", "Dispersion test: p = ", "Outlier test: p = "):
        assert name in texts
    quantiles = lines_by_gid(right, "quantile")
    references = lines_by_gid(right, "reference")
    assert sorted(quantiles) == ["quantile 0.25", "quantile 0.5", "quantile 0.75"]
    assert sorted(references) == ["reference 0.25", "reference 0.5", "reference 0.75"]
    for q in (0.25, 0.5, 0.75):
        assert references[f"reference {q}"].get_linestyle() == "--"
        assert np.allclose(references[f"reference {q}"].get_ydata(), q)
        curve = quantiles[f"quantile {q}"].get_ydata()
        assert len(curve) == len(poisson_residuals) and np.all(np.abs(curve - q) < 0.2)
    x = quantiles["quantile 0.5"].get_xdata()
    assert np.all(np.diff(x) >= 0) and 0 < x[0] and x[-1] == 1          # rank / N
    assert "rank transformed" in right.get_xlabel()


def test_qq_panel_with_bootstrap_pvalues_says_so(seeds):
    """n_boot: the panel's p-values are the bootstrap ones of the tests, and the title says how many refits."""
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", seeds, family="binomial")
    res = simulate_residuals(fit, n=100, seed=2)
    qq = res.plot(n_boot=9).axes[0]
    assert "parametric bootstrap, 9 refits" in qq.get_title()
    texts = {t.get_gid(): t.get_text() for t in qq.texts}
    for label, test in (("KS test", test_uniformity), ("Dispersion test", test_dispersion),
                        ("Outlier test", test_outliers)):
        assert texts[label].startswith(f"{label}: p = {test(res, n_boot=9).pvalue:.3g}\n")


def test_a_correct_model_is_drawn_in_black(poisson_residuals):
    qq, right = poisson_residuals.plot().axes
    assert all(to_rgba(t.get_color()) != RED for t in qq.texts)
    assert all(to_rgba(line.get_color()) != RED for line in lines_by_gid(right, "quantile").values())
    assert "No significant problems detected" in right.get_title()


def test_significant_results_are_red():
    """Overdispersed observations (sd 3) against N(0, 1) simulations: KS and dispersion red, and
    the outer quantile curves bend away from 0.25 and 0.75 and are red."""
    rng = np.random.default_rng(2)
    x = np.linspace(0, 1, 300)
    res = ScaledResiduals.from_simulations(rng.normal(0, 0.3 + 3 * x), rng.normal(size=(300, 100)), fitted=x)
    qq, right = plot_scaled_residuals(res).axes
    colours = {t.get_gid(): to_rgba(t.get_color()) for t in qq.texts}
    assert colours["KS test"] == RED and colours["Dispersion test"] == RED
    assert "significant" in [t.get_text() for t in qq.texts if t.get_gid() == "KS test"][0]
    quantiles = lines_by_gid(right, "quantile")
    assert to_rgba(quantiles["quantile 0.25"].get_color()) == RED
    assert to_rgba(quantiles["quantile 0.75"].get_color()) == RED
    assert "Quantile deviations detected" in right.get_title()
    # No simulation is as spread as the data: the simulated p-value is 0, below the resolution 1/100.
    assert test_dispersion(res).pvalue == 0
    dispersion = [t.get_text() for t in qq.texts if t.get_gid() == "Dispersion test"][0]
    assert dispersion.startswith("Dispersion test: p < 0.01\n")


def test_categorical_predictor_gives_boxplots_per_level(seeds):
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", data=seeds, family="binomial",
                  reml=True)
    res = simulate_residuals(fit, n=250, seed=123)
    fig = res.plot(form=seeds["extract"])
    qq, right = fig.axes
    assert [t.get_text() for t in right.get_xticklabels()] == ["bean", "cucumber"]
    assert len(right.patches) == 2                                        # one box per level
    assert sorted(lines_by_gid(right, "reference")) == ["reference 0.25", "reference 0.5", "reference 0.75"]
    assert not lines_by_gid(right, "quantile")
    assert right.get_xlabel() == "extract" and "Levene" in right.get_title()
    # the default predictor has 4 distinct population-level values for 21 plates: boxplots, as DHARMa
    default = res.plot().axes[1]
    assert len(default.patches) == 4 and default.get_xlabel() == "Model predictions"


def test_panels_draw_into_given_axes(poisson_residuals):
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_qq_uniform(poisson_residuals, ax=a) is fig
    assert plot_residuals(poisson_residuals, np.arange(len(poisson_residuals)), ax=b, name="row") is fig
    assert b.get_xlabel() == "row (rank transformed)"
    assert len(lines_by_gid(b, "quantile")) == 3


def test_observed_against_simulated_draws_gold_points_over_open_circles():
    fish = gt.datasets.load("fish_vaccines").dropna(subset=["wt"])
    fit = gt.glmm("wt ~ day * vaccine", fish, family=gt.families.Gamma(link="log"))
    simulated = fit.simulate(1, seed=1)
    fig = plot_observed_vs_simulated(fish, "day", "wt", simulated, ylabel="Weight (g)")
    (ax,) = fig.axes
    assert_labelled(ax)
    assert ax.get_xlabel() == "day" and ax.get_ylabel() == "Weight (g)"
    simulated_points, observed_points = ax.collections
    assert np.allclose(observed_points.get_offsets()[:, 1], fish["wt"])
    assert np.allclose(simulated_points.get_offsets()[:, 1], simulated["sim_1"])
    assert np.allclose(observed_points.get_facecolor()[0], to_rgba("gold"))
    assert len(simulated_points.get_facecolor()) == 0                    # open circles
    assert np.allclose(observed_points.get_offsets()[:, 0], fish["day"])  # numeric x stays numeric


def test_raw_residuals_plot(seeds):
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", data=seeds, family="binomial",
                  reml=True)
    phat = fit.predict(type="response")
    residual = seeds["germ"] - phat * seeds["n"]
    fig = plot_raw_residuals(phat, residual)
    (ax,) = fig.axes
    assert_labelled(ax)
    assert ax.get_xlabel() == "Fitted proportion"
    assert np.allclose(ax.collections[0].get_offsets(), np.column_stack([phat, residual]))
    assert np.allclose(lines_by_gid(ax, "zero")["zero"].get_ydata(), 0)
