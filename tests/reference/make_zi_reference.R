# Reference fits of zero-inflated models (glmmTMB's ziformula): the fecal egg counts of the zero-inflation lesson,
# and a simulated zero-inflated binomial. Debian: r-base-core r-cran-glmmtmb r-cran-jsonlite.
#
# The egg-count sequence of the course (datasets/fecal_egg_counts.csv; tx, lact, manure and province made factors,
# as the course does; the herds are numbered within province, so the grouping is province:herd):
#   Poisson, the same with ziformula = ~ 1 (ZIP), nbinom1, nbinom1 with ziformula = ~ 1 (ZINB1), and nbinom2 with
#   ziformula = ~ tx; and ZIP under REML (glmmTMB integrates the conditional model's fixed effects only: the
#   zero-inflation coefficients stay outer parameters), and a ZIP GLM (no random effect).
# Each JSON has the fields of make_extra_reference.R's tmb_summary() (fitted_head and pearson_ss are glmmTMB's
# response-scale (1 - pi) mu and its zero-inflated Pearson residuals), plus the zero-inflation model:
# ziformula, fixef_zi, se_zi, zprob_head, conditional_head (predict types "zprob" and "conditional"), factors (the
# columns to make factors), and summary_lines (summary(m) as R prints it).
#
# Usage, from the project root: Rscript tests/reference/make_zi_reference.R tests/reference
suppressMessages({library(glmmTMB); library(jsonlite)})
args <- commandArgs(TRUE)
out <- if (length(args)) args[1] else "tests/reference"
datadir <- file.path(out, "data")

vc_list <- function(vc) {
  lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
}

zi_summary <- function(m, name, formula, ziformula, family, link, reml, data_file, factors) {
  sig <- if (family %in% c("poisson", "binomial")) 1 else sigma(m)
  res <- list(
    case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")),
    data_file = data_file, factors = I(factors),
    formula = formula, ziformula = ziformula, family = family, link = link, REML = reml,
    nobs = nobs(m), df_resid = df.residual(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
    random = if (is.null(VarCorr(m)$cond)) list() else vc_list(VarCorr(m)$cond), sigma = sig,
    fitted_head = unname(head(predict(m, type = "response"), 5)),
    pearson_ss = sum(residuals(m, type = "pearson")^2),
    converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
  if (ziformula != "~0") {
    res$fixef_zi <- as.list(fixef(m)$zi)
    res$se_zi <- as.list(sqrt(diag(vcov(m)$zi)))
    res$zprob_head <- unname(head(predict(m, type = "zprob"), 5))
    res$conditional_head <- unname(head(predict(m, type = "conditional"), 5))
  }
  res$summary_lines <- I(capture.output(print(summary(m))))
  if (!isTRUE(res$converged) || !isTRUE(res$pdHess)) stop(name, ": converged ", res$converged, ", pdHess ", res$pdHess)
  res
}

save <- function(x, dir = out) {
  write_json(x, file.path(dir, paste0(x$case, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-24s logLik %12.4f  pdHess %s\n", x$case, x$logLik, x$pdHess))
}

# ---- the fecal egg counts ----
egg_file <- "datasets/fecal_egg_counts.csv"
egg_factors <- c("tx", "lact", "manure", "province", "herd")
egg <- read.csv(egg_file)
for (v in egg_factors) egg[[v]] <- factor(egg[[v]])
cond <- "fec ~ tx + lact + manure + province + (1 | province:herd)"

fit_egg <- function(name, family, ziformula, reml = FALSE, formula = cond) {
  fam <- switch(family, poisson = poisson(), nbinom1 = nbinom1(), nbinom2 = nbinom2())
  m <- glmmTMB(as.formula(formula), ziformula = as.formula(ziformula), family = fam, data = egg, REML = reml)
  save(zi_summary(m, name, formula, ziformula, family, "log", reml, egg_file, egg_factors))
}
fit_egg("fec_poisson", "poisson", "~0")
fit_egg("fec_zip", "poisson", "~1")
fit_egg("fec_nbinom1", "nbinom1", "~0")
fit_egg("fec_zinb1", "nbinom1", "~1")
fit_egg("fec_zinb2_tx", "nbinom2", "~tx")
fit_egg("fec_zip_reml", "poisson", "~1", reml = TRUE)
fit_egg("fec_zip_glm", "poisson", "~lact", formula = "fec ~ tx + lact")

# ---- a zero-inflated binomial: y successes of n, structural zeros with logit pi = -1 + 0.8 x ----
set.seed(20261212)
G <- 30; per <- 8
zb <- data.frame(g = sprintf("g%02d", rep(seq_len(G), each = per)), x = round(rnorm(G * per), 3),
                 n = sample(5:15, G * per, replace = TRUE))
u <- rnorm(G, 0, 0.6)
p <- plogis(0.3 + 0.5 * zb$x + u[as.integer(factor(zb$g))])
zero <- rbinom(nrow(zb), 1, plogis(-1 + 0.8 * zb$x))
zb$y <- ifelse(zero == 1, 0L, rbinom(nrow(zb), zb$n, p))
write.csv(zb, file.path(datadir, "zi_binomial.csv"), row.names = FALSE)
zb <- read.csv(file.path(datadir, "zi_binomial.csv")); zb$g <- factor(zb$g)
m <- glmmTMB(cbind(y, n - y) ~ x + (1 | g), ziformula = ~ x, family = binomial, data = zb)
save(zi_summary(m, "zi_binomial", "cbind(y, n - y) ~ x + (1 | g)", "~x", "binomial", "logit", FALSE,
                "tests/reference/data/zi_binomial.csv", c("g")))

writeLines(capture.output(sessionInfo()), file.path(out, "zi_sessionInfo.txt"))
