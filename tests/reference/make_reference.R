# Reference fits from glmmTMB and lme4 (Debian: r-base-core r-cran-lme4 r-cran-glmmtmb).
# Writes one JSON per case: estimates the Python package must reproduce.
# Copied from the course's shared/reference/make_reference.R; only the data path and usage line changed.
# Usage, from the project root: Rscript tests/reference/make_reference.R tests/reference
suppressMessages({library(glmmTMB); library(lme4); library(jsonlite)})
args <- commandArgs(TRUE)
out <- if (length(args)) args[1] else "tests/reference"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
shared <- "datasets/"   # the project's copy of the course data

seeds <- read.csv(paste0(shared, "crowder_seeds.csv"), stringsAsFactors = TRUE)
fish <- read.csv(paste0(shared, "fish_vaccines.csv"))
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
fish_seed <- fish; fish_seed$day <- factor(fish_seed$day)   # as in the lesson: day as factor

tmb_summary <- function(m, name, formula, family, link, reml, data_name, extra = list()) {
  vc <- VarCorr(m)$cond
  re <- lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
  v <- vcov(m)$cond
  sig <- tryCatch(sigma(m), error = function(e) NA)
  res <- list(
    case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = data_name,
    formula = formula, family = family, link = link, REML = reml,
    nobs = nobs(m), df_resid = df.residual(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(v))),
    random = re, sigma = sig,
    fitted_head = unname(head(predict(m, type = "response"), 5)),
    pearson_ss = sum(residuals(m, type = "pearson")^2),
    converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
  c(res, extra)
}
lme4_summary <- function(m, name, formula, family, link, data_name, nAGQ) {
  vc <- VarCorr(m)
  re <- lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); list(group = g, terms = I(names(s)), sd = I(unname(s)))
  })
  list(case = name, engine = paste0("lme4 ", packageVersion("lme4"), " glmer nAGQ=", nAGQ),
       data = data_name, formula = formula, family = family, link = link, REML = FALSE,
       nAGQ = nAGQ, nobs = nobs(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
       fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))), random = re)
}
save <- function(x, dir = out) write_json(x, file.path(dir, paste0(x$case, ".json")),
                                          auto_unbox = TRUE, digits = NA, pretty = TRUE)
timeit <- function(expr) { t <- system.time(for (i in 1:3) r <- eval.parent(substitute(expr))); t[["elapsed"]] / 3 }

# ---- the lesson models ----
f <- cbind(germ, n - germ) ~ gen * extract + (1 | plate)
m <- glmmTMB(f, REML = TRUE, family = binomial, data = seeds)
save(tmb_summary(m, "crowder_binomial_reml", "cbind(germ, n - germ) ~ gen * extract + (1 | plate)",
                 "binomial", "logit", TRUE, "crowder_seeds",
                 list(ranef = I(ranef(m)$cond$plate[, 1]), ranef_levels = rownames(ranef(m)$cond$plate))))
m <- glmmTMB(f, REML = FALSE, family = binomial, data = seeds)
save(tmb_summary(m, "crowder_binomial_ml", "cbind(germ, n - germ) ~ gen * extract + (1 | plate)",
                 "binomial", "logit", FALSE, "crowder_seeds"))
for (k in c(1, 25)) {
  g <- glmer(f, family = binomial, data = seeds, nAGQ = k)
  save(lme4_summary(g, paste0("crowder_binomial_glmer_agq", k),
                    "cbind(germ, n - germ) ~ gen * extract + (1 | plate)", "binomial", "logit", "crowder_seeds", k))
}
m <- glmmTMB(wt ~ day * vaccine, data = fish_seed)
save(tmb_summary(m, "fish_gaussian", "wt ~ day * vaccine  (day, vaccine as factors)", "gaussian", "identity", FALSE, "fish_vaccines"))
m <- glmmTMB(wt ~ day * vaccine, family = Gamma(link = "log"), data = fish_seed)
save(tmb_summary(m, "fish_gamma", "wt ~ day * vaccine  (day, vaccine as factors)", "Gamma", "log", FALSE, "fish_vaccines"))
l <- lm(log(wt) ~ day * vaccine, data = fish_seed)
save(list(case = "fish_lm_log", engine = "stats::lm", data = "fish_vaccines",
          formula = "log(wt) ~ day * vaccine  (day, vaccine as factors)", nobs = nobs(l), df_resid = df.residual(l),
          logLik = as.numeric(logLik(l)), AIC = AIC(l), fixef = as.list(coef(l)), se = as.list(sqrt(diag(vcov(l)))),
          sigma = sigma(l)))
m <- glmmTMB(wt ~ vaccine * day_f + (1 | fish), REML = TRUE, family = Gamma(link = "log"), data = fish)
save(tmb_summary(m, "fish_gamma_fish_reml", "wt ~ vaccine * day_f + (1 | fish)", "Gamma", "log", TRUE, "fish_vaccines"))

cat("done\n")
