"""``glmm()``: build the objective, optimise it with scipy, finish with the covariance of the estimates.

The outer problem maximises the Laplace (or quadrature) log-likelihood of :mod:`glmmteach.laplace`
over the parameters that are not integrated out:

* ML: :math:`\\psi = (\\beta, \\theta, \\log\\phi)`;
* REML: :math:`\\psi = (\\theta, \\log\\phi)`, since :math:`\\beta` is integrated with the random effects.

(:math:`\\log\\phi` only for families with a dispersion parameter; with a ``ziformula`` the zero-inflation
coefficients :math:`\\beta_{zi}` follow, under ML and REML.) The optimiser is L-BFGS-B with
the diagonal of each Cholesky template bounded below by 0, on parameters scaled by the curvature at
the start, and a few Newton steps on a numerical Hessian to finish. Every evaluation is kept in an
optimisation log.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

from . import cells, families, glm, numdiff, params, zeroinfl
from .design import Design, build, caller_stacklevel
from .laplace import (LaplaceResult, NotPositiveDefinite, Response, agq_loglik, laplace_loglik, per_observation, score,
                      score_dispersion, score_zero_inflation)
from .problems import ConvergenceWarning
from .results import GlmmFit


#: What an inner solve raises where it cannot go on (a Hessian that is not positive definite, overflow)
INNER_FAILURES = (NotPositiveDefinite, np.linalg.LinAlgError, FloatingPointError)


def _penalised(result: LaplaceResult) -> float:
    """The inner objective at the modes, :math:`f(\\hat v) = \\sum_i \\ell_i - \\hat b^\\top\\hat b/2`: of two
    solutions of the same inner problem, the higher is its maximum."""
    value = result.problem.objective(result.v, result.response)
    return value if np.isfinite(value) else -np.inf


#: An evaluation of -log L this far above the best one so far is a jump (see :meth:`Objective.laplace`)
JUMP = 10.0


@dataclass
class Objective:
    """:math:`-\\log L(\\psi)`, with the last conditional modes kept to start the next inner solve, and the
    last inner result kept for the gradient at the same point (the optimiser asks for both).

    The best evaluation so far, ``best = (-log L, psi, modes)``, safeguards the inner solve: where the modes
    of the last point lead it astray (a failed solve, or -log L more than :data:`JUMP` + 0.1% above the best),
    it is solved again from the best point's modes and the better of the two modes is kept (the higher
    penalised log-likelihood); and the modes of such a jump never start the next solve."""

    design: Design
    reml: bool
    nagq: int = 1
    log: list = field(default_factory=list)
    warm_start: np.ndarray | None = None
    last: tuple | None = field(default=None, repr=False, compare=False)    # (psi, LaplaceResult)
    best: tuple | None = field(default=None, repr=False, compare=False)    # (-log L, psi, modes)
    layout: params.Layout | None = None     # the blocks of psi (params.layout); made from the design if None

    def __post_init__(self):
        if self.layout is None:
            self.layout = params.layout(self.design, self.reml)

    @property
    def p_outer(self) -> int:
        """The fixed effects in psi: all of them (ML) or none (REML); they lead psi."""
        return self.layout.where("beta").stop

    def unpack(self, psi: np.ndarray):
        """psi -> (beta or None, theta, phi), phi one value per observation (:meth:`Design.phi`)."""
        parts = self.layout.unpack(psi)
        return parts.beta, parts.theta, self.design.phi(parts.disp)

    def zeta(self, psi: np.ndarray) -> np.ndarray | None:
        """psi -> the logit of each observation's structural-zero probability, :math:`X_{zi}\\beta_{zi}` (None
        without zero inflation)."""
        return self.design.zeta(self.layout.unpack(psi).zi)

    def laplace(self, psi: np.ndarray) -> LaplaceResult:
        if self.last is not None and np.array_equal(self.last[0], psi):
            return self.last[1]
        try:
            result, failure = self._solve(psi, self.warm_start), None
        except INNER_FAILURES as error:
            result, failure = None, error
        if self.best is not None and not np.array_equal(self.warm_start, self.best[2]) and self._jumped(result):
            try:
                retry = self._solve(psi, self.best[2])
            except INNER_FAILURES:
                retry = None
            if retry is not None and (result is None or _penalised(retry) > _penalised(result)):
                result = retry
        if result is None:
            raise failure
        self.last = (psi.copy(), result)
        return result

    def _solve(self, psi: np.ndarray, v0) -> LaplaceResult:
        beta, theta, phi = self.unpack(psi)
        if self.nagq > 1:
            return agq_loglik(self.design, beta, theta, phi, self.nagq, v0)
        return laplace_loglik(self.design, beta, theta, phi, self.reml, v0, self.zeta(psi))

    def _jumped(self, result) -> bool:
        """No result, a non-finite one, or -log L more than JUMP + 0.1% above the best so far."""
        if result is None or not np.isfinite(result.loglik):
            return True
        return -result.loglik > self.best[0] + JUMP + 1e-3 * abs(self.best[0])

    def __call__(self, psi: np.ndarray) -> float:
        psi = np.asarray(psi, float)
        try:
            result = self.laplace(psi)
        except INNER_FAILURES:
            value = np.inf
        else:
            value = -result.loglik if np.isfinite(result.loglik) else np.inf
            if np.isfinite(value) and (self.best is None or not self._jumped(result)):
                self.warm_start = result.v
            if np.isfinite(value) and (self.best is None or value < self.best[0]):
                self.best = (value, psi.copy(), result.v.copy())
        self.log.append((len(self.log) + 1, psi.copy(), value))
        return value

    @property
    def analytic_gradient(self) -> bool:
        """The gradient is analytic for the Laplace ML and REML log-likelihoods (see :func:`laplace.score`)."""
        return self.nagq == 1

    def gradient(self, psi: np.ndarray) -> np.ndarray:
        """Gradient of -log L: analytic for beta, theta, the dispersion and the zero-inflation coefficients
        (Laplace ML and REML), assembled block by block; central differences for quadrature."""
        psi = np.asarray(psi, float)
        gradient = np.zeros_like(psi)
        numerical = np.arange(len(psi))
        if self.analytic_gradient:
            try:
                result = self.laplace(psi)
                d_beta, d_theta = score(result)
                d_disp = self.design.disp_gradient(score_dispersion(result)) if self.layout.has("disp") else []
                d_zi = self.design.X_zi.T @ score_zero_inflation(result) if self.layout.has("zi") else []
            except (NotPositiveDefinite, np.linalg.LinAlgError, FloatingPointError):
                return np.zeros_like(psi)    # the value there is inf: the line search steps back
            gradient[:] = -self.layout.pack(beta=d_beta, theta=d_theta, disp=d_disp, zi=d_zi)
            # At theta_k = 0 the likelihood is flat in theta_k (it depends on theta_k^2), so the exact
            # derivative is 0 there; a forward difference sees the curvature and tells whether to leave.
            theta = self.layout.where("theta")
            numerical = theta.start + np.flatnonzero(~_free(psi, self.bounds())[theta])
        if len(numerical):
            gradient[numerical] = numdiff.partials(self, psi, numerical, self.layout.lower())
        return gradient

    def names(self) -> list[str]:
        return self.layout.names()

    def refit(self, fit, y, standard_errors: bool = True):
        """The fit of this objective's model to a new response: :func:`refit` (``GlmmFit.refit`` calls it)."""
        return refit(fit, y, standard_errors)

    def bounds(self) -> list[tuple[float, float]]:
        return self.layout.bounds()


