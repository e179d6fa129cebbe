"""The fitted model: estimates, their covariance, predictions, residuals, simulation and the summary.

Names follow R: ``fixef``, ``ranef``, ``varcorr``, ``sigma``, ``loglik``, ``aic``, ``bic``,
``predict``, ``residuals``, ``simulate``, ``summary()`` (laid out like glmmTMB's).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit

from . import zeroinfl
from .design import Design, group_codes, label_text
from .laplace import LaplaceResult
from .rformat import character_matrix, coefficient_lines, r_format


@dataclass
class GlmmFit:
    """A fitted GLMM, as :func:`glmmteach.glmm` returns it (R: the ``glmmTMB`` or ``glmerMod`` object).

    The names follow R's extractor functions: ``fit.fixef`` is ``fixef(fit)``, ``fit.summary()`` is
    ``summary(fit)``, and so on; each entry below names its R counterpart.
    """

    #: The model's matrices ``y``, ``X``, ``Z``, offset and weights, and the map from theta to Lambda
    #: (:class:`glmmteach.design.Design`).
    #:
    #: R: ``getME(fit, "X")``, ``getME(fit, "Z")`` (lme4).
    design: Design
    #: The outer objective, -log L(psi), with its parameter layout (``glmmteach.fit.Objective``).
    #:
    #: R: ``fit$obj`` (glmmTMB's TMB object).
    objective: object
    #: All the parameters of the outer optimisation in one vector (beta unless REML, theta, the
    #: dispersion on its log scale).
    #:
    #: R: ``fit$fit$par`` (glmmTMB).
    psi: np.ndarray
    #: The Laplace step at the estimates, with the conditional modes b, the log-likelihood and the
    #: Cholesky factor (:class:`glmmteach.laplace.LaplaceResult`).
    #:
    #: R: no extractor (glmmTMB keeps it inside ``fit$obj``).
    optimum: LaplaceResult
    #: The fixed effects as an array, in the order of ``design.x_names``; ``fixef`` labels them.
    #:
    #: R: ``unname(fixef(fit)$cond)``.
    beta: np.ndarray
    #: The covariance parameters, term by term, the lower triangle of T with Sigma = T T' (on the scale of
    #: the random effects; lme4's theta is this over sigma in Gaussian models).
    #:
    #: R: ``getME(fit, "theta")`` (lme4).
    theta: np.ndarray
    #: The dispersion parameter phi of the family, one value per observation (all equal without a dispersion
    #: model; then ``sigma`` is that value).
    #:
    #: R: ``sigma(fit)``.
    phi: np.ndarray
    #: The covariance matrix of the fixed effects as an array, or None when it was not computed
    #: (``refit(..., standard_errors=False)``); ``vcov`` labels it.
    #:
    #: R: ``unname(vcov(fit)$cond)``.
    cov_beta: np.ndarray | None
    #: Whether the optimiser reported convergence.
    #:
    #: R: ``fit$fit$convergence == 0`` (glmmTMB).
    converged: bool
    #: The optimiser's closing message.
    #:
    #: R: ``fit$fit$message`` (glmmTMB).
    message: str
    #: The rows of the user's data that the fit used (after dropping missing values), or None.
    #:
    #: R: ``model.frame(fit)``.
    data: pd.DataFrame | None = None
    #: (evaluation, psi, -log L) for every evaluation of the objective; ``optimizer_log()`` tabulates it.
    #:
    #: R: no counterpart (glmmTMB prints the optimiser's trace instead of keeping it).
    log: list = field(default_factory=list, repr=False)
    #: The zero-inflation coefficients as an array, in the order of ``design.zi_names`` (empty without a
    #: ``ziformula``); ``fixef_zi`` labels them.
    #:
    #: R: ``unname(fixef(fit)$zi)`` (glmmTMB).
    beta_zi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: The covariance matrix of the zero-inflation coefficients (None when not computed).
    #:
    #: R: ``unname(vcov(fit)$zi)`` (glmmTMB).
    cov_zi: np.ndarray | None = None
    #: The covariance matrix of the dispersion coefficients (the ``disp`` block of psi), or None when it
    #: was not computed; ``se_disp`` takes its diagonal.
    #:
    #: R: ``vcov(fit)$disp`` (glmmTMB, with a ``dispformula``).
    cov_disp: np.ndarray | None = field(default=None, repr=False)

    def singular_terms(self) -> list[str]:
        """Sentences about the random effects estimated at the boundary (an SD near 0, a correlation near
        +1 or -1, a residual dispersion held at its lower limit); empty for a regular fit. :func:`glmmteach.glmm` warns with each of them.

        R: glmmTMB's and lme4's singular-fit warnings, ``lme4::isSingular(fit)``."""
        out = []
        for term, Sigma in zip(self.design.terms, self.design.covariances(self.theta)):   # varcorr's SDs
            for name, variance in zip(term.names, np.diag(Sigma)):
                if np.sqrt(variance) < 1e-4 * max(1.0, self.family.eta_scale(self.phi)):
                    out.append(f"singular fit: the standard deviation of '{name}' across '{term.group}' is "
                               "estimated as (nearly) zero, so this random effect is not supported by the data.")
        for group, corr in self.ranef_corr.items():
            values = corr.to_numpy()[np.tril_indices(len(corr), -1)]
            if np.any(np.abs(values) > 0.999):
                out.append(f"singular fit: a correlation between the random effects of '{group}' is "
                           "estimated at +1 or -1; the model is too complex for the data.")
        layout = self.objective.layout
        floor = layout.lower()[layout.where("disp")] if layout.has("disp") else np.zeros(0)
        if len(floor) and np.all(np.isfinite(floor)) and np.all(self.psi[layout.where("disp")] <= floor + 1e-6):
            out.append("singular fit: the residual dispersion (sigma) runs to 0: the random effects take up all "
                       "the variation (as when a term has an effect for every observation, such as "
                       "cs(day + 0 | fish) with one row per fish and day). The likelihood rises toward a limit as "
                       f"sigma -> 0; sigma is held at its lower limit {self.sigma:.3g} (1e-3 of sigma without random "
                       "effects) and the standard errors hold it fixed. A simpler structure, such as "
                       "ar1() or (1 | fish), leaves the residual its share.")
        return out

    # ---- estimates ----------------------------------------------------------------------------
    @property
    def family(self):
        """The response distribution and its link (:mod:`glmmteach.families`).

        R: ``family(fit)``."""
        return self.design.family

    @property
    def fixef(self) -> pd.Series:
        """The fixed effects :math:`\\hat\\beta`, labelled by the columns of X.

        R: ``fixef(fit)$cond`` (glmmTMB), ``fixef(fit)`` (lme4)."""
        return pd.Series(self.beta, index=self.design.x_names, name="Estimate")

    @property
    def fixef_disp(self) -> pd.Series:
        """The coefficients of the dispersion model (``dispformula``), on glmmTMB's scale.

        That is the log of glmmTMB's dispersion parameter: log sigma^2 for the gaussian, log shape for the Gamma,
        log sigma for the other families (see ``glmmteach.families.Family.disp_scale``). Empty without a
        dispersion formula.

        R: ``fixef(fit)$disp`` (glmmTMB)."""
        if self.design.disp_formula is None:
            return pd.Series([], dtype=float, name="Estimate")
        return pd.Series(self.psi[self.objective.layout.where("disp")], index=self.design.disp_names, name="Estimate")

    @property
    def se_disp(self) -> pd.Series:
        """Standard errors of the dispersion model's coefficients (``fixef_disp``); empty without one.

        R: ``sqrt(diag(vcov(fit)$disp))`` (glmmTMB)."""
        if self.design.disp_formula is None:
            return pd.Series([], dtype=float, name="Std. Error")
        if self.cov_disp is None:
            self._covariance()                   # says why there are none
        return pd.Series(np.sqrt(np.diag(self.cov_disp)), index=self.design.disp_names, name="Std. Error")

    @property
    def vcov(self) -> pd.DataFrame:
        """The covariance matrix of :math:`\\hat\\beta`, from the inverse Hessian of -log L at the optimum.

        R: ``vcov(fit)$cond`` (glmmTMB), ``vcov(fit)`` (lme4)."""
        return pd.DataFrame(self._covariance(), index=self.design.x_names, columns=self.design.x_names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects, the square roots of the diagonal of ``vcov``.

        R: ``sqrt(diag(vcov(fit)$cond))``, the "Std. Error" column of ``summary(fit)``."""
        return pd.Series(np.sqrt(np.diag(self._covariance())), index=self.design.x_names, name="Std. Error")

    def _covariance(self) -> np.ndarray:
        if self.cov_beta is None:
            raise ValueError("this fit has no standard errors: it was made by refit(y, standard_errors=False); "
                             "refit with standard_errors=True for them")
        return self.cov_beta

    @property
    def fixef_zi(self) -> pd.Series:
        """The zero-inflation coefficients :math:`\\hat\\beta_{zi}` (logit of the structural-zero probability),
        labelled by the columns of :math:`X_{zi}`; an empty Series without a ``ziformula``.

        R: ``fixef(fit)$zi`` (glmmTMB)."""
        return pd.Series(np.asarray(self.beta_zi, float), index=list(self.design.zi_names), name="Estimate",
                         dtype=float)

    @property
    def se_zi(self) -> pd.Series:
        """Standard errors of the zero-inflation coefficients (an empty Series without a ``ziformula``).

        R: ``sqrt(diag(vcov(fit)$zi))`` (glmmTMB), the "Std. Error" column of the summary's zero-inflation
        block."""
        if not self.design.zero_inflated:
            return pd.Series([], index=[], name="Std. Error", dtype=float)
        if self.cov_zi is None:
            self._covariance()            # says why there are none
        return pd.Series(np.sqrt(np.diag(self.cov_zi)), index=list(self.design.zi_names), name="Std. Error")

    @property
    def vcov_zi(self) -> pd.DataFrame:
        """The covariance matrix of the zero-inflation coefficients (empty without a ``ziformula``).

        R: ``vcov(fit)$zi`` (glmmTMB)."""
        names = list(self.design.zi_names)
        if names and self.cov_zi is None:
            self._covariance()
        return pd.DataFrame(self.cov_zi if names else np.zeros((0, 0)), index=names, columns=names)

    @property
    def sigma(self) -> float:
        """The dispersion parameter, that is the residual SD (Gaussian), the coefficient of variation
        (Gamma), the size k (negative binomial); 1 for binomial and Poisson. See the family's
        ``sigma_meaning``.

        R: ``sigma(fit)`` (glmmTMB and lme4)."""
        if np.ptp(self.phi) > 1e-12 * np.max(np.abs(self.phi)):
            raise ValueError("the dispersion differs between observations (a dispersion model): see fit.phi")
        return float(self.phi[0]) if len(self.phi) else 1.0

    @property
    def u(self) -> np.ndarray:
        """Conditional modes on the original scale, :math:`\\hat u = \\Lambda_\\theta \\hat b`, one array
        for all terms (``ranef`` splits it by group).

        R: ``getME(fit, "b")`` (lme4)."""
        if self.design.q == 0:
            return np.zeros(0)
        return self.design.Lambda(self.theta) @ self.optimum.b

    @property
    def varcorr(self) -> pd.DataFrame:
        """The random-effect variances and standard deviations, one row per group and term, with the
        columns ``group``, ``term``, ``variance``, ``sd`` (the correlations are in ``ranef_corr``).

        R: ``VarCorr(fit)`` (glmmTMB and lme4), ``as.data.frame(VarCorr(fit))`` (lme4)."""
        rows = []
        for term, Sigma in zip(self.design.terms, self.design.covariances(self.theta)):
            for j, name in enumerate(term.names):
                rows.append({"group": term.group, "term": name, "variance": Sigma[j, j],
                             "sd": np.sqrt(Sigma[j, j])})
        return pd.DataFrame(rows, columns=["group", "term", "variance", "sd"])

    @property
    def ranef_corr(self) -> dict:
        """Group -> the correlation matrix of its random effects (a DataFrame), for the terms with more
        than one effect per group, such as ``(1 + t | fish)``.

        R: ``attr(VarCorr(fit)$cond$fish, "correlation")`` (glmmTMB)."""
        out = {}
        for term, part in zip(self.design.terms, self.design.theta_slices()):
            if term.k > 1:
                corr = term.structure.correlation(self.theta[part])
                out[term.group] = pd.DataFrame(corr, index=term.names, columns=term.names)
        return out

    @property
    def ranef(self) -> dict:
        """Group -> the conditional modes :math:`\\hat u` of its random effects, a DataFrame with one row
        per level and one column per term.

        R: ``ranef(fit)$cond`` (glmmTMB), ``ranef(fit)`` (lme4)."""
        out, u = {}, self.u
        for term in self.design.terms:
            block = u[term.start:term.start + term.k * len(term.levels)].reshape(len(term.levels), term.k)
            out[term.group] = pd.DataFrame(block, index=term.levels, columns=term.names)
        return out

    # ---- likelihood-based summaries -----------------------------------------------------------
    @property
    def loglik(self) -> float:
        """The maximised log-likelihood (Laplace or AGQ approximation; the REML criterion when
        ``reml=True``).

        R: ``logLik(fit)``."""
        return float(self.optimum.loglik)

    @property
    def n_parameters(self) -> int:
        """The number of parameters AIC counts (fixed effects, theta, and the dispersion, also under REML).

        R: ``attr(logLik(fit), "df")``."""
        return len(self.beta) + self.design.n_theta + self.design.X_disp.shape[1] + len(self.beta_zi)

    @property
    def nobs(self) -> int:
        """The number of observations used (rows with missing values dropped).

        R: ``nobs(fit)``."""
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        """Observations minus the parameters of the outer optimisation, as glmmTMB counts them.

        R: ``df.residual(fit)``."""
        return self.nobs - len(self.psi)

    @property
    def aic(self) -> float:
        """Akaike's criterion, :math:`-2 \\log L + 2k` with k = ``n_parameters``.

        R: ``AIC(fit)``."""
        return -2 * self.loglik + 2 * self.n_parameters

    @property
    def bic(self) -> float:
        """The Bayesian criterion, :math:`-2 \\log L + k \\log N` with N = ``nobs``.

        R: ``BIC(fit)``."""
        return -2 * self.loglik + np.log(self.nobs) * self.n_parameters

    # ---- predictions, residuals, simulation ----------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link", re_form=None) -> np.ndarray:
        """Predictions: :math:`\\eta = X\\beta + Zu` (``type="link"``) or the mean of y (``type="response"``):
        :math:`\\mu = g^{-1}(\\eta)`, and for a zero-inflated model :math:`(1 - \\pi)\\mu`. A zero-inflated model
        also has ``type="conditional"``, the mean :math:`\\mu` of the count part, ``"zprob"``, the probability
        :math:`\\pi` of a structural zero, and ``"zlink"``, its logit :math:`X_{zi}\\beta_{zi}` (for a model without
        zero inflation these are :math:`\\mu`, 0 and :math:`-\\infty`).

        ``re_form=None`` includes the random effects, ``re_form="~0"`` gives the population level
        (u = 0); in ``newdata`` a level not seen in fitting gets the population level.

        R: ``predict(fit, newdata, type = "link", re.form = NULL)`` (glmmTMB and lme4; glmmTMB's types
        "conditional", "zprob" and "zlink")."""
        types = ("link", "response", "conditional", "zprob", "zlink")
        if type not in types:
            raise ValueError(f"type must be one of {', '.join(map(repr, types))}; got {type!r}")
        population = _population_level(re_form)
        if type in ("zprob", "zlink"):
            zeta = self._zeta(newdata)
            return zeta if type == "zlink" else expit(zeta)
        if newdata is None:
            X, Zu, offset = self.design.X, self.design.Z @ self.u, self.design.offset
        else:
            X, Zu, offset = self._new_matrices(newdata, population)
        eta = X @ self.beta + offset + (0.0 if population else Zu)
        if type == "link":
            return eta
        mu = self.family.link.inverse(eta)
        return zeroinfl.mean(mu, expit(self._zeta(newdata))) if type == "response" and self.design.zero_inflated else mu

    def _zeta(self, newdata: pd.DataFrame | None = None) -> np.ndarray:
        """The zero-inflation linear predictor :math:`X_{zi}\\beta_{zi}` (-inf without zero inflation)."""
        rows = self.nobs if newdata is None else len(newdata)
        if not self.design.zero_inflated:
            return np.full(rows, -np.inf)
        if newdata is None:
            return self.design.X_zi @ self.beta_zi
        X_zi = self.design.new_X_zi(self._conform(self.design.check_newdata(newdata, True)))
        return X_zi @ self.beta_zi

    def _new_matrices(self, newdata: pd.DataFrame, population: bool):
        """X, Z u-hat and the offset for new data; a group not seen in fitting gets u = 0."""
        self.design.check_newdata(newdata, population)
        newdata = self._conform(newdata)
        X = self.design.new_X(newdata)
        offset = self.design.new_offset(newdata)
        Zu = np.zeros(len(newdata)) if population else self.design.new_Z(newdata) @ self.u
        return X, Zu, offset

    def _conform(self, newdata: pd.DataFrame) -> pd.DataFrame:
        """``newdata`` with each factor column holding the values of the fit's data, matched by label (the
        text "2" and the number 2 are the level 2), and a categorical's categories: the design matrix then
        codes the levels as in fitting, whatever type the new column has."""
        if self.data is None:
            return newdata
        out = newdata.copy()
        for name in self.design.factor_levels:
            if name not in out.columns or name not in self.data.columns:
                continue
            original = self.data[name]
            categorical = isinstance(original.dtype, pd.CategoricalDtype)
            values = pd.Series(original.cat.categories if categorical else original.dropna().unique())
            by_label = dict(zip(label_text(values), values))
            column = out[name]
            matched = [by_label.get(text) if present else None
                       for text, present in zip(label_text(column), column.notna())]
            if categorical:
                out[name] = pd.Categorical(matched, categories=original.cat.categories)
            else:
                out[name] = pd.Series(matched, index=out.index, dtype=original.dtype if column.notna().all()
                                      else object)
        return out

    @property
    def observed(self) -> np.ndarray:
        """The response on the scale of mu (proportions y/n for binomial, y otherwise).

        R: ``model.response(model.frame(fit))`` (binomial: its first column over the row sums)."""
        return self.family.observed(self.design.y, self.design.n)

    def fitted(self) -> np.ndarray:
        """The fitted means :math:`\\hat\\mu`, with the random effects: ``predict(type="response")``.

        R: ``fitted(fit)``."""
        return self.predict(type="response")

    def residuals(self, type: str = "response") -> np.ndarray:
        """Residuals of three kinds, as R computes them for glm and glmmTMB.

        * ``response``: :math:`y - \\hat\\mu` (binomial: the proportion y/n);
        * ``pearson``: :math:`(y - \\hat\\mu)\\sqrt{w}/\\sqrt{V(\\hat\\mu)}` with the variance function V
          (not the dispersion), so that :math:`\\sum r^2/\\mathrm{df}` estimates the dispersion;
          w is the number of trials (binomial) or the prior weight;
        * ``deviance``: :math:`\\mathrm{sign}(y - \\hat\\mu)\\sqrt{w\\,d(y, \\hat\\mu)}` with R's unit deviance d
          (``family$dev.resids``).

        With zero inflation (as glmmTMB 1.1.5) the response residual is :math:`y - (1 - \\hat\\pi)\\hat\\mu`, the
        Pearson residual divides it by the square root of :math:`(1 - \\pi)V(\\mu) + \\pi(1 - \\pi)\\mu^2`
        (:func:`glmmteach.zeroinfl.variance`), and there are no deviance residuals.

        R: ``residuals(fit, type = "response")`` (or ``"pearson"``, ``"deviance"``).
        """
        mu, y, n, phi, w = self.fitted(), self.design.y, self.design.n, self.phi, self.design.weights
        if type == "response":
            return self.observed - mu
        if type == "pearson":
            w = n if self.family.trials else w
            if self.design.zero_inflated:
                mu_c = self.predict(type="conditional")
                v = zeroinfl.variance(self.family.variance(mu_c, phi), mu_c, self.predict(type="zprob"))
            else:
                v = self.family.variance(mu, phi)
            return (self.observed - mu) * np.sqrt(w / v)
        if type == "deviance" and self.design.zero_inflated:
            raise ValueError("a zero-inflated model has no deviance residuals (glmmTMB defines none either); use "
                             "type='pearson', or the simulation-based gt.simulate_residuals(fit)")
        if type == "deviance":
            d = w * self.family.unit_deviance(y, mu, phi, n)
            return np.sign(self.observed - mu) * np.sqrt(np.maximum(d, 0))
        raise ValueError(f"type must be 'response', 'pearson' or 'deviance'; got {type!r}")

    def simulate(self, nsim: int = 1, seed=None, conditional: bool = False, newdata: pd.DataFrame | None = None,
                 newparams: dict | None = None) -> pd.DataFrame:
        """Draw ``nsim`` new responses. ``conditional=False`` draws new random effects
        :math:`u^* = \\Lambda_\\theta b^*, b^* \\sim N(0, I)` (glmmTMB's default);
        ``conditional=True`` keeps the fitted :math:`\\hat u`. Binomial gives success counts. A zero-inflated
        model draws the structural zeros too: each draw is set to 0 with probability :math:`\\pi_i`.
        ``seed`` seeds ``numpy.random.default_rng``; the global random state is left alone.

        ``newdata`` (a DataFrame with the model's predictor and grouping columns; the response is needed
        only for a binomial's trials) simulates another design from this model, e.g. a trial with more
        groups: its groups get new random effects, drawn as above, with :math:`X` and :math:`Z` from
        ``newdata``. ``newparams={"beta": b}`` simulates with other fixed effects (in the order of
        ``fixef``), e.g. a chosen effect size for a power study.

        Returns a DataFrame with one column per simulation, ``sim_1``, ``sim_2``, ...

        R: ``simulate(fit, nsim, seed)`` (glmmTMB; lme4's ``use.u = TRUE`` for ``conditional=True``, and
        lme4's ``newdata`` and ``newparams = list(beta = b)``)."""
        rng = np.random.default_rng(seed)
        beta = self._simulation_beta(newparams)
        if newdata is None:
            design = self.design
            eta = (design.X @ beta + design.offset)[:, None] * np.ones((1, nsim))
            if design.q:
                if conditional:
                    eta += (design.Z @ self.u)[:, None]
                else:
                    b = rng.standard_normal((design.q, nsim))
                    eta += design.Z @ (design.Lambda(self.theta) @ b)
            n, phi = design.n, self.phi
        else:
            eta, n, phi = self._new_linear_predictor(newdata, beta, nsim, rng, conditional)
        mu = self.family.link.inverse(eta)
        draws = self.family.simulate(mu, phi[:, None], rng, n[:, None] * np.ones((1, nsim)))
        if newdata is None and self.design.zero_inflated:
            draws = zeroinfl.simulate(draws, self.predict(type="zprob")[:, None], rng)
        return pd.DataFrame(draws, columns=[f"sim_{k + 1}" for k in range(nsim)])

    def _simulation_beta(self, newparams: dict | None) -> np.ndarray:
        """The fixed effects to simulate with: the estimates, or ``newparams["beta"]``."""
        newparams = dict(newparams or {})
        unknown = [k for k in newparams if k != "beta"]
        if unknown:
            raise ValueError(f"newparams may only give 'beta' (the fixed effects); got {unknown[0]!r}")
        if "beta" not in newparams:
            return self.beta
        beta = np.asarray(newparams["beta"], float).ravel()
        if beta.shape != self.beta.shape:
            raise ValueError(f"newparams['beta'] needs {len(self.beta)} values, one per fixed effect "
                             f"({', '.join(self.design.x_names)}); got {beta.size}")
        return beta

    def _new_linear_predictor(self, newdata: pd.DataFrame, beta: np.ndarray, nsim: int, rng, conditional: bool):
        """eta (N x nsim) for ``newdata``: X beta + offset, plus each term's new random effects
        :math:`u_l = T b_l` for each of its groups l in ``newdata`` (the levels in R's order, as in fitting),
        with the trials (binomial) and the dispersion."""
        if conditional:
            raise ValueError("simulate(newdata=...) draws new random effects for the new data's groups; "
                             "conditional=True (the fitted ones) needs the fit's own data")
        if self.design.zero_inflated:
            raise ValueError("simulate(newdata=...) is not available for a zero-inflated model (its zero "
                             "probabilities would need the new data's zero-inflation design); simulate on "
                             "the fit's own data")
        if not np.allclose(self.phi, self.phi[0]):
            raise ValueError("simulate(newdata=...) needs one dispersion for all observations; this fit "
                             "models the dispersion")
        design = self.design
        design.check_newdata(newdata)
        newdata = self._conform(newdata)
        eta = (design.new_X(newdata) @ beta + design.new_offset(newdata))[:, None] * np.ones((1, nsim))
        for term, T in zip(design.terms, design.templates(self.theta)):
            codes, levels = group_codes(term.group, newdata)
            values = design.new_term_columns(term, newdata)
            b = rng.standard_normal((len(levels) * term.k, nsim)).reshape(len(levels), term.k, nsim)
            u = np.einsum("ij,ljs->lis", T, b)                  # u_l = T b_l, level by level
            eta += np.einsum("nk,nks->ns", values, u[codes])
        n = design.new_trials(newdata) if self.family.trials else np.ones(len(newdata))
        return eta, n, np.full(len(newdata), self.phi[0])

    def refit(self, y, standard_errors: bool = True) -> "GlmmFit":
        """The same model fitted to a new response ``y`` (lme4's ``refit``), started from these
        estimates; see :func:`glmmteach.fit.refit`. ``y``: one value per observation (binomial:
        success counts), e.g. ``fit.refit(fit.simulate(1, seed=1)["sim_1"])``. A bootstrap that needs
        no standard errors can skip them: ``standard_errors=False``.

        R: ``refit(fit, y)`` (lme4)."""
        return self.objective.refit(self, y, standard_errors)

    def optimizer_log(self) -> pd.DataFrame:
        """Every evaluation of the outer objective: the parameters psi and -log L, in order (a DataFrame
        indexed by evaluation).

        R: glmmTMB's ``glmmTMBControl(optCtrl = list(trace = 1))`` prints a similar trace of the
        optimiser's iterations."""
        names = self.objective.names()
        rows = [{"evaluation": k, **dict(zip(names, psi)), "-logLik": value}
                for k, psi, value in self.log]
        return pd.DataFrame(rows).set_index("evaluation")

    def pirls_log(self) -> pd.DataFrame:
        """The inner Newton (penalised IRLS) iterations at the estimates, started from b = 0:
        iteration, the penalised log-likelihood f(v), the step-halving factor t, the largest change.

        R: lme4's ``glmerControl(...)`` with ``verbose = 2`` prints its PIRLS steps."""
        from .laplace import InnerProblem, conditional_modes

        beta, theta, phi = self.objective.unpack(self.psi)
        problem = InnerProblem.build(self.design, beta, theta, phi, self.objective.reml, self.objective.zeta(self.psi))
        start = np.zeros(problem.p_in + self.design.q)
        if self.objective.reml:
            start[:problem.p_in] = self.beta
        conditional_modes(problem, start)
        return pd.DataFrame(problem.iterations, columns=["iteration", "f(v)", "t", "max |change|"]
                            ).set_index("iteration")

    def confint(self, parm=None, level: float = 0.95, method: str = "wald", nsim: int = 200,
                seed=None, n_jobs: int = 1) -> pd.DataFrame:
        """Confidence intervals for the fixed effects and the random-effect SDs and correlations, as
        glmmTMB's ``confint``: ``method="wald"``, ``"profile"`` or ``"boot"`` (the profiles or the refits
        on ``n_jobs`` processes, the same intervals for any ``n_jobs``); see :func:`glmmteach.confint.confint`.

        R: ``confint(m)``, ``confint(m, method = "profile")`` (glmmTMB), ``confint(m, method = "boot")`` (lme4)
        """
        from .confint import confint
        return confint(self, parm, level, method, nsim, seed, n_jobs)

    def summary(self) -> "Summary":
        """The fit printed as glmmTMB prints ``summary(fit)``: the likelihood block, the variance
        components, the dispersion and the coefficient table (``.coefficients``).

        R: ``summary(fit)``."""
        return Summary(self)

    def __repr__(self) -> str:
        return str(self.summary())


