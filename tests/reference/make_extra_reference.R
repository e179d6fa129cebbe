# More reference fits from glmmTMB and lme4, beyond the lesson models of make_reference.R.
# Debian: r-base-core r-cran-lme4 r-cran-glmmtmb r-cran-jsonlite.
#
# Each data set is simulated here with its own set.seed, rounded so that its CSV holds the exact values, written to
# tests/reference/data/, then READ BACK from that CSV and fitted, so R and the Python tests see the same numbers.
# Writes one JSON per case, in the format of tmb_summary() in make_reference.R (lme4 fits get the same fields).
#
# Usage, from the project root: Rscript tests/reference/make_extra_reference.R tests/reference
suppressMessages({library(glmmTMB); library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
out <- if (length(args)) args[1] else "tests/reference"
datadir <- file.path(out, "data")
dir.create(datadir, showWarnings = FALSE, recursive = TRUE)

# ---------------------------------------------------------------- summaries --------------------------------------
# ranef modes for every grouping factor: list of {group, levels, terms, modes {term: [...]}, cond_sd {term: [...]}}
# (cond_sd: square roots of the diagonal of the conditional covariance that ranef(condVar = TRUE) reports).
ranef_list <- function(re) {
  lapply(names(re), function(g) {
    r <- re[[g]]; cv <- attr(r, "condVar"); if (is.null(cv)) cv <- attr(r, "postVar")
    if (is.list(cv)) cv <- cv[[1]]
    modes <- lapply(seq_along(r), function(j) unname(r[[j]])); names(modes) <- names(r)
    csd <- if (is.null(cv)) NULL else {
      s <- lapply(seq_along(r), function(j) sqrt(unname(cv[j, j, ]))); names(s) <- names(r); s }
    list(group = g, levels = rownames(r), terms = I(names(r)), modes = modes, cond_sd = csd)
  })
}

vc_list <- function(vc) {
  lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
}

# as make_reference.R's tmb_summary(), plus data_file and an optional ranef_by_group
tmb_summary <- function(m, name, formula, family, link, reml, data_name, extra = list(), modes = FALSE) {
  v <- vcov(m)$cond
  sig <- tryCatch(sigma(m), error = function(e) NA)
  res <- list(
    case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = data_name,
    data_file = paste0("tests/reference/data/", data_name, ".csv"),
    formula = formula, family = family, link = link, REML = reml,
    nobs = nobs(m), df_resid = df.residual(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(v))),
    random = vc_list(VarCorr(m)$cond), sigma = sig,
    fitted_head = unname(head(predict(m, type = "response"), 5)),
    pearson_ss = sum(residuals(m, type = "pearson")^2),
    converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
  if (modes) res$ranef_by_group <- ranef_list(ranef(m, condVar = TRUE)$cond)
  check(res)
  c(res, extra)
}

# lmer / glmer in the same format. converged: optimizer code 0 and no lme4 convergence message;
# pdHess: lme4's finite-difference Hessian (optinfo$derivs) is positive definite; singular: lme4::isSingular().
# For lmer with REML = TRUE, logLik is the REML criterion's log-likelihood (as glmmTMB's REML logLik).
lme4_summary <- function(m, name, formula, family, link, data_name, nAGQ = NA, extra = list(), modes = FALSE) {
  is_lmer <- isLMM(m)
  H <- m@optinfo$derivs$Hessian
  res <- list(
    case = name,
    engine = paste0("lme4 ", packageVersion("lme4"), if (is_lmer) " lmer" else paste0(" glmer nAGQ=", nAGQ)),
    data = data_name, data_file = paste0("tests/reference/data/", data_name, ".csv"),
    formula = formula, family = family, link = link, REML = is_lmer && isREML(m),
    nobs = nobs(m), df_resid = df.residual(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    random = vc_list(VarCorr(m)), sigma = sigma(m),
    fitted_head = unname(head(fitted(m), 5)),
    pearson_ss = sum(residuals(m, type = "pearson")^2),
    converged = m@optinfo$conv$opt == 0 && length(m@optinfo$conv$lme4$messages) == 0,
    pdHess = !is.null(H) && all(eigen(H, symmetric = TRUE, only.values = TRUE)$values > 0),
    singular = isSingular(m))
  if (!is_lmer) res <- append(res, list(nAGQ = nAGQ), after = 9)
  if (modes) res$ranef_by_group <- ranef_list(ranef(m, condVar = TRUE))
  check(res)
  c(res, extra)
}

check <- function(res) {
  if (!isTRUE(res$converged) || !isTRUE(res$pdHess) || isTRUE(res$singular))
    stop(res$case, ": converged ", res$converged, ", pdHess ", res$pdHess, ", singular ", res$singular)
  for (r in res$random) if (any(r$sd < 1e-3) || any(abs(r$corr) > 0.99)) stop(res$case, ": boundary fit in ", r$group)
}

save <- function(x, dir = out) {
  write_json(x, file.path(dir, paste0(x$case, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-32s logLik %12.4f  pdHess %s\n", x$case, x$logLik, x$pdHess))
}

# write the simulated data, then read it back: the fits use exactly what the CSV holds
put <- function(d, name) {
  write.csv(d, file.path(datadir, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
  read.csv(file.path(datadir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}
lev <- function(prefix, k) sprintf(paste0(prefix, "%02d"), seq_len(k))   # "g01".."g20": sorted = R's order
grp <- function(prefix, k, each) factor(rep(lev(prefix, k), each = each), levels = lev(prefix, k))

# ---------------------------------------------------------------- data -------------------------------------------
# gaussian, correlated random intercept and slope: 25 groups x 12
set.seed(20240101)
k <- 25; m_ <- 12
g <- grp("g", k, m_); x <- round(runif(k * m_, -2, 2), 3)
L <- t(chol(matrix(c(1, 0.4 * 1 * 0.6, 0.4 * 1 * 0.6, 0.6^2), 2)))
b <- t(L %*% matrix(rnorm(2 * k), 2))
y <- round(2 + 0.5 * x + b[g, 1] + b[g, 2] * x + rnorm(k * m_, 0, 0.8), 4)
gauss <- put(data.frame(y, x, g), "gaussian_slopes")

# binary 0/1, correlated random intercept and slope: 40 groups x 15
set.seed(20240102)
k <- 40; m_ <- 15
g <- grp("g", k, m_); x <- round(runif(k * m_, -2, 2), 3)
L <- t(chol(matrix(c(1, 0.3 * 1 * 0.7, 0.3 * 1 * 0.7, 0.7^2), 2)))
b <- t(L %*% matrix(rnorm(2 * k), 2))
y <- rbinom(k * m_, 1, plogis(-0.3 + 0.8 * x + b[g, 1] + b[g, 2] * x))
binslopes <- put(data.frame(y, x, g), "binary_slopes")

# poisson, crossed: a (15 levels) x b (12 levels), 2 per cell
set.seed(20240103)
d <- expand.grid(rep = 1:2, b = lev("b", 12), a = lev("a", 15))
d$x <- round(runif(nrow(d), -1, 1), 3)
ua <- rnorm(15, 0, 0.6); vb <- rnorm(12, 0, 0.4)
d$y <- rpois(nrow(d), exp(1 + 0.4 * d$x + ua[as.integer(factor(d$a))] + vb[as.integer(factor(d$b))]))
crossed <- put(d[, c("y", "x", "a", "b")], "poisson_crossed")

# poisson, nested: 12 a, 5 b within each a labelled b1..b5 (the same labels reused in every a), 5 per b
set.seed(20240104)
d <- expand.grid(rep = 1:5, b = paste0("b", 1:5), a = lev("a", 12))
d$x <- round(runif(nrow(d), -1, 1), 3)
ua <- rnorm(12, 0, 0.5); vab <- rnorm(60, 0, 0.4)
d$y <- rpois(nrow(d), exp(1.2 + 0.3 * d$x + ua[as.integer(d$a)] + vab[(as.integer(d$a) - 1) * 5 + as.integer(d$b)]))
nested <- put(d[, c("y", "x", "a", "b")], "poisson_nested")

# binomial trials y out of n: 25 groups x 10
set.seed(20240105)
k <- 25; m_ <- 10
g <- grp("g", k, m_); x <- round(runif(k * m_, -1.5, 1.5), 3); n <- sample(5:20, k * m_, replace = TRUE)
y <- rbinom(k * m_, n, pnorm(0.2 + 0.6 * x + rnorm(k, 0, 0.5)[g]))
trials <- put(data.frame(y, n, x, g), "binomial_trials")

# negative binomial (nbinom2, theta = 2): 25 groups x 12
set.seed(20240106)
k <- 25; m_ <- 12
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3)
y <- rnbinom(k * m_, mu = exp(1.5 + 0.5 * x + rnorm(k, 0, 0.5)[g]), size = 2)
nb <- put(data.frame(y, x, g), "nbinom2")

# beta (phi = 10): 25 groups x 12
set.seed(20240107)
k <- 25; m_ <- 12
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3)
mu <- plogis(-0.5 + 0.8 * x + rnorm(k, 0, 0.4)[g])
y <- round(rbeta(k * m_, mu * 10, (1 - mu) * 10), 6)
y <- pmin(pmax(y, 1e-6), 1 - 1e-6)
beta_d <- put(data.frame(y, x, g), "beta")

# poisson with exposure t: 25 groups x 12
set.seed(20240108)
k <- 25; m_ <- 12
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3); t <- round(runif(k * m_, 0.5, 10), 2)
y <- rpois(k * m_, t * exp(-0.5 + 0.4 * x + rnorm(k, 0, 0.5)[g]))
offs <- put(data.frame(y, x, t, g), "poisson_offset")

# Gamma, log link (shape 5): 25 groups x 12
set.seed(20240109)
k <- 25; m_ <- 12
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3)
y <- round(rgamma(k * m_, shape = 5, rate = 5 / exp(2 + 0.5 * x + rnorm(k, 0, 0.4)[g])), 4)
gam <- put(data.frame(y, x, g), "gamma")

# poisson random intercept, for adaptive quadrature: 30 groups x 8, few counts so quadrature matters
set.seed(20240110)
k <- 30; m_ <- 8
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3)
y <- rpois(k * m_, exp(-0.3 + 0.5 * x + rnorm(k, 0, 0.9)[g]))
pois <- put(data.frame(y, x, g), "poisson_ri")

# gaussian with a log link, no groups: 200 rows
set.seed(20240111)
x <- round(runif(200, -1, 1), 3)
y <- round(exp(1 + 0.6 * x) + rnorm(200, 0, 0.4), 4)
glog <- put(data.frame(y, x), "gaussian_log")

# ---------------------------------------------------------------- fits -------------------------------------------
# gaussian, correlated slopes: glmmTMB ML and REML, lmer ML and REML
f <- y ~ x + (1 + x | g); fs <- "y ~ x + (1 + x | g)"
m <- glmmTMB(f, data = gauss, REML = FALSE)
save(tmb_summary(m, "gaussian_slopes_ml", fs, "gaussian", "identity", FALSE, "gaussian_slopes", modes = TRUE))
m <- glmmTMB(f, data = gauss, REML = TRUE)
save(tmb_summary(m, "gaussian_slopes_reml", fs, "gaussian", "identity", TRUE, "gaussian_slopes", modes = TRUE))
l <- lmer(f, data = gauss, REML = FALSE)
save(lme4_summary(l, "gaussian_slopes_lmer_ml", fs, "gaussian", "identity", "gaussian_slopes", modes = TRUE))
l <- lmer(f, data = gauss, REML = TRUE)
save(lme4_summary(l, "gaussian_slopes_lmer_reml", fs, "gaussian", "identity", "gaussian_slopes", modes = TRUE))

# binary response, correlated slopes
m <- glmmTMB(y ~ x + (1 + x | g), family = binomial, data = binslopes)
save(tmb_summary(m, "binary_slopes_ml", "y ~ x + (1 + x | g)", "binomial", "logit", FALSE, "binary_slopes",
                 modes = TRUE))

# poisson crossed and nested
m <- glmmTMB(y ~ x + (1 | a) + (1 | b), family = poisson, data = crossed)
save(tmb_summary(m, "poisson_crossed", "y ~ x + (1 | a) + (1 | b)", "poisson", "log", FALSE, "poisson_crossed",
                 modes = TRUE))
m <- glmmTMB(y ~ x + (1 | a/b), family = poisson, data = nested)
save(tmb_summary(m, "poisson_nested", "y ~ x + (1 | a/b)", "poisson", "log", FALSE, "poisson_nested", modes = TRUE))

# probit binomial with a two-column response
m <- glmmTMB(cbind(y, n - y) ~ x + (1 | g), family = binomial(link = "probit"), data = trials)
save(tmb_summary(m, "binomial_probit_cbind", "cbind(y, n - y) ~ x + (1 | g)", "binomial", "probit", FALSE,
                 "binomial_trials"))

# nbinom2, beta, offset, Gamma: random intercept, ML
m <- glmmTMB(y ~ x + (1 | g), family = nbinom2, data = nb)
save(tmb_summary(m, "nbinom2_ri", "y ~ x + (1 | g)", "nbinom2", "log", FALSE, "nbinom2"))
m <- glmmTMB(y ~ x + (1 | g), family = beta_family(), data = beta_d)
save(tmb_summary(m, "beta_ri", "y ~ x + (1 | g)", "beta", "logit", FALSE, "beta"))
m <- glmmTMB(y ~ x + offset(log(t)) + (1 | g), family = poisson, data = offs)
save(tmb_summary(m, "poisson_offset_ri", "y ~ x + offset(log(t)) + (1 | g)", "poisson", "log", FALSE,
                 "poisson_offset", modes = TRUE))
m <- glmmTMB(y ~ x + (1 | g), family = Gamma(link = "log"), data = gam)
save(tmb_summary(m, "gamma_ri_ml", "y ~ x + (1 | g)", "Gamma", "log", FALSE, "gamma"))

# GLMs without random effects (glmmTMB), on the data above with the groups ignored
m <- glmmTMB(y ~ x, family = poisson, data = pois)
save(tmb_summary(m, "glm_poisson", "y ~ x", "poisson", "log", FALSE, "poisson_ri"))
m <- glmmTMB(cbind(y, n - y) ~ x, family = binomial, data = trials)
save(tmb_summary(m, "glm_binomial_cbind", "cbind(y, n - y) ~ x", "binomial", "logit", FALSE, "binomial_trials"))
m <- glmmTMB(y / n ~ x, weights = n, family = binomial, data = trials)
save(tmb_summary(m, "glm_binomial_prop_weights", "y/n ~ x, weights = n", "binomial", "logit", FALSE,
                 "binomial_trials"))
m <- glmmTMB(y ~ x, family = nbinom2, data = nb)
save(tmb_summary(m, "glm_nbinom2", "y ~ x", "nbinom2", "log", FALSE, "nbinom2"))
m <- glmmTMB(y ~ x, family = beta_family(), data = beta_d)
save(tmb_summary(m, "glm_beta", "y ~ x", "beta", "logit", FALSE, "beta"))
m <- glmmTMB(y ~ x, family = gaussian(link = "log"), data = glog)
save(tmb_summary(m, "glm_gaussian_log", "y ~ x", "gaussian", "log", FALSE, "gaussian_log"))

# gaussian without random effects, REML = TRUE, next to lm on the same data
m <- glmmTMB(y ~ x, data = gauss, REML = TRUE)
l <- lm(y ~ x, data = gauss)
save(tmb_summary(m, "gaussian_reml_no_re", "y ~ x", "gaussian", "identity", TRUE, "gaussian_slopes",
                 extra = list(lm = list(engine = "stats::lm", fixef = as.list(coef(l)),
                                        se = as.list(sqrt(diag(vcov(l)))), sigma = sigma(l),
                                        logLik_REML = as.numeric(logLik(l, REML = TRUE)),
                                        logLik_ML = as.numeric(logLik(l))))))

# poisson random intercept: glmmTMB Laplace, glmer Laplace, glmer 10-point adaptive Gauss-Hermite.
# glmer's logLik for nAGQ > 1 is on another constant; logLik_integrate is the marginal log-likelihood at glmer's
# estimates computed here by stats::integrate, group by group (the Python AGQ log-likelihood should match it).
marginal_loglik <- function(d, beta, sd) {
  eta0 <- beta[1] + beta[2] * d$x
  sum(sapply(split(seq_len(nrow(d)), d$g), function(i) {
    f <- function(z) sapply(z, function(zz) exp(sum(dpois(d$y[i], exp(eta0[i] + sd * zz), log = TRUE))) * dnorm(zz))
    log(integrate(f, -Inf, Inf, rel.tol = 1e-12)$value)
  }))
}
m <- glmmTMB(y ~ x + (1 | g), family = poisson, data = pois)
save(tmb_summary(m, "poisson_ri_tmb", "y ~ x + (1 | g)", "poisson", "log", FALSE, "poisson_ri", modes = TRUE))
for (k in c(1, 10)) {
  gm <- glmer(y ~ x + (1 | g), family = poisson, data = pois, nAGQ = k)
  sdg <- attr(VarCorr(gm)$g, "stddev")[[1]]
  save(lme4_summary(gm, paste0("poisson_ri_glmer_agq", k), "y ~ x + (1 | g)", "poisson", "log", "poisson_ri", k,
                    extra = list(logLik_integrate = marginal_loglik(pois, unname(fixef(gm)), sdg)), modes = TRUE))
}

writeLines(capture.output(sessionInfo()), file.path(out, "extra_sessionInfo.txt"))
cat("done\n")
