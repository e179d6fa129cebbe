"""glmmteach: a small, readable generalized linear mixed model library.

    import glmmteach as gt
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)",
                  data=gt.datasets.load("crowder_seeds"), family="binomial", reml=True)
    print(fit.summary())
    res = gt.simulate_residuals(fit, n=250, seed=123)

``glmmteach.plotting`` (matplotlib) is imported on first use, so ``import glmmteach`` stays light.
"""
import importlib

from . import adjust, comparison, confint, datasets, diagnostics, families, fit, inference, links, parallel
from .diagnostics import (ScaledResiduals, bootstrap_statistics, scaled_residuals, simulate_residuals,
                          test_categorical, test_dispersion, test_outliers, test_pearson_dispersion,
                          test_quantiles, test_uniformity, test_zero_inflation)
from .comparison import AIC, anova, bootstrap_lrt
from .fit import ConvergenceWarning, glmm
from .inference import contrast, emmeans, joint_tests
from .parallel import replicate

__version__ = "0.1.0"
__all__ = ["AIC", "ConvergenceWarning", "ScaledResiduals", "adjust", "anova", "bootstrap_lrt", "bootstrap_statistics",
           "comparison", "confint", "contrast", "datasets", "diagnostics", "emmeans", "families", "fit", "glmm",
           "inference", "joint_tests", "links", "parallel", "plotting", "replicate", "scaled_residuals",
           "simulate_residuals", "test_categorical", "test_dispersion", "test_outliers", "test_pearson_dispersion",
           "test_quantiles", "test_uniformity", "test_zero_inflation"]


def _drawing(name: str):
    """A picture of glmmteach.plotting, loaded when first drawn: the core imports no plotting, so the package
    hands ``res.plot()`` and ``emm.plot()`` their drawings."""
    def draw(*args, **options):
        return getattr(importlib.import_module(".plotting", __name__), name)(*args, **options)
    return staticmethod(draw)


ScaledResiduals.painter = _drawing("plot_scaled_residuals")
inference.EmmGrid.painter = _drawing("plot_emmeans")


def __getattr__(name):
    if name == "plotting":
        return importlib.import_module(".plotting", __name__)
    raise AttributeError(f"module 'glmmteach' has no attribute {name!r}")
