# References for the remedies after the diagnosis (dispersion formulas, nbinom1, the beta-binomial), made by
# glmmTMB 1.1.5:
#
# * the salmon data (datasets/fish_vaccines.csv, `day` a factor), the Gamma(log) model of the lessons with the
#   dispersion depending on the day:  wt ~ vaccine * day + (1 | fish), dispformula = ~ day, REML and ML;
# * the same data on the log scale, Gaussian:  log(wt) ~ vaccine + day + (1 | fish), dispformula = ~ day, REML
#   and ML;
# * Crowder's seeds (datasets/crowder_seeds.csv), the beta-binomial:  cbind(germ, n - germ) ~ gen * extract, with
#   and without (1 | plate), ML;
# * the fecal egg counts (datasets/fecal_egg_counts.csv, tx a factor), nbinom1 with a herd effect:
#   fec ~ tx + (1 | province:herd), ML and REML.
#
# glmmTMB's dispersion model is linear in the log of its own dispersion parameter, which is not sigma() for
# every family: fixef(m)$disp is log(sigma^2) for the gaussian, log(shape) = -2 log(sigma) for the Gamma, and
# log(sigma()) for nbinom1, nbinom2, beta and betabinomial (checked below on fits without a dispersion formula).
# `sigma_head` is each observation's sigma() (glmmTMB's predict(type = "disp"), checked against the formula).
# Same JSON fields as make_diag_reference.R, plus `dispformula`, `fixef_disp` and `se_disp`. `pearson_ss` is
# left out where glmmTMB's Pearson residuals are NA (with a dispersion formula, sigma(m) is NA for the gaussian).
#
# Usage, from the project root: Rscript tests/reference/make_remedy_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
out <- "tests/reference"

source("tests/reference/common.R")   # summary_lines(), vc_list()

# sigma() of each observation from glmmTMB's dispersion linear predictor eta_d (see the header)
sigma_of <- function(family, eta_d) switch(family, gaussian = sqrt(exp(eta_d)), Gamma = 1 / sqrt(exp(eta_d)), exp(eta_d))

save <- function(x, boundary = FALSE) {
  if (!isTRUE(x$converged) || !(isTRUE(x$pdHess) || boundary)) stop(x$case, ": converged ", x$converged, ", pdHess ", x$pdHess)
  write_json(x, file.path(out, paste0(x$case, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-28s logLik %12.5f\n", x$case, x$logLik))
}

record <- function(case, m, data_name, formula, dispformula, family, link, reml, boundary = FALSE) {
  disp <- fixef(m)$disp
  eta_d <- if (is.null(dispformula)) rep(disp, nobs(m)) else
    drop(model.matrix(as.formula(dispformula), m$frame) %*% disp)
  sigma_head <- head(sigma_of(family, eta_d), 5)
  if (max(abs(sigma_head - head(predict(m, type = "disp"), 5))) > 1e-8 * max(sigma_head))
    stop(case, ": predict(type = 'disp') is not sigma_of()")
  pearson <- residuals(m, type = "pearson")
  # vcov(m)$disp is empty without a dispersion formula; its names carry a "d~" prefix
  se_disp <- sqrt(diag(vcov(m)$disp))
  se_disp <- as.list(if (length(se_disp)) setNames(se_disp, names(disp)) else se_disp)
  x <- list(case = case, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = data_name,
            formula = formula, dispformula = dispformula, family = family, link = link, REML = reml,
            nobs = nobs(m), df_resid = df.residual(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
            fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
            fixef_disp = as.list(disp), se_disp = se_disp,
            random = vc_list(VarCorr(m)$cond), sigma = sigma(m), sigma_head = sigma_head,
            fitted_head = unname(head(predict(m, type = "response"), 5)),
            converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess, summary_lines = summary_lines(m))
  if (all(is.finite(pearson))) x$pearson_ss <- sum(pearson^2)
  if (is.null(dispformula)) x$dispformula <- NULL
  if (!is.finite(x$sigma)) x$sigma <- NULL
  save(x, boundary)
}

# ------------------------------------------------ what fixef(m)$disp is, by family (no dispersion formula) ----------
fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day <- factor(fish$day); fish$fish <- factor(fish$fish)
check <- list(gaussian = glmmTMB(log(wt) ~ day, data = fish),
              Gamma = glmmTMB(wt ~ day, family = Gamma(link = "log"), data = fish))
for (f in names(check)) {
  m <- check[[f]]
  if (abs(sigma_of(f, fixef(m)$disp) - sigma(m)) > 1e-10 * sigma(m)) stop("the dispersion scale of ", f)
}

# ------------------------------------------------ salmon: dispersion by day ---------------------------------------------
for (reml in c(TRUE, FALSE)) {
  suffix <- if (reml) "_reml" else "_ml"
  formula <- "wt ~ vaccine * day + (1 | fish)"
  m <- glmmTMB(as.formula(formula), dispformula = ~ day, family = Gamma(link = "log"), data = fish, REML = reml)
  record(paste0("fish_gamma_disp", suffix), m, "fish_vaccines", formula, "~ day", "Gamma", "log", reml)
  formula <- "log(wt) ~ vaccine + day + (1 | fish)"
  m <- glmmTMB(as.formula(formula), dispformula = ~ day, family = gaussian, data = fish, REML = reml)
  record(paste0("fish_gaussian_disp", suffix), m, "fish_vaccines", formula, "~ day", "gaussian", "identity", reml)
}

# ------------------------------------------------ seeds: the beta-binomial ------------------------------------------------
seeds <- read.csv("datasets/crowder_seeds.csv", stringsAsFactors = TRUE)
formula <- "cbind(germ, n - germ) ~ gen * extract"
m <- glmmTMB(as.formula(formula), family = betabinomial, data = seeds)
record("crowder_betabinomial_glm", m, "crowder_seeds", formula, NULL, "betabinomial", "logit", FALSE)
formula <- "cbind(germ, n - germ) ~ gen * extract + (1 | plate)"
# the plate SD is at its boundary (about 1e-4): the Hessian of the log SD is then not positive definite.
# (With REML = TRUE glmmTMB reports false convergence on this model, so there is no REML reference.)
m <- glmmTMB(as.formula(formula), family = betabinomial, data = seeds)
record("crowder_betabinomial_plate_ml", m, "crowder_seeds", formula, NULL, "betabinomial", "logit", FALSE,
       boundary = TRUE)

# ------------------------------------------------ egg counts: nbinom1 with a herd effect --------------------------------
eggs <- read.csv("datasets/fecal_egg_counts.csv")
eggs$tx <- factor(eggs$tx)
formula <- "fec ~ tx + (1 | province:herd)"
for (reml in c(FALSE, TRUE)) {
  m <- glmmTMB(as.formula(formula), family = nbinom1, data = eggs, REML = reml)
  record(paste0("eggs_nbinom1_herd", if (reml) "_reml" else "_ml"), m, "fecal_egg_counts", formula, NULL,
         "nbinom1", "log", reml)
}
writeLines(capture.output(sessionInfo()), file.path(out, "remedy_sessionInfo.txt"))
