"""The fitted model: estimates, their covariance, predictions, residuals, simulation and the summary.

Names follow R: ``fixef``, ``ranef``, ``varcorr``, ``sigma``, ``loglik``, ``aic``, ``bic``,
``predict``, ``residuals``, ``simulate``, ``summary()`` (laid out like glmmTMB's).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .design import Design
from .fit import ConvergenceWarning, Objective, numerical_hessian, _free
from .laplace import LaplaceResult


@dataclass
class GlmmFit:
    """A fitted GLMM. Build it with :func:`glmmteach.glmm`."""

    design: Design
    objective: Objective
    psi: np.ndarray
    optimum: LaplaceResult
    beta: np.ndarray
    theta: np.ndarray
    phi: float
    cov_beta: np.ndarray | None          # None: not computed (``refit(..., standard_errors=False)``)
    converged: bool
    message: str
    data: pd.DataFrame | None = None      # the rows of the user's data that the fit used

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_optimum(cls, objective: Objective, psi: np.ndarray, converged: bool, message,
                     covariance: bool = True) -> "GlmmFit":
        """Evaluate the optimum once more, then (unless ``covariance=False``) the covariance of the estimates."""
        optimum = objective.laplace(psi)
        beta, theta, phi = objective.unpack(psi)
        if objective.reml:
            beta = optimum.beta_in
        cov_beta = _covariance_of_beta(objective, psi, optimum) if covariance else None
        fit = cls(objective.design, objective, psi, optimum, np.asarray(beta), np.asarray(theta), phi,
                  cov_beta, converged, str(message))
        fit._warn_if_problematic()
        return fit

    def _warn_if_problematic(self) -> None:
        if not self.converged:
            warnings.warn("the fit did not converge: the optimiser stopped before the log-likelihood was at "
                          "its maximum. Try other starting values (start=...) or a simpler model.",
                          ConvergenceWarning, stacklevel=3)
        for message in self._singular_terms():
            warnings.warn(message, ConvergenceWarning, stacklevel=3)
        if self.cov_beta is not None and not np.all(np.isfinite(self.cov_beta)):
            warnings.warn("the Hessian at the optimum is not positive definite, so standard errors are not "
                          "available: some parameters are not identified by the data.",
                          ConvergenceWarning, stacklevel=3)

    def _singular_terms(self) -> list[str]:
        out = []
        for row in self.varcorr.itertuples():
            if row.sd < 1e-4 * max(1.0, self.sigma if self.family.name == "gaussian" else 1.0):
                out.append(f"singular fit: the standard deviation of '{row.term}' across '{row.group}' is "
                           "estimated as (nearly) zero, so this random effect is not supported by the data.")
        for group, corr in self.ranef_corr.items():
            values = corr.to_numpy()[np.tril_indices(len(corr), -1)]
            if np.any(np.abs(values) > 0.999):
                out.append(f"singular fit: a correlation between the random effects of '{group}' is "
                           "estimated at +1 or -1; the model is too complex for the data.")
        return out

    # ---- estimates ----------------------------------------------------------------------------
    @property
    def family(self):
        return self.design.family

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=self.design.x_names, name="Estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame(self._covariance(), index=self.design.x_names, columns=self.design.x_names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._covariance())), index=self.design.x_names, name="Std. Error")

    def _covariance(self) -> np.ndarray:
        if self.cov_beta is None:
            raise ValueError("this fit has no standard errors: it was made by refit(y, standard_errors=False); "
                             "refit with standard_errors=True for them")
        return self.cov_beta

    @property
    def sigma(self) -> float:
        """As glmmTMB's ``sigma()``: see the family's ``sigma_meaning``."""
        return self.phi

    @property
    def u(self) -> np.ndarray:
        """Conditional modes on the original scale, :math:`\\hat u = \\Lambda_\\theta \\hat b`."""
        if self.design.q == 0:
            return np.zeros(0)
        return self.design.Lambda(self.theta) @ self.optimum.b

    @property
    def varcorr(self) -> pd.DataFrame:
        rows = []
        for term, Sigma in zip(self.design.terms, self.design.covariances(self.theta)):
            for j, name in enumerate(term.names):
                rows.append({"group": term.group, "term": name, "variance": Sigma[j, j],
                             "sd": np.sqrt(Sigma[j, j])})
        return pd.DataFrame(rows, columns=["group", "term", "variance", "sd"])

    @property
    def ranef_corr(self) -> dict:
        out = {}
        for term, Sigma in zip(self.design.terms, self.design.covariances(self.theta)):
            if term.k > 1:
                sd = np.sqrt(np.diag(Sigma))
                with np.errstate(invalid="ignore", divide="ignore"):
                    corr = Sigma / np.outer(sd, sd)
                out[term.group] = pd.DataFrame(corr, index=term.names, columns=term.names)
        return out

    @property
    def ranef(self) -> dict:
        out, u = {}, self.u
        for term in self.design.terms:
            block = u[term.start:term.start + term.k * len(term.levels)].reshape(len(term.levels), term.k)
            out[term.group] = pd.DataFrame(block, index=term.levels, columns=term.names)
        return out

    # ---- likelihood-based summaries -----------------------------------------------------------
    @property
    def loglik(self) -> float:
        return float(self.optimum.loglik)

    @property
    def n_parameters(self) -> int:
        """Parameters counted by AIC: fixed effects, theta, and the dispersion (also under REML)."""
        return len(self.beta) + self.design.n_theta + int(self.family.has_phi)

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def df_resid(self) -> int:
        """As glmmTMB: observations minus the parameters of the outer optimisation."""
        return self.nobs - len(self.psi)

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_parameters

    @property
    def bic(self) -> float:
        return -2 * self.loglik + np.log(self.nobs) * self.n_parameters

    # ---- predictions, residuals, simulation ----------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link", re_form=None) -> np.ndarray:
        """eta (``type="link"``) or mu (``type="response"``). ``re_form=None`` includes the random
        effects, ``re_form="~0"`` gives the population level; new levels get the population level."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response'; got {type!r}")
        population = _population_level(re_form)
        if newdata is None:
            X, Zu, offset = self.design.X, self.design.Z @ self.u, self.design.offset
        else:
            X, Zu, offset = self._new_matrices(newdata, population)
        eta = X @ self.beta + offset + (0.0 if population else Zu)
        return self.family.link.inverse(eta) if type == "response" else eta

    def _new_matrices(self, newdata: pd.DataFrame, population: bool):
        """X, Z u-hat and the offset for new data; a group not seen in fitting gets u = 0."""
        self.design.check_newdata(newdata, population)
        X = self.design.new_X(newdata)
        offset = self.design.new_offset(newdata)
        Zu = np.zeros(len(newdata)) if population else self.design.new_Z(newdata) @ self.u
        return X, Zu, offset

    @property
    def observed(self) -> np.ndarray:
        """The response on the scale of mu: proportions y/n for binomial, y otherwise."""
        return self.design.y / self.design.n if self.family.name == "binomial" else self.design.y

    def fitted(self) -> np.ndarray:
        return self.predict(type="response")

    def residuals(self, type: str = "response") -> np.ndarray:
        """Residuals, as R's ``residuals()`` for glm and glmmTMB.

        * ``response``: :math:`y - \\hat\\mu` (binomial: the proportion y/n);
        * ``pearson``: :math:`(y - \\hat\\mu)\\sqrt{w}/\\sqrt{V(\\hat\\mu)}` with the variance function V
          (not the dispersion), so that :math:`\\sum r^2/\\mathrm{df}` estimates the dispersion;
          w is the number of trials (binomial) or the prior weight;
        * ``deviance``: :math:`\\mathrm{sign}(y - \\hat\\mu)\\sqrt{w\\,d(y, \\hat\\mu)}` with R's unit deviance d
          (``family$dev.resids``).
        """
        mu, y, n, phi, w = self.fitted(), self.design.y, self.design.n, self.phi, self.design.weights
        if type == "response":
            return self.observed - mu
        if type == "pearson":
            w = n if self.family.name == "binomial" else w
            return (self.observed - mu) * np.sqrt(w / self.family.variance(mu, phi))
        if type == "deviance":
            d = w * self.family.unit_deviance(y, mu, phi, n)
            return np.sign(self.observed - mu) * np.sqrt(np.maximum(d, 0))
        raise ValueError(f"type must be 'response', 'pearson' or 'deviance'; got {type!r}")

    def simulate(self, nsim: int = 1, seed=None, conditional: bool = False) -> pd.DataFrame:
        """Draw ``nsim`` new responses. ``conditional=False`` draws new random effects
        :math:`u^* = \\Lambda_\\theta b^*, b^* \\sim N(0, I)` (glmmTMB's default);
        ``conditional=True`` keeps the fitted :math:`\\hat u`. Binomial gives success counts."""
        rng = np.random.default_rng(seed)
        design = self.design
        eta = (design.X @ self.beta + design.offset)[:, None] * np.ones((1, nsim))
        if design.q:
            if conditional:
                eta += (design.Z @ self.u)[:, None]
            else:
                b = rng.standard_normal((design.q, nsim))
                eta += design.Z @ (design.Lambda(self.theta) @ b)
        mu = self.family.link.inverse(eta)
        draws = self.family.simulate(mu, self.phi, rng, design.n[:, None] * np.ones((1, nsim)))
        return pd.DataFrame(draws, columns=[f"sim_{k + 1}" for k in range(nsim)])

    def refit(self, y, standard_errors: bool = True) -> "GlmmFit":
        """The same model fitted to a new response ``y`` (lme4's ``refit``), started from these
        estimates; see :func:`glmmteach.fit.refit`. ``y``: one value per observation (binomial:
        success counts), e.g. ``fit.refit(fit.simulate(1, seed=1)["sim_1"])``. A bootstrap that needs
        no standard errors can skip them: ``standard_errors=False``."""
        from .fit import refit
        return refit(self, y, standard_errors)

    def optimizer_log(self) -> pd.DataFrame:
        """Every evaluation of the outer objective: the parameters psi and -log L, in order."""
        names = self.objective.names()
        rows = [{"evaluation": k, **dict(zip(names, psi)), "-logLik": value}
                for k, psi, value in self.objective.log]
        return pd.DataFrame(rows).set_index("evaluation")

    def pirls_log(self) -> pd.DataFrame:
        """The inner Newton (penalised IRLS) iterations at the estimates, started from b = 0:
        iteration, the penalised log-likelihood f(v), the step-halving factor t, the largest change."""
        from .laplace import InnerProblem, conditional_modes

        beta, theta, phi = self.objective.unpack(self.psi)
        problem = InnerProblem.build(self.design, beta, theta, phi, self.objective.reml)
        start = np.zeros(problem.p_in + self.design.q)
        if self.objective.reml:
            start[:problem.p_in] = self.beta
        conditional_modes(problem, start)
        return pd.DataFrame(problem.iterations, columns=["iteration", "f(v)", "t", "max |change|"]
                            ).set_index("iteration")

    def summary(self) -> "Summary":
        return Summary(self)

    def __repr__(self) -> str:
        return str(self.summary())


