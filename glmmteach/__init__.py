"""glmmteach: a small, readable generalized linear mixed model library.

    import glmmteach as gt
    fit = gt.glmm("cbind(germ, n - germ) ~ gen * extract + (1 | plate)",
                  data=gt.datasets.load("crowder_seeds"), family="binomial", reml=True)
    print(fit.summary())
"""
from . import datasets, families, fit, links
from .fit import glmm

__version__ = "0.1.0"
__all__ = ["datasets", "families", "fit", "glmm", "links"]
