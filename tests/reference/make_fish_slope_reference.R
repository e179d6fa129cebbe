# Reference for lesson 06's random-slope model: every fish with its own intercept and growth rate,
#   wt ~ vaccine * day_f + (1 + t | fish),  t = day / 901,  Gamma with the log link,
# fitted by REML (the estimates the lesson prints) and ML (its AIC). Same JSON fields as make_reference.R.
# Usage, from the project root: Rscript tests/reference/make_fish_slope_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
fish$t <- fish$day / 901
formula <- "wt ~ vaccine * day_f + (1 + t | fish)"

summarise <- function(m, name, reml) {
  vc <- VarCorr(m)$cond
  re <- lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)), corr = I(unname(cm[upper.tri(cm)])))
  })
  v <- vcov(m)$cond
  list(case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = "fish_vaccines",
       formula = formula, family = "Gamma", link = "log", REML = reml, nobs = nobs(m),
       df_resid = df.residual(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
       fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(v))), random = re, sigma = sigma(m),
       fitted_head = unname(head(predict(m, type = "response"), 5)),
       pearson_ss = sum(residuals(m, type = "pearson")^2),
       converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
}

for (reml in c(TRUE, FALSE)) {
  name <- if (reml) "fish_gamma_slope_reml" else "fish_gamma_slope_ml"
  m <- glmmTMB(as.formula(formula), family = Gamma(link = "log"), data = fish, REML = reml)
  out <- summarise(m, name, reml)
  write_json(out, file.path("tests/reference", paste0(name, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(name, "logLik", out$logLik, "converged", out$converged, "pdHess", out$pdHess, "\n")
}