def _population_level(re_form) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "NA", "~1-1"):
        return True
    raise ValueError(f"re_form must be None (with random effects) or '~0' (population level); got {re_form!r}")


def _covariance_of_beta(objective: Objective, psi: np.ndarray, optimum: LaplaceResult) -> np.ndarray:
    """Covariance of the fixed effects, covering the uncertainty in theta as glmmTMB's ``sdreport``.

    ML: the beta block of the inverse Hessian of :math:`-\\log L(\\beta, \\theta, \\phi)`.
    REML: :math:`[H_v^{-1}]_{\\beta\\beta} + J V J^\\top`, where :math:`V` is the inverse Hessian of
    :math:`-\\log L_R(\\theta, \\phi)` and :math:`J = \\partial\\hat\\beta/\\partial(\\theta, \\log\\phi)`.
    Parameters at a bound (a variance estimated at zero) are held fixed.
    """
    p = objective.design.X.shape[1]
    free = _free(psi, objective.bounds()) if len(psi) else np.zeros(0, bool)
    V = _inverse_hessian(objective, psi, free)
    if not objective.reml:
        return V[:p, :p]          # beta has no bounds, so it leads the free parameters
    H_inverse = optimum.factor.inverse_beta_block()
    if not free.any():
        return H_inverse
    J = _mode_jacobian(objective, psi, free)
    return H_inverse + J @ V @ J.T