def _population_level(re_form) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "NA", "~1-1"):
        return True
    raise ValueError(f"re_form must be None (with random effects) or '~0' (population level); got {re_form!r}")


class Summary:
    """The summary of a fit, printed like glmmTMB's ``summary()``; ``print(fit.summary())``.

    ``.coefficients`` is the coefficient table as a DataFrame (estimate, SE, z, p), R's
    ``coef(summary(fit))$cond``; ``.coefficients_zi`` the zero-inflation model's (``$zi``; empty without one);
    ``.fit`` is the fit."""

    def __init__(self, fit: GlmmFit):
        self.fit = fit
        self.coefficients = _coefficient_table(fit.fixef, fit.se)
        self.coefficients_zi = _coefficient_table(fit.fixef_zi, fit.se_zi)

    def __str__(self) -> str:
        fit = self.fit
        lines = [f" Family: {fit.family.name}  ( {fit.family.link.name} )",
                 f"Formula:          {fit.design.formula.text}"]
        if fit.design.zero_inflated:        # glmmTMB lines its "~" up with the formula's
            zi = "~" + fit.design.zi_formula.text.lstrip("~ ")
            lines.append("Zero inflation:  " + " " * (len(fit.design.response_name) + 2) + zi)
        lines += self._dispersion_formula_line()
        lines.append("")
        lines += [*self._likelihood_block(), ""]
        if fit.design.terms:
            groups = "; ".join(f"{t.group}, {len(t.levels)}" for t in fit.design.terms)
            lines += ["Random effects:", "", "Conditional model:", *self._random_block(),
                      f"Number of obs: {fit.nobs}, groups:  {groups}"]
        lines += self._dispersion_line()
        lines += ["", "Conditional model:", *_coefficient_block(self.coefficients)]
        if fit.design.zero_inflated:
            lines += ["", "Zero-inflation model:", *_coefficient_block(self.coefficients_zi)]
        lines += self._dispersion_model_block()
        if not fit.converged:
            lines += ["", "Warning: the fit did not converge."]
        return "\n".join(lines)

    def _likelihood_block(self) -> list[str]:
        """AIC, BIC, logLik, deviance and df.resid as lme4 and glmmTMB print them: one width for all."""
        fit = self.fit
        header = ["AIC", "BIC", "logLik", "-2*log(L)" if fit.objective.reml else "deviance", "df.resid"]
        values = [f"{fit.aic:.1f}", f"{fit.bic:.1f}", f"{fit.loglik:.1f}", f"{-2 * fit.loglik:.1f}",
                  f"{fit.df_resid}"]
        width = max(len(v) for v in header + values)
        return ["".join(v.rjust(width) + " " for v in row) for row in (header, values)]

    def _random_block(self) -> list[str]:
        """The variance components as glmmTMB's ``formatVC`` lays them out: variances and SDs each in one
        layout of 4 significant digits, correlations to 2 decimals below the diagonal (``cs`` and ``ar1``:
        the one correlation and the structure's name, "0.72 (ar1)", and an ar1 term in one row), columns
        left-aligned."""
        fit = self.fit
        covariances = fit.design.covariances(fit.theta)
        groups, names, variances = [], [], []
        correlations = []                                  # one row of strings per random effect
        width = max(t.structure.corr_width for t in fit.design.terms)
        for term, Sigma, part in zip(fit.design.terms, covariances, fit.design.theta_slices()):
            shown = list(term.structure.summary_rows)      # ar1: one row, its SD is every column's
            groups += [term.group] + [""] * (len(shown) - 1)
            names += [term.names[j] for j in shown]
            variances += list(np.diag(Sigma)[shown])
            correlations += term.structure.correlation_text(fit.theta[part], width)
        if fit.family.residual_in_varcorr:       # NA with a dispersion model, as glmmTMB prints it
            residual = np.nan if fit.design.disp_formula is not None else fit.sigma ** 2
            groups, names, variances = groups + ["Residual"], names + [""], variances + [residual]
            correlations.append([""] * width)
        variances = np.array(variances)
        cells = {"Groups": groups, "Name": names, "Variance": _with_na(variances, 4),
                 "Std.Dev.": _with_na(np.sqrt(variances), 4)}
        if width > 0:
            for j in range(width):
                cells["Corr" if j == 0 else " " * j] = [row[j] for row in correlations]
        return character_matrix([""] * len(groups), cells, right=False)

    def _dispersion_line(self) -> list[str]:
        if self.fit.design.disp_formula is not None:      # the "Dispersion model:" block instead
            return []
        line = self.fit.family.dispersion_line(self.fit.sigma)
        return [] if line is None else ["", line]

    def _dispersion_formula_line(self) -> list[str]:
        """glmmTMB's "Dispersion:" line under the formula, its '~' under the formula's '~'."""
        disp = self.fit.design.disp_formula
        if disp is None:
            return []
        text = self.fit.design.formula.text
        return ["Dispersion:".ljust(18 + text.index("~")) + "~" + disp.fixed]

    def _dispersion_model_block(self) -> list[str]:
        """glmmTMB's "Dispersion model:" coefficient table (with a ``dispformula``)."""
        fit = self.fit
        if fit.design.disp_formula is None:
            return []
        return ["", "Dispersion model:", *_coefficient_block(_coefficient_table(fit.fixef_disp, fit.se_disp))]


def _coefficient_table(estimate: pd.Series, se: pd.Series) -> pd.DataFrame:
    """Estimate, Std. Error, z value and Pr(>|z|), as R's ``coef(summary(fit))``."""
    z = estimate / se
    return pd.DataFrame({"Estimate": estimate, "Std. Error": se, "z value": z,
                         "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))})


def _coefficient_block(coefficients: pd.DataFrame) -> list[str]:
    """A coefficient table as R's ``printCoefmat`` prints it, with the stars' legend where a p-value is below 0.1."""
    lines = coefficient_lines(coefficients)
    if np.any(coefficients["Pr(>|z|)"] < 0.1):      # R shows stars and their legend only then
        lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    return lines


def _with_na(values: np.ndarray, digits: int) -> list[str]:
    """:func:`r_format` of the finite values, and NA (right-aligned to their width) for the missing ones."""
    known = ~np.isnan(values)
    out = np.array([""] * len(values), dtype=object)
    out[known] = r_format(values[known], digits)
    width = max([len(v) for v in out[known]] + [2])
    out[~known] = "NA".rjust(width)
    return list(out)
