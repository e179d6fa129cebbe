"""A toy covariance structure: independent effects with one common SD."""
from dataclasses import dataclass

import numpy as np

from glmmteach import covstruct


@dataclass(frozen=True)
class Homogeneous(covstruct.Structure):
    """hom(1 + x | g): Sigma = s^2 I with s = exp(theta), one theta for k columns.
    T = exp(theta) I is not linear in theta: dT/dtheta changes with theta."""

    name, linear = "hom", False

    n_theta = property(lambda self: 1)
    #: the entries of T that may be non-zero: its diagonal
    pattern = property(lambda self: (np.arange(self.k), np.arange(self.k)))

    def template(self, theta):
        return np.exp(theta[0]) * np.eye(self.k)

    def dtemplate(self, theta):
        return self.template(theta)[None]          # shape (n_theta, k, k)

    def theta_names(self, group):
        return [f"{group}: log sd"]

    def lower_bounds(self):
        return np.array([-np.inf])                  # log s has no bound

    def start(self, sd):
        return np.array([np.log(np.mean(sd))])


covstruct.STRUCTURES["hom"] = Homogeneous   # formulas may now say hom(1 + x | g)
