# References for independent random effects (a diagonal covariance per term), made by R:
#
# * the salmon data (datasets/fish_vaccines.csv), lesson 06's random-slope model with the correlation dropped,
#     wt ~ vaccine * day_f + (1 + t || fish)   and   wt ~ vaccine * day_f + diag(1 + t | fish),
#   t = day / 901, Gamma with the log link, glmmTMB, REML and ML (glmmTMB reads `||` as diag(), so the two
#   spellings are one model: the script stops if their fits differ);
# * lme4's sleepstudy (written from R to tests/reference/data/sleepstudy.csv),
#     Reaction ~ Days + (Days || Subject),  lmer, REML and ML.
#   lme4 splits `||` into two terms, (1 | Subject) + (0 + Days | Subject), which VarCorr names "Subject" and
#   "Subject.1"; the JSON lists them as one group "Subject" with the terms "(Intercept)" and "Days" (each
#   SD as lme4 reports it; lme4_groups keeps lme4's own names).
# Same JSON fields as make_reference.R and make_extra_reference.R; `summary_lines` is glmmTMB's printed summary.
#
# Usage, from the project root: Rscript tests/reference/make_diag_reference.R
suppressMessages({library(glmmTMB); library(lme4); library(jsonlite)})
out <- "tests/reference"

source("tests/reference/common.R")   # summary_lines(), vc_list()

save <- function(x) {
  if (!isTRUE(x$converged) || !isTRUE(x$pdHess)) stop(x$case, ": converged ", x$converged, ", pdHess ", x$pdHess)
  write_json(x, file.path(out, paste0(x$case, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-28s logLik %12.5f\n", x$case, x$logLik))
}

# ---------------------------------------------------------------- salmon, glmmTMB ---------------------------------
fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
fish$t <- fish$day / 901
spellings <- c(bars = "wt ~ vaccine * day_f + (1 + t || fish)", diag = "wt ~ vaccine * day_f + diag(1 + t | fish)")

for (reml in c(TRUE, FALSE)) {
  fits <- lapply(spellings, function(f) glmmTMB(as.formula(f), family = Gamma(link = "log"), data = fish, REML = reml))
  if (abs(logLik(fits$bars) - logLik(fits$diag)) > 1e-8 || max(abs(fixef(fits$bars)$cond - fixef(fits$diag)$cond)) > 1e-8)
    stop("(1 + t || fish) and diag(1 + t | fish) gave different fits")
  for (spelling in names(spellings)) {
    m <- fits[[spelling]]
    name <- paste0("fish_gamma_", spelling, if (reml) "_reml" else "_ml")
    save(list(case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = "fish_vaccines",
              formula = spellings[[spelling]], family = "Gamma", link = "log", REML = reml, nobs = nobs(m),
              df_resid = df.residual(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
              fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
              random = vc_list(VarCorr(m)$cond), sigma = sigma(m),
              fitted_head = unname(head(predict(m, type = "response"), 5)),
              pearson_ss = sum(residuals(m, type = "pearson")^2),
              converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess, summary_lines = summary_lines(m)))
  }
}

# ---------------------------------------------------------------- sleepstudy, lmer --------------------------------
write.csv(sleepstudy, file.path(out, "data", "sleepstudy.csv"), row.names = FALSE, quote = FALSE)
sleep <- read.csv(file.path(out, "data", "sleepstudy.csv"))
sleep$Subject <- factor(sleep$Subject)
formula <- "Reaction ~ Days + (Days || Subject)"
for (reml in c(TRUE, FALSE)) {
  m <- lmer(as.formula(formula), data = sleep, REML = reml)
  vc <- vc_list(VarCorr(m))
  H <- m@optinfo$derivs$Hessian
  save(list(case = paste0("sleepstudy_bars_lmer_", if (reml) "reml" else "ml"),
            engine = paste0("lme4 ", packageVersion("lme4"), " lmer"), data = "sleepstudy",
            data_file = "tests/reference/data/sleepstudy.csv", formula = formula, family = "gaussian",
            link = "identity", REML = reml, nobs = nobs(m), df_resid = df.residual(m),
            logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
            fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
            random = list(list(group = "Subject", terms = I(unlist(lapply(vc, `[[`, "terms"))),
                               sd = I(unlist(lapply(vc, `[[`, "sd"))), corr = I(0))),
            lme4_groups = I(names(VarCorr(m))), sigma = sigma(m),
            fitted_head = unname(head(fitted(m), 5)), pearson_ss = sum(residuals(m, type = "pearson")^2),
            converged = m@optinfo$conv$opt == 0 && length(m@optinfo$conv$lme4$messages) == 0,
            pdHess = !is.null(H) && all(eigen(H, symmetric = TRUE, only.values = TRUE)$values > 0),
            singular = isSingular(m)))
}