def _hessian_near(objective: Objective, psi: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The Hessian the optimiser's last Newton step used, if it was taken within 1e-4 of psi, else a new one."""
    if objective.hessian is not None:
        at, was_free, H = objective.hessian
        if np.array_equal(was_free, free) and np.max(np.abs(at - psi), initial=0.0) < 1e-4:
            return H
    return numerical_hessian(objective.gradient, psi, free)


def _inverse_hessian(objective: Objective, psi: np.ndarray, free: np.ndarray) -> np.ndarray:
    if not free.any():
        return np.zeros((0, 0))
    H = _hessian_near(objective, psi, free)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return np.full(H.shape, np.nan)
    return np.linalg.inv(H)


def _mode_jacobian(objective: Objective, psi: np.ndarray, free: np.ndarray, relative: float = 1e-5):
    """Central differences of the REML inner mode beta-hat with respect to the free parameters."""
    columns = []
    for k in np.flatnonzero(free):
        h = relative * max(1.0, abs(psi[k]))
        plus, minus = psi.copy(), psi.copy()
        plus[k] += h
        minus[k] -= h
        columns.append((objective.laplace(plus).beta_in - objective.laplace(minus).beta_in) / (2 * h))
    return np.column_stack(columns)


class Summary:
    """Printed like glmmTMB's ``summary()``."""

    def __init__(self, fit: GlmmFit):
        self.fit = fit
        z = fit.fixef / fit.se
        self.coefficients = pd.DataFrame({"Estimate": fit.fixef, "Std. Error": fit.se, "z value": z,
                                          "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))})

    def __str__(self) -> str:
        fit = self.fit
        lines = [f" Family: {fit.family.name}  ( {fit.family.link.name} )",
                 f"Formula:          {fit.design.formula.text}", ""]
        lines += [*self._likelihood_block(), ""]
        if fit.design.terms:
            groups = "; ".join(f"{t.group}, {len(t.levels)}" for t in fit.design.terms)
            lines += ["Random effects:", "", "Conditional model:", *self._random_block(),
                      f"Number of obs: {fit.nobs}, groups:  {groups}"]
        lines += self._dispersion_line()
        lines += ["", "Conditional model:", *self._coefficient_block()]
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
        layout of 4 significant digits, correlations to 2 decimals below the diagonal, columns left-aligned."""
        fit = self.fit
        covariances = fit.design.covariances(fit.theta)
        groups, names, variances = [], [], []
        correlations = []                                  # one row of strings per random effect
        width = max(t.k for t in fit.design.terms)
        for term, Sigma in zip(fit.design.terms, covariances):
            groups += [term.group] + [""] * (term.k - 1)
            names += list(term.names)
            variances += list(np.diag(Sigma))
            correlations += _correlation_rows(Sigma, width)
        if fit.family.name == "gaussian":
            groups, names, variances = groups + ["Residual"], names + [""], variances + [fit.sigma ** 2]
            correlations.append([""] * width)
        variances = np.array(variances)
        cells = {"Groups": groups, "Name": names, "Variance": r_format(variances, 4),
                 "Std.Dev.": r_format(np.sqrt(variances), 4)}
        if width > 1:
            for j in range(width):
                cells["Corr" if j == 0 else " " * j] = [row[j] for row in correlations]
        return _character_matrix([""] * len(groups), cells, right=False)

    def _dispersion_line(self) -> list[str]:
        fit = self.fit
        name = fit.family.name
        if name in ("gaussian", "Gamma"):
            return ["", f"Dispersion estimate for {name} family (sigma^2): {fit.sigma ** 2:.3g} "]
        if name in ("nbinom2", "beta"):
            return ["", f"Dispersion parameter for {name} family (): {fit.sigma:.3g} "]
        return []

    def _coefficient_block(self) -> list[str]:
        lines = coefficient_lines(self.coefficients)
        if np.any(self.coefficients["Pr(>|z|)"] < 0.1):      # R shows stars and their legend only then
            lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
        return lines


# ---- printing numbers as R does ------------------------------------------------------------------
def _significant(x: float, digits: int) -> tuple[int, int]:
    """(power of ten, number of significant digits) of x rounded to ``digits`` significant digits,
    trailing zeros dropped: 9.0746 with 3 digits is 9.07, (0, 3); 0.5 is (-1, 1)."""
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    return int(exponent), len(mantissa.replace(".", "").rstrip("0")) or 1


def r_format(x, digits: int) -> list[str]:
    """R's ``format(x, digits = digits)`` of a numeric vector: one layout for all values.

    Fixed notation with as many decimals as the value that needs the most for ``digits``
    significant digits; scientific notation instead when that is narrower (R's ``formatReal``).
    NaN prints as ``NaN`` and infinities as ``Inf`` and ``-Inf``, as R prints them.
    """
    x = np.asarray(x, float).ravel()
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return [_r_special(v) for v in x]
    power, sig = np.array([_significant(v, digits) if v != 0 else (0, 1) for v in finite]).T
    left = power + 1
    fixed_width = np.max((finite < 0) + np.maximum(left, 1))
    decimals = max(0, int(np.max(sig - left)))
    fixed_width += decimals + (decimals > 0)
    exponent_digits = 2 if power.max() >= 100 or power.min() <= -99 else 1
    mantissa = int(sig.max()) - 1
    sci_width = int(np.any(finite < 0)) + (mantissa > 0) + mantissa + 4 + exponent_digits
    form = f".{decimals}f" if fixed_width <= sci_width else f".{mantissa}e"
    return [f"{v:{form}}" if np.isfinite(v) else _r_special(v) for v in x]


def _r_special(v: float) -> str:
    return "NaN" if np.isnan(v) else ("Inf" if v > 0 else "-Inf")


def r_format_pval(p, digits: int = 3, eps: float = np.finfo(float).eps) -> list[str]:
    """R's ``format.pval``: values from 1e-4 up in one layout, smaller ones in another, and those below
    machine epsilon as ``<2e-16`` (``< 2e-16`` when the other entries are wide); NaN as ``NA``."""
    p = np.asarray(p, float).ravel()
    out = np.array(["NA"] * len(p), dtype=object)
    tiny, rest = ~np.isnan(p) & (p < eps), ~np.isnan(p) & (p >= eps)
    with np.errstate(divide="ignore"):
        power = np.floor(np.log10(np.where(p > 0, p, 1e-50)))
    fixed = rest & ((power >= -3) | ((power == -4) & (digits > 1)))
    for group in (fixed, rest & ~fixed):
        if group.any():
            out[group] = r_format(p[group], digits)
    if tiny.any():
        d = max(1, digits - 2)
        width = max((len(s) for s in out[rest]), default=None)
        if width is not None and d > 1 and d + 6 > width:
            d = max(1, width - 7)
        sep = "" if d == 1 and (width is None or width <= 6) else " "
        out[tiny] = "<" + sep + r_format([eps], d)[0]
    return list(out)


def _round_half(x: np.ndarray, decimals: float) -> np.ndarray:
    """R's ``round(x, digits)``: a non-whole number of digits counts as the nearest whole one."""
    return np.round(x, int(np.floor(decimals + 0.5)))


def coefficient_lines(table: pd.DataFrame, digits: int = 4) -> list[str]:
    """The coefficient table as R's ``printCoefmat(table, zap.ind = 3, digits = 4)`` prints it (glmmTMB's
    summary): estimates and SEs in one layout rounded for the smallest of them, test statistics to 3
    decimals at most, p-values by :func:`r_format_pval`, and significance stars when some p < 0.1."""
    values = table.to_numpy(float)
    estimates, z, p = values[:, :2], values[:, 2], values[:, 3]
    nonzero = np.abs(estimates[np.isfinite(estimates) & (estimates != 0)])
    digmin = 1 + (np.floor(np.log10(nonzero.min())) if nonzero.size else 0)
    columns = np.array(r_format(np.round(estimates.ravel(), int(max(1, digits - digmin))), digits),
                       dtype=object).reshape(estimates.shape)
    reads_as_zero = np.array([[float(c) == 0 for c in row] for row in columns])
    fix = np.isfinite(estimates) & ((estimates == 0) != reads_as_zero)
    for i, j in zip(*np.nonzero(fix)):            # a value that rounding turned into 0: its own layout
        columns[i, j] = r_format([estimates[i, j]], max(1, digits - 1))[0]
    finite_z = np.abs(z[np.isfinite(z)])
    largest = finite_z.max() if finite_z.size else 0.0
    z = _round_half(z, max(0.0, digits - np.log10(largest)) if largest > 0 else digits)   # zapsmall
    cells = {"Estimate": columns[:, 0], "Std. Error": columns[:, 1],
             table.columns[2]: r_format(np.round(z, max(1, min(5, digits - 1))), digits),
             # printCoefmat shows a NaN p-value (from a NaN standard error) as NaN, not format.pval's NA
             table.columns[3]: ["NaN" if np.isnan(v) else s
                                for v, s in zip(p, r_format_pval(p, max(1, min(5, digits - 1))))]}
    if np.any(p[~np.isnan(p)] < 0.1):
        symbols = np.select([p <= 0.001, p <= 0.01, p <= 0.05, p <= 0.1, p <= 1], ["***", "**", "*", ".", " "], "")
        width = max(len(s) for s in symbols)
        cells[""] = [s.ljust(width) for s in symbols]
    return _character_matrix(list(map(str, table.index)), cells)


def _character_matrix(rows: list[str], cells: dict, right: bool = True) -> list[str]:
    """A table of strings as R's ``print(quote = FALSE, right = right)``: row names left-aligned, every
    column aligned to the wider of its header and entries, one space between columns. (Headers made of
    spaces stand for R's empty column names, which a dict cannot repeat.)"""
    row_width = max(len(r) for r in rows)
    headers = [h if h.strip() else "" for h in cells]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(headers, cells.values())]
    align = str.rjust if right else str.ljust
    lines = [" " * row_width + "".join(" " + align(h, w) for h, w in zip(headers, widths))]
    for i, row in enumerate(rows):
        lines.append(row.ljust(row_width) + "".join(" " + align(col[i], w) for col, w in zip(cells.values(), widths)))
    return lines


def _correlation_rows(Sigma: np.ndarray, width: int) -> list[list[str]]:
    """Correlations of one term below the diagonal, as strings in ``width`` columns: R's
    ``format(round(corr, 2), nsmall = 2)`` over the whole matrix (so one width for all), upper part blank."""
    sd = np.sqrt(np.diag(Sigma))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.round(Sigma / np.outer(sd, sd), 2)
    text = [f"{v:.2f}" if np.isfinite(v) else "NaN" for v in corr.ravel()]
    text = np.array([t.rjust(max(map(len, text))) for t in text], dtype=object).reshape(corr.shape)
    k = len(sd)
    return [[text[r, c] if c < r else "" for c in range(width)] for r in range(k)]
