"""A toy family: the exponential distribution, y > 0 with mean mu."""
from dataclasses import dataclass

import numpy as np

from glmmteach import families


@dataclass(frozen=True)
class Exponential(families.Family):
    """log f(y) = -log(mu) - y/mu, E y = mu, Var y = mu^2 (a Gamma with shape 1)."""

    name, support, variance_text = "exponential", "y > 0", "mu^2"
    default_link, allowed_links = "log", ("log", "inverse", "identity")
    has_phi, sigma_meaning = False, "none (sigma = 1)"   # no dispersion parameter

    def loglik(self, y, mu, phi=1.0, n=1):
        return -np.log(mu) - y / mu

    def dloglik_dmu(self, y, mu, phi=1.0, n=1):
        return (y - mu) / mu**2

    def d2loglik_dmu2(self, y, mu, phi=1.0, n=1):
        return (mu - 2 * y) / mu**3

    def var_y(self, mu, phi=1.0, n=1):
        return mu**2

    variance = var_y          # R's variance function V(mu): the same here

    def simulate(self, mu, phi, rng, n=1):
        return np.random.default_rng(rng).exponential(mu)

    def start_mu(self, y, n=1):
        return np.asarray(y, float).copy()

    def _support_rules(self, y, n, name):
        return [(y <= 0, "must be > 0", "")]