def glmm(formula: str, data, family="gaussian", reml: bool = False, nagq: int = 1, weights=None,
         start: dict | None = None, verbose: bool = False, ziformula: str | None = None,
         dispformula: str | None = None):
    """Fit a generalized linear mixed model by maximum likelihood (Laplace or quadrature) or REML.

    Parameters
    ----------
    formula : str
        R / glmmTMB syntax, e.g. ``"cbind(germ, n - germ) ~ gen * extract + (1 | plate)"``.
    data : pandas.DataFrame
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"nbinom1"``, ``"nbinom2"``, ``"beta"``,
        ``"betabinomial"``, or an object such as ``gt.families.Gamma(link="log")``.
    reml : bool
        Integrate the fixed effects out with the random effects (glmmTMB's ``REML = TRUE``).
    nagq : int
        Adaptive Gauss-Hermite points (glmer's ``nAGQ``); above 1 only for one scalar random term.
    weights : str or array, optional
        Prior weights; for a binomial proportion response, the numbers of trials.
    start : dict, optional
        Starting values: ``{"beta": [...], "theta": [...], "sigma": s}``.
    verbose : bool
        Print the optimisation log while fitting.
    ziformula : str, optional
        Zero inflation, as glmmTMB's ``ziformula``: ``"~ 1"`` or ``"~ x + ..."`` (fixed effects), the logit of
        each observation's probability of a structural zero (:mod:`glmmteach.zeroinfl`); for the poisson,
        nbinom1, nbinom2 and binomial families. None or ``"~ 0"``: none.
    dispformula : str, optional
        A one-sided formula of fixed effects for the dispersion, ``"~ day"`` (glmmTMB's ``dispformula``): one
        dispersion per observation, the log of glmmTMB's dispersion parameter linear in the formula's columns
        (log sigma^2 for the gaussian, log shape = -2 log sigma for the Gamma, log sigma for nbinom1, nbinom2,
        beta and betabinomial). Its coefficients are ``fit.fixef_disp``. Default: one dispersion for all.

    Returns
    -------
    GlmmFit

    R: ``glmmTMB(formula, data, family, REML, weights, ziformula = ~ 1)``, ``glmer(formula, data, family, nAGQ)``.
    """
    with _one_blas_thread():   # small dense algebra: threads only cost time
        return _glmm(formula, data, family, reml, nagq, weights, start, verbose, ziformula, dispformula)


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process, found once (finding them takes a few milliseconds)."""
    return ThreadpoolController()


def _one_blas_thread():
    return _blas().limit(limits=1, user_api="blas")


def _glmm(formula, data, family, reml, nagq, weights, start, verbose, ziformula=None, dispformula=None):
    family = families.get(family)
    design = build(formula, data, family, weights, ziformula, dispformula)
    _check_nagq(design, nagq, reml)
    objective = Objective(design, reml, nagq)
    if _is_glm(design, reml):
        return finish(objective, _fit_glm(objective, start or {}, verbose), _rows_used(data, design))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # trial points may overflow: f = inf
        beta_glm, phi_glm = _glm_start(design)
        psi0 = _start(objective, start or {}, beta_glm, phi_glm)
        if reml:
            objective.warm_start = np.concatenate([beta_glm, np.zeros(design.q)])
        optimum = _optimise_on_cells(objective, psi0, verbose)
    return finish(objective, optimum, _rows_used(data, design))


def refit(fit, y, standard_errors: bool = True):
    """The same model fitted to a new response (lme4's ``refit(object, newresp)``).

    Only :math:`y` changes: :math:`X`, :math:`Z`, the offset, the weights and the binomial trials stay,
    and the optimiser starts from the estimates :math:`\\hat\\psi` of ``fit`` and its conditional
    modes (a model without random effects: IRLS from the fit's estimates, as its first fit). This is the
    step a parametric bootstrap repeats: simulate :math:`y^*` from the fitted model, refit, recompute a
    statistic.

    Parameters
    ----------
    fit : GlmmFit
    y : array of shape (N,)
        The new response, one value per observation the fit used, on the scale of ``fit.design.y``
        (binomial: success counts out of the same trials), e.g. a column of ``fit.simulate()``.
    standard_errors : bool
        ``False`` skips what only the standard errors need: the Newton steps on a numerical Hessian
        after L-BFGS-B, and the covariance of the estimates. The estimates are then those of the
        L-BFGS-B optimum (tests/test_results.py checks that they match the polished ones), and a refit
        is up to three times faster: for a bootstrap, which needs no standard errors.

    Returns
    -------
    GlmmFit
        Its ``data`` are the original rows (covariates and grouping columns; the response column
        there is still the old one).
    """
    design = fit.design
    y = np.asarray(y, float).ravel()
    if y.shape != design.y.shape:
        raise ValueError(f"refit needs one response value per observation used by the fit ({design.nobs}); "
                         f"got {y.size}")
    design.family.check_response(y, design.n, name=design.response_name)
    objective = Objective(replace(design, y=y), fit.objective.reml, fit.objective.nagq,
                          warm_start=fit.optimum.v.copy(), layout=fit.objective.layout)
    with _one_blas_thread(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        optimum = None
        if _is_glm(design, fit.objective.reml):        # IRLS, from the fit's estimates
            optimum = _fit_glm(objective, {"beta": fit.beta, "sigma": fit.sigma}, verbose=False)
        if optimum is None or not optimum.converged:
            optimum = _optimise_on_cells(objective, np.array(fit.psi, float), verbose=False, polish=standard_errors)
        return finish(objective, optimum, fit.data, covariance=standard_errors)


def _optimise_on_cells(objective: Objective, psi0: np.ndarray, verbose: bool, polish: bool = True) -> "Optimum":
    """:func:`_optimise` on the pseudo-rows of :func:`glmmteach.cells.compressed` (a Gaussian model with the
    identity link whose rows share the levels of its grouping factors): the same :math:`-\\log L`, sharing the
    objective's log, layout and warm start; else on the objective itself. The optimum keeps the objective it
    ran on (``criterion``), for :func:`finish`."""
    design = cells.compressed(objective.design) if objective.nagq == 1 else None
    if design is None:
        return _optimise(objective, psi0, verbose, polish=polish)
    criterion = Objective(design, objective.reml, objective.nagq, log=objective.log,
                          warm_start=objective.warm_start, layout=objective.layout)
    return replace(_optimise(criterion, psi0, verbose, polish=polish), criterion=criterion)


def _is_glm(design: Design, reml: bool) -> bool:
    """A model without random effects, zero inflation or dispersion formula, fitted by ML: IRLS fits it."""
    return design.q == 0 and not reml and not design.zero_inflated and design.disp_formula is None


def _rows_used(data, design: Design):
    """The rows of ``data`` that the fit used: no missing value in the formula's columns or the weights (as
    :func:`glmmteach.design.build` found them, ``design.complete``)."""
    return data.loc[design.complete]


def _check_nagq(design: Design, nagq: int, reml: bool) -> None:
    if not isinstance(nagq, (int, np.integer)) or nagq < 1:
        raise ValueError(f"nagq must be a whole number >= 1; got {nagq!r}")
    if nagq == 1:
        return
    if design.zero_inflated:
        raise ValueError(f"nagq = {nagq} (adaptive quadrature) is not available with a ziformula; use nagq = 1 "
                         "(Laplace, as glmmTMB)")
    if len(design.terms) != 1 or design.terms[0].k != 1:
        raise ValueError(f"nagq = {nagq} (adaptive quadrature) needs exactly one scalar random-effect term "
                         f"such as (1 | g); this model has "
                         + (", ".join(f"({' + '.join(t.names)} | {t.group})" for t in design.terms) or "none")
                         + ". Use nagq = 1 (Laplace).")
    if reml:
        raise ValueError("nagq > 1 is for maximum likelihood; use reml=False (as glmer) or nagq = 1")


def _start(objective: Objective, start: dict, beta: np.ndarray, phi: float) -> np.ndarray:
    """Starting values: beta and phi of the GLM without random effects (unless given in ``start``),
    and the random-effect SDs from a moment estimate on that GLM fit (:func:`_sd_start`). They go into the
    blocks of psi (``objective.layout``, :func:`glmmteach.params.layout`), which return them as one vector."""
    design = objective.design
    beta = np.asarray(start.get("beta", beta), float)
    phi = float(start.get("sigma", phi))
    theta = np.asarray(start["theta"], float) if "theta" in start else _sd_start(design, beta, phi)
    if len(beta) != design.X.shape[1] or len(theta) != design.n_theta:
        raise ValueError(f"start needs {design.X.shape[1]} beta values and {design.n_theta} theta values")
    disp = design.disp_start(phi)
    objective.layout = params.layout(design, objective.reml, beta, theta, disp, _zi_start(design, beta, phi))
    return objective.layout.start()


def _zi_start(design: Design, beta: np.ndarray, phi: float) -> np.ndarray:
    """The zero-inflation coefficients start with every observation at the same :math:`\\pi_0`: the share of
    zeros beyond what the GLM fit without zero inflation expects (:func:`glmmteach.zeroinfl.start`)."""
    if not design.zero_inflated:
        return np.zeros(0)
    mu = design.family.link.inverse(design.X @ beta + design.offset)
    zeta0 = zeroinfl.start(design.family, design.y, mu, per_observation(design, phi), design.n)
    return np.linalg.lstsq(design.X_zi, np.full(design.nobs, zeta0), rcond=None)[0]


def _sd_start(design: Design, beta: np.ndarray, phi: float) -> np.ndarray:
    """theta from the GLM fit, on the scale of the linear predictor: a moment estimate by group.

    At the GLM's :math:`\\eta = X\\beta + o`, with :math:`g_i = \\partial\\ell_i/\\partial\\eta_i` and
    :math:`D_i = -\\partial^2\\ell_i/\\partial\\eta_i^2` (weighted), each level l of a term with columns
    :math:`x_i` gets the one-step estimate of its own effect, :math:`\\hat u_l = A_l^{-1} r_l` with
    :math:`A_l = \\sum_{i \\in l} D_i x_i x_i^\\top`, :math:`r_l = \\sum_{i \\in l} g_i x_i`, whose sampling
    variance is about :math:`A_l^{-1}`. So :math:`\\widehat{\\mathrm{Var}}(u_j) = \\overline{\\hat u_{lj}^2} -
    \\overline{(A_l^{-1})_{jj}}`, over the levels where :math:`A_l` is invertible. Each SD starts there, but
    at least at a tenth of the typical standard error :math:`\\surd\\overline{(A_l^{-1})_{jj}}` and at most
    10 SDs of :func:`_theta_start`'s unit (1 on the scale of eta, sigma for gaussian with the identity link),
    with no correlation. A constant start (0.5) is far too large where eta is about 0.6 (the inverse link)."""
    response = Response.at(design, design.X @ beta + design.offset, per_observation(design, phi))
    D, g = np.maximum(response.D, 0.0), response.gradient
    scale = design.family.eta_scale(phi)
    unit, theta, offset = _theta_start(design, scale), [], 0
    for term in design.terms:
        k, levels = term.k, len(term.levels)
        unit_sd = np.diag(term.structure.template(unit[offset:offset + term.n_theta]))
        offset += term.n_theta
        Z = design.Z[:, term.start:term.start + levels * k].tocsc()
        columns = [Z[:, j::k] for j in range(k)]                 # n x levels: column j of the term, by level
        A = np.empty((levels, k, k))
        for j in range(k):
            for l in range(j + 1):
                A[:, j, l] = A[:, l, j] = np.asarray(columns[j].multiply(columns[l]).T @ D).ravel()
        r = np.column_stack([columns[j].T @ g for j in range(k)])
        eigen = np.linalg.eigvalsh(A)
        usable = eigen[:, 0] > 1e-10 * np.maximum(eigen[:, -1], 1e-300)
        sd = unit_sd.copy()
        if usable.sum() >= 2:
            inverse = np.linalg.inv(A[usable])
            u = np.einsum("lij,lj->li", inverse, r[usable])
            noise = np.diagonal(inverse, axis1=1, axis2=2).mean(axis=0)
            variance = np.mean(u ** 2, axis=0) - noise
            sd = np.sqrt(np.maximum(variance, 0.01 * noise))
        theta.append(term.structure.start(np.clip(sd, 1e-3 * unit_sd, 10 * unit_sd)))
    return np.concatenate(theta) if theta else np.zeros(0)


def _theta_start(design: Design, sd: float) -> np.ndarray:
    """theta with each random-effect SD at ``sd`` on the scale of the linear predictor and no correlation:
    column j of a term gets the SD :math:`sd/\\sqrt{\\overline{x_j^2}}` (``sd`` for an intercept), which its
    covariance structure turns into its entries of theta. The mean is weighted by the prior weights, so that
    frequency weights start where the expanded data would."""
    unit = []
    for term in design.terms:
        Z = design.Z[:, term.start:term.start + len(term.levels) * term.k]
        weighted = np.asarray(Z.multiply(Z).T @ design.weights).ravel()
        mean_square = weighted.reshape(-1, term.k).sum(axis=0) / np.sum(design.weights)
        size = 1 / np.sqrt(np.where(mean_square > 0, mean_square, 1.0))
        unit.append(term.structure.start(sd * size))
    return np.concatenate(unit) if unit else np.zeros(0)


def _glm_start(design: Design) -> tuple[np.ndarray, float]:
    """Maximum likelihood of the model without random effects: IRLS on beta, then phi given beta (Brent's
    method on the log-likelihood, :func:`glmmteach.glm.best_phi`)."""
    phi = _phi_start(design)
    beta, reached = _beta_start(design, phi)
    if reached is None:
        beta = glm.irls(design, beta, phi, log=[])
    if design.family.has_phi:
        phi = glm.best_phi(design, beta, phi)
    return beta, phi


def _phi_start(design: Design) -> float:
    """The SD of y for the gaussian family, weighted by the prior weights (so that frequency weights start
    where the expanded data would); 1 otherwise."""
    return design.family.start_phi(design.y, design.weights) if design.family.has_phi else 1.0


def _fit_glm(objective: Objective, start: dict, verbose: bool) -> "Optimum":
    """A model without random effects, by IRLS (:func:`glmmteach.glm.fit`); its iterations make the
    optimisation log, and its observed information is kept for the standard errors."""
    design = objective.design
    phi = float(start.get("sigma", _phi_start(design)))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        steps, reached = [], None      # (beta, phi, log-likelihood) of each IRLS iteration, from the start
        if "beta" in start:
            beta = np.asarray(start["beta"], float)
        else:
            beta, reached = _beta_start(design, phi, steps, _normal_equations)
        if len(beta) != design.X.shape[1]:
            raise ValueError(f"start needs {design.X.shape[1]} beta values")
        beta, phi, information, gradient = glm.fit(design, beta, phi, steps, value=reached)
    layout = objective.layout          # beta, then log(phi) for a family with a dispersion parameter

    def as_psi(beta, phi):
        return layout.pack(beta=beta, disp=np.full(layout.where("disp").stop - layout.where("disp").start,
                                                   np.log(phi)))
    for beta_k, phi_k, value in steps:
        objective.log.append((len(objective.log) + 1, as_psi(beta_k, phi_k), -value))
        if verbose:
            print(f"IRLS iteration {len(objective.log):3d}   -logLik = {-value:.6f}")
    psi = as_psi(beta, phi)
    converged = bool(np.all(np.isfinite(gradient)) and np.max(np.abs(gradient), initial=0) < 1e-3)
    return Optimum(psi, converged, "IRLS", (psi.copy(), np.ones(len(psi), bool), information))


def _least_squares(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The least-squares solution of :math:`A\\beta \\approx b` from the SVD of A (numpy's ``lstsq``)."""
    return np.linalg.lstsq(A, b, rcond=None)[0]


def _normal_equations(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The least-squares solution from the normal equations, :math:`(A^\\top A)\\beta = A^\\top b`: a p x p solve,
    a fraction of the SVD's cost for N >> p, and as good a start (X has full rank; IRLS refines it). Where
    :math:`A^\\top A` is singular (rows of weight 0), the SVD's solution."""
    try:
        return np.linalg.solve(A.T @ A, A.T @ b)
    except np.linalg.LinAlgError:
        return _least_squares(A, b)


def _beta_start(design: Design, phi: float, log: list | None = None,
                least_squares=_least_squares) -> tuple[np.ndarray, float | None]:
    """Least squares of g(mu_start) on X, weighted by the prior weights, where it gives every mean inside the
    family's range; else, or if IRLS from it ends below the log-likelihood of the second candidate, the fit
    of the constant g(mean of mu_start), that candidate. (With the inverse link, a y near 0 makes g(y) = 1/y
    huge, and IRLS from its least squares can run off to means near 0.) ``least_squares``: how those two
    fits are solved (:func:`_least_squares`, the SVD, for the starts of mixed models, whose optimiser paths
    depend on its last digits; the GLM's own fit, polished by Newton steps, takes :func:`_normal_equations`).

    Returns (start, value): where IRLS from the winning least-squares candidate converged, that is where it
    ended, with the log-likelihood there (its iterations are appended to ``log``, if given), so that the fit
    does not repeat them; else the candidate itself and None."""
    family = design.family
    mu_start = family.start_mu(design.y, design.n)
    root_w = np.sqrt(design.weights)
    candidates = []
    for target in (family.link.link(mu_start), np.full(design.nobs, family.link.link(np.mean(mu_start)))):
        with np.errstate(all="ignore"):
            beta0 = least_squares(root_w[:, None] * design.X, root_w * (target - design.offset))
            mu = family.link.inverse(design.X @ beta0 + design.offset)
            if np.all(np.isfinite(family.loglik(design.y, mu, phi, design.n))):
                candidates.append(beta0)
    if len(candidates) == 2:
        with np.errstate(all="ignore"):
            steps = []
            reached, value, converged = glm.irls_to_convergence(design, candidates[0], phi, steps)
            if not value >= glm.loglik(design, candidates[1], phi):
                return candidates[1], None
            if converged:
                if log is not None:
                    log.extend(steps)
                return reached, value
    if candidates:
        return candidates[0], None
    raise ValueError(f"no starting values give valid means for the {family.name} family with the "
                     f"'{family.link.name}' link; try another link (for Gamma, link='log')")


@dataclass
class Optimum:
    """Where the outer optimisation stopped: :math:`\\hat\\psi`, whether it converged, the optimiser's message,
    and the last Hessian of the Newton polish, ``(psi, free, H)`` (None without polish), which the covariance
    of the estimates reuses when it was taken at :math:`\\hat\\psi`."""

    psi: np.ndarray
    converged: bool
    message: str
    hessian: tuple | None = None
    #: the objective the optimiser ran on, where it is not the fit's own (the pseudo-rows of glmmteach.cells)
    criterion: "Objective | None" = field(default=None, repr=False)


def _optimise(objective: Objective, psi0: np.ndarray, verbose: bool, rounds: int = 3,
              polish: bool = True) -> Optimum:
    """:func:`_descend` from psi0; then, while the optimum has an SD at 0 and a point just off that boundary
    is better (:func:`_off_boundary`), descend again from there and keep the better optimum; and if it has not
    converged, try two more starts (:func:`_restarts`)."""
    if len(psi0) == 0:
        objective(psi0)
        return Optimum(psi0, True, "nothing to optimise")
    optimum = _hold_above_floor(objective, _descend(objective, psi0, verbose, rounds, polish), psi0, verbose,
                                rounds, polish)
    for _ in range(2):
        start = _off_boundary(objective, optimum.psi)
        if start is None:
            break
        candidate = _descend(objective, start, verbose, rounds, polish)
        if not objective(candidate.psi) < objective(optimum.psi):
            break
        optimum = candidate
    if not optimum.converged and not vanishing_dispersion(objective, optimum.psi):
        optimum = _hold_above_floor(objective, _restarts(objective, psi0, optimum, verbose, rounds, polish), psi0,
                                    verbose, rounds, polish)
    return optimum


def _hold_above_floor(objective: Objective, optimum: Optimum, psi0: np.ndarray, verbose: bool, rounds: int,
                      polish: bool) -> Optimum:
    """The optimum, or, where its dispersion ran below :func:`_dispersion_floor`, the descent again with log phi
    held at that floor (from a restart as from the first descent)."""
    floor = _dispersion_floor(objective, optimum.psi, psi0)
    return optimum if floor is None else _descend_above_floor(objective, optimum.psi, floor, verbose, rounds, polish)


#: The dispersion "vanishes" below this fraction of its start, the dispersion of the model without random effects
DISPERSION_FLOOR = 1e-3


def _dispersion_floor(objective: Objective, psi: np.ndarray, psi0: np.ndarray) -> float | None:
    """log phi's lower limit when the residual variation has run to 0 (else None): with a random effect for
    every observation (``cs(day + 0 | fish)``: one per fish and day) the likelihood can rise toward a limit as
    phi -> 0, where an optimiser stops anywhere (glmmTMB: "false convergence") and the Hessian in log phi is
    flat. For the gaussian (identity link, phi = sigma) and the Gamma (log link, phi its coefficient of
    variation), phi is a residual SD on the scale of eta; once it is below :data:`DISPERSION_FLOOR` times its
    start (the GLM's, all the variation), log phi is held at that limit, a bound like an SD's bound at 0."""
    design, layout = objective.design, objective.layout
    family = design.family
    usable = (family.phi_is_sd_of_eta()
              and layout.has("disp") and design.X_disp.shape[1] == 1 and np.all(design.X_disp == 1)
              and np.isneginf(layout.lower()[layout.where("disp")]).all() and design.q > 0)
    if not usable:
        return None
    floor = float(np.log(DISPERSION_FLOOR) + psi0[layout.where("disp")][0])
    return floor if psi[layout.where("disp")][0] < floor else None


def _descend_above_floor(objective: Objective, psi: np.ndarray, floor: float, verbose: bool, rounds: int,
                         polish: bool) -> Optimum:
    """:func:`_descend` again from psi with log phi bounded below by ``floor`` (and started there). The best
    point seen so far is forgotten: it lies below the floor, outside the parameters now allowed (and where phi
    has run to 0 the computed log-likelihood there may be nothing but rounding error)."""
    objective.best = None
    blocks = [params.Block(b.kind, b.names, np.full(b.size, floor), np.full(b.size, floor)) if b.kind == "disp"
              else b for b in objective.layout.blocks]
    objective.layout = params.Layout(blocks)
    start = np.array(psi, float)
    start[objective.layout.where("disp")] = floor
    return _descend(objective, start, verbose, rounds, polish)


#: A dispersion this many times smaller than at the start has run towards 0 (:func:`vanishing_dispersion`)
VANISHED = 1e-2


def vanishing_dispersion(objective: Objective, psi: np.ndarray) -> tuple[float, float] | None:
    """(phi at the start, phi at psi) when the dispersion :math:`\\phi` (the residual SD of a Gaussian,
    the CV of a Gamma) has fallen below :data:`VANISHED` times its starting value, else None.

    That happens when the random effects take all the variation from the residual: a term that gives every
    observation its own effect (``cs(day + 0 | fish)`` with one weighing per fish and day) is not identified
    together with a residual, and the likelihood keeps rising towards :math:`\\phi = 0`, a boundary the
    optimiser cannot reach (glmmTMB's "false convergence"). Restarting from other SDs does not help.
    R: no equivalent; glmmTMB reports ``false convergence (8)`` for such a fit."""
    if not objective.log or not objective.layout.has("disp"):
        return None
    start = objective.unpack(objective.log[0][1])[2].max()
    now = objective.unpack(np.asarray(psi, float))[2].max()
    return (float(start), float(now)) if now < VANISHED * start else None


def _restarts(objective: Objective, psi0: np.ndarray, optimum: Optimum, verbose: bool, rounds: int,
              polish: bool) -> Optimum:
    """Only for a fit that did not converge: descend again from psi0 with every random-effect SD ten times
    smaller and ten times larger, and keep the lowest -log L (at equal values, within 1e-6, a converged one)."""
    theta, best_value = objective.layout.where("theta"), objective(optimum.psi)
    for factor in (0.1, 10.0):
        start = psi0.copy()
        start[theta] *= factor
        candidate = _descend(objective, start, verbose, rounds, polish)
        value = objective(candidate.psi)
        if value < best_value - 1e-6 or (value < best_value + 1e-6 and candidate.converged and not optimum.converged):
            optimum, best_value = candidate, min(value, best_value)
    return optimum


def _descend(objective: Objective, psi0: np.ndarray, verbose: bool, rounds: int = 3,
             polish: bool = True) -> Optimum:
    """L-BFGS-B in scaled parameters :math:`z = T^{-1}\\psi` (see :func:`_scaling`), then Newton steps on
    a numerical Hessian. A round that ends short of the optimum (a line search that ran into means
    outside the family's range, say) is followed by another, rescaled, from where it stopped or from the
    best point the objective has seen if that is lower. Converged: :func:`_converged`."""
    psi, best, hessian = psi0, np.inf, None
    for _ in range(rounds):
        psi, message, hessian, inverse = _lbfgsb_round(objective, psi, verbose, polish)
        value = objective(psi)
        converged = bool(np.isfinite(value)) and _converged(objective, psi, hessian, inverse)
        if objective.best is not None and objective.best[0] < value - 1e-6:
            psi, converged = objective.best[1].copy(), False        # the optimiser ended above a point it saw
        elif converged or not value < best - 1e-8:
            break
        best = min(value, objective.best[0]) if objective.best is not None else value
    return Optimum(psi, converged, str(message), hessian)


#: Converged when the Newton decrement g'H^{-1}g (twice the predicted gain of a Newton step) is below this
DECREMENT = 1e-5


def _converged(objective: Objective, psi: np.ndarray, hessian, inverse) -> bool:
    """One scale-free criterion, the Newton decrement :math:`\\lambda^2 = g^\\top H^{-1} g` over the free
    parameters below :data:`DECREMENT`: the log-likelihood a Newton step would still gain is
    :math:`\\lambda^2/2`, whatever the parameters' scales. H is the polish's numerical Hessian (it must be
    positive definite: not converged otherwise) or, without polish, L-BFGS-B's inverse-Hessian
    approximation ``inverse`` (a function of the gradient). At a bound, the one-sided derivative must not
    point away from it by more than 1e-3 per unit SD on the scale of eta (what the probes of
    :func:`_off_boundary` then check further away)."""
    gradient = objective.gradient(psi)
    free = _free(psi, objective.bounds())
    if not np.all(np.isfinite(gradient)):
        return False
    unit, sd_unit = np.ones(len(psi)), _theta_start(objective.design, _sd_scale(objective, psi))
    unit[objective.layout.where("theta")] = np.where(sd_unit > 0, sd_unit, 1.0)
    if np.any(~free & (-gradient * unit > 1e-3)):
        return False
    g = gradient[free]
    if not len(g):
        return True
    if hessian is not None and np.array_equal(hessian[1], free):
        try:
            L = np.linalg.cholesky(hessian[2])
        except np.linalg.LinAlgError:
            return False
        w = np.linalg.solve(L, g)
        return bool(w @ w < DECREMENT)
    if inverse is not None:
        return bool(g @ inverse(np.where(free, gradient, 0.0))[free] < DECREMENT)
    return bool(np.max(np.abs(g)) < 1e-3)


def _off_boundary(objective: Objective, psi: np.ndarray, sizes=(0.01, 0.1, 0.5)) -> np.ndarray | None:
    """A point next to the boundary where :math:`-\\log L` is lower than at psi, or None.

    For each diagonal entry :math:`T_{jj}` of a Cholesky template at 0 (an SD at 0, or with j > 1 a
    correlation at +-1), probe :math:`T_{jj}` = 0.01, 0.1 and 0.5 SDs on the scale of the linear predictor,
    with the entries below it in column j as they are and with their signs flipped. At :math:`T_{jj} = 0`
    both give the same covariance :math:`TT^\\top` (column j enters it as :math:`t_j t_j^\\top`), but the bound
    :math:`T_{jj} \\ge 0` lets the optimiser leave the boundary only on one side; the flip is the other
    (the check lme4's and glmmTMB's troubleshooting guides suggest, a restart away from the boundary)."""
    p, design = objective.p_outer, objective.design
    at_bound = np.flatnonzero(~_free(psi, objective.bounds())[p:p + design.n_theta])
    if not len(at_bound):
        return None
    unit = _theta_start(design, _sd_scale(objective, psi))
    best, best_value = None, objective(psi)
    for k in at_bound:
        below = p + _below_diagonal(design, k)
        for sign in ((1.0, -1.0) if np.any(psi[below] != 0) else (1.0,)):
            for size in sizes:
                candidate = psi.copy()
                candidate[below] *= sign
                candidate[p + k] = size * unit[k]
                value = objective(candidate)
                if value < best_value - 1e-6:
                    best, best_value = candidate, value
    return best


def _below_diagonal(design: Design, k: int) -> np.ndarray:
    """The theta indices of the entries below the diagonal entry theta_k in its column of its term's template
    (none for a diagonal structure, or one whose theta is not T's entries): the structure's ``flip_partners``."""
    offset = 0
    for term in design.terms:
        if k < offset + term.n_theta:
            return offset + term.structure.flip_partners(k - offset)
        offset += term.n_theta
    raise IndexError(k)


def _sd_scale(objective: Objective, psi: np.ndarray) -> float:
    """theta is on the scale of sigma for the gaussian family with the identity link, else of eta
    (the family's ``eta_scale``)."""
    return objective.design.family.eta_scale(objective.unpack(psi)[2])


def _lbfgsb_round(objective: Objective, psi0: np.ndarray, verbose: bool, polish: bool = True):
    T = _scaling(objective, psi0)

    def value_and_gradient(z):
        psi = T @ z
        return objective(psi), T.T @ objective.gradient(psi)

    def report(intermediate_result):
        if verbose:
            print(f"iteration {len(objective.log):5d}   -logLik = {intermediate_result.fun:.6f}")

    # T is diagonal and positive where psi has a bound (theta_k >= 0), so z has the same bounds.
    result = minimize(value_and_gradient, np.linalg.solve(T, psi0), jac=True, method="L-BFGS-B",
                      bounds=objective.bounds(), callback=report,
                      options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8})
    psi = T @ result.x
    if not polish:        # L-BFGS-B's inverse Hessian in z, H_z^{-1}, gives H_psi^{-1} g = T H_z^{-1} T'g
        return psi, result.message, None, lambda g: T @ result.hess_inv.matvec(T.T @ g)
    psi, hessian = _newton_polish(objective, psi)
    return psi, result.message, hessian, None


def _scaling(objective: Objective, psi0: np.ndarray) -> np.ndarray:
    """The matrix T of :math:`\\psi = Tz`, chosen so that the curvature of :math:`-\\log L` in z is near the
    identity at the start (L-BFGS-B is not invariant to the scale of its parameters; here a fixed effect
    of a covariate in the hundreds and an SD of a random slope would differ by orders of magnitude).

    * beta: :math:`T = R^{-1}`, :math:`R^\\top R = X^\\top D X - X^\\top D M A^{-1} M^\\top D X`, the
      information about beta given theta (its Schur complement in :math:`H_v`, at the start);
    * theta and log(phi): :math:`T_{kk} = 1/\\sqrt{|H_{kk}|}` (:func:`_curvature`).

    For quadrature (nagq > 1), whose gradient is numerical, the curvatures are those of the Laplace
    approximation that it refines.

    T is diagonal outside the beta block, so the bounds :math:`\\theta_k \\ge 0` stay bounds :math:`z_k \\ge 0`.
    """
    p, T = objective.p_outer, np.eye(len(psi0))
    laplace = objective if objective.analytic_gradient else Objective(objective.design, objective.reml,
                                                                       layout=objective.layout)
    try:
        result = laplace.laplace(psi0)
        if p:
            T[:p, :p] = np.linalg.inv(np.linalg.cholesky(_beta_information(result)).T)
        curvature = _curvature(laplace, psi0, np.arange(p, len(psi0)))
    except (NotPositiveDefinite, np.linalg.LinAlgError, FloatingPointError):
        return np.eye(len(psi0))
    usable = np.isfinite(curvature) & (curvature > 0)
    T[p:, p:][np.diag_indices(len(psi0) - p)] = 1 / np.sqrt(np.where(usable, curvature, 1.0))
    return T


def _beta_information(result: LaplaceResult) -> np.ndarray:
    """:math:`X^\\top D X - B^\\top A^{-1} B`, :math:`B = M^\\top D X`: minus the Hessian of the penalised
    log-likelihood in beta once the conditional modes have followed (the log-determinant's change left out)."""
    design, D = result.problem.design, result.response.D
    information = design.X.T @ (D[:, None] * design.X)
    if design.q == 0:
        return information
    B = result.problem.M.weighted_cross(D, design.X)
    return information - B.T @ result.factor.A.solve(B)


def _curvature(objective: Objective, psi: np.ndarray, index: np.ndarray) -> np.ndarray:
    """:math:`|\\partial^2(-\\log L)/\\partial\\psi_k^2|` for k in ``index``, by forward differences of the
    analytic gradient. Its size only: far above its estimate, an SD is where :math:`-\\log L` is concave."""
    columns = numdiff.partials(objective.gradient, psi, index, central=False)
    return np.abs(columns[np.arange(len(index)), index]) if len(index) else np.zeros(0)


def _free(psi: np.ndarray, bounds) -> np.ndarray:
    """Parameters not sitting on their lower bound."""
    return np.array([lo is None or x > lo + 1e-6 for x, (lo, _) in zip(psi, bounds)], bool)


def _newton_polish(objective: Objective, psi: np.ndarray, steps: int = 4) -> tuple[np.ndarray, tuple | None]:
    """Newton steps :math:`\\psi \\leftarrow \\psi - H^{-1}g` on the free parameters, each kept only if it
    lowers the objective. Stops once a step is below 1e-4 (what remains is then of order 1e-8), or once the step
    taken was predicted to gain less than 1e-10 in log L (:math:`g^\\top H^{-1} g/2`): along a direction where
    log L is flat, as for a zero-inflation probability running to 0, steps stay large and gain nothing.
    Returns the new psi and the last Hessian, ``(psi, free, H)``, for the covariance of the estimates."""
    best, last = objective(psi), None
    for _ in range(steps):
        free = _free(psi, objective.bounds())
        if not free.any():
            break
        gradient = objective.gradient(psi)[free]
        hessian = numdiff.hessian(objective.gradient, psi, np.flatnonzero(free))
        last = (psi.copy(), free, hessian)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            break
        candidate = psi.copy()
        candidate[free] -= step
        value = objective(candidate)
        if not value < best:
            break
        psi, best = candidate, value
        if np.max(np.abs(step)) < 1e-4 or gradient @ step < 2e-10:
            break
    return psi, last


# ---- the finished fit ---------------------------------------------------------------------------------
def finish(objective: Objective, optimum: Optimum, data=None, covariance: bool = True) -> GlmmFit:
    """The fitted model, complete: the inner problem evaluated once more at :math:`\\hat\\psi`, the estimates,
    their covariance (unless ``covariance=False``), the rows of data used and the optimisation log; then the
    warnings a student should see (no convergence, a singular fit, a Hessian that is not positive definite).
    Where the optimiser ran on the same function on fewer rows (``optimum.criterion``,
    :func:`_optimise_on_cells`), that objective gives this one its layout and warm start, and the covariance
    its derivatives."""
    criterion = optimum.criterion or objective
    objective.layout, objective.warm_start, objective.best = criterion.layout, criterion.warm_start, criterion.best
    psi = optimum.psi
    result = objective.laplace(psi)
    beta, theta, phi = objective.unpack(psi)
    if objective.reml:
        beta = result.beta_in
    cov_beta, cov_zi, cov_disp = _covariances(criterion, optimum, result) if covariance else (None, None, None)
    no_standard_errors = cov_beta is not None and not (_has_standard_errors(cov_beta) and _has_standard_errors(cov_zi))
    fit = GlmmFit(objective.design, objective, psi, result, np.asarray(beta), np.asarray(theta), phi, cov_beta,
                  optimum.converged and not no_standard_errors, optimum.message, data, objective.log,
                  beta_zi=objective.layout.unpack(psi).zi, cov_zi=cov_zi, cov_disp=cov_disp)
    _warn_if_problematic(fit, no_standard_errors)
    return fit


def _has_standard_errors(cov_beta: np.ndarray) -> bool:
    """Every entry finite and every variance on the diagonal positive."""
    return bool(np.all(np.isfinite(cov_beta)) and np.all(np.diag(cov_beta) > 0))


def _warn_if_problematic(fit: GlmmFit, no_standard_errors: bool = False) -> None:
    """A NaN or negative-variance standard error is never reported as converged: the warning says why."""
    vanished = None if fit.converged and not no_standard_errors else vanishing_dispersion(fit.objective, fit.psi)
    if vanished:
        start, now = vanished
        warnings.warn(f"the fit did not converge: the dispersion ran towards 0 (from {start:.3g} at the start to "
                      f"{now:.3g}). The random effects have taken all the variation from the residual, as when a "
                      "term gives every observation its own effect (cs(day + 0 | fish) with one weighing per "
                      "fish and day): the residual and those effects are not both identified, and the maximum "
                      "lies at a dispersion of 0, which the optimiser cannot reach (glmmTMB reports 'false "
                      "convergence'). Standard errors there are not to be trusted; use a structure with fewer "
                      "parameters.", ConvergenceWarning, stacklevel=caller_stacklevel())
    elif no_standard_errors:
        warnings.warn("the fit is not reported as converged: at the point where the optimiser stopped, the "
                      "Hessian of the log-likelihood is not positive definite, so some standard errors are "
                      "NaN (a variance would be negative). Either some parameters are not identified by the "
                      "data, or this is not a maximum. Try a simpler model or other starting values "
                      "(start=...).", ConvergenceWarning, stacklevel=caller_stacklevel())
    elif not fit.converged:
        warnings.warn("the fit did not converge: the optimiser stopped before the log-likelihood was at "
                      "its maximum. Try other starting values (start=...) or a simpler model.",
                      ConvergenceWarning, stacklevel=caller_stacklevel())
    for message in fit.singular_terms():
        warnings.warn(message, ConvergenceWarning, stacklevel=caller_stacklevel())


def _covariances(objective: Objective, optimum: Optimum, result: LaplaceResult) -> tuple[np.ndarray, np.ndarray]:
    """Covariance of the fixed effects, covering the uncertainty in theta as glmmTMB's ``sdreport``, of the
    zero-inflation coefficients (an empty matrix without them) and of the dispersion coefficients (the blocks
    of V, the inverse Hessian of :math:`-\\log L` in psi).

    ML: the beta block of the inverse Hessian of :math:`-\\log L(\\beta, \\theta, \\phi, \\beta_{zi})`.
    REML: :math:`[H_v^{-1}]_{\\beta\\beta} + J V J^\\top`, where :math:`V` is the inverse Hessian of
    :math:`-\\log L_R(\\theta, \\phi, \\beta_{zi})` and :math:`J = \\partial\\hat\\beta/\\partial(\\theta, \\log\\phi,
    \\beta_{zi})`. The zero-inflation block is that of V in both. Parameters at a bound (a variance estimated at
    zero) are held fixed.
    """
    psi, p = optimum.psi, objective.design.X.shape[1]
    free = _free(psi, objective.bounds()) if len(psi) else np.zeros(0, bool)
    V = _inverse_hessian(objective, optimum, free)
    cov_zi, cov_disp = (_block_covariance(V, free, objective.layout.where(kind)) for kind in ("zi", "disp"))
    if not objective.reml:
        return V[:p, :p], cov_zi, cov_disp    # beta has no bounds, so it leads the free parameters
    H_inverse = result.factor.inverse_beta_block()
    if not free.any():
        return H_inverse, cov_zi, cov_disp
    J = numdiff.partials(lambda x: objective.laplace(x).beta_in, psi, np.flatnonzero(free)).T
    return H_inverse + J @ V @ J.T, cov_zi, cov_disp


def _block_covariance(V: np.ndarray, free: np.ndarray, where: slice) -> np.ndarray:
    """The block of psi's entries ``where`` in V (the inverse Hessian over the free entries); an entry held at a
    bound (a residual dispersion at its lower limit) has variance 0."""
    entries = np.arange(len(free))[where]
    kept = free[entries]
    out = np.zeros((len(entries), len(entries)))
    position = np.searchsorted(np.flatnonzero(free), entries[kept])
    out[np.ix_(kept, kept)] = V[np.ix_(position, position)]
    return out


def _inverse_hessian(objective: Objective, optimum: Optimum, free: np.ndarray) -> np.ndarray:
    """The inverse Hessian of :math:`-\\log L` over the free parameters: the polish's last Hessian if it was
    taken within 1e-4 of :math:`\\hat\\psi` over the same parameters, else a new one; NaN if not positive definite."""
    if not free.any():
        return np.zeros((0, 0))
    psi, H = optimum.psi, None
    if optimum.hessian is not None:
        at, was_free, last = optimum.hessian
        if np.array_equal(was_free, free) and np.max(np.abs(at - psi), initial=0.0) < 1e-4:
            H = last
    if H is None:
        H = numdiff.hessian(objective.gradient, psi, np.flatnonzero(free))
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return np.full(H.shape, np.nan)
    return np.linalg.inv(H)
