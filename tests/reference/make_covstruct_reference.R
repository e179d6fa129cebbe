# References for the covariance structures cs() and ar1() on the salmon data (datasets/fish_vaccines.csv,
# 400 fish weighed on 5 days; day and fish as factors):
#
#   log(wt) ~ vaccine * day + ar1(day + 0 | fish)   gaussian, REML     -> fish_log_ar1_reml.json
#   log(wt) ~ vaccine * day + cs(day + 0 | fish)    gaussian, REML     -> fish_log_cs_reml.json
#   wt ~ vaccine * day + ar1(day + 0 | fish)        Gamma(log), ML     -> fish_gamma_ar1_ml.json
#   wt ~ vaccine * day + cs(day + 0 | fish)         Gamma(log), ML     -> fish_gamma_cs_ml.json
#
# glmmTMB 1.1.5 reports false convergence for both cs fits: each random effect belongs to one observation, and
# the residual variance runs to 0 (gaussian: sigma 2.7e-5; Gamma: sigma^2 2.5e-8, where its logLik is NaN and
# its Hessian not positive definite). The JSON keeps what glmmTMB reports, with `converged`, `pdHess`, the
# optimiser's message and `objective` (-fit$objective, the log-likelihood at its last point, NaN included).
# Besides the fields of make_reference.R: `confint_theta` (glmmTMB's Wald intervals of the SDs and
# correlations, parm = "theta_") and, for the fits with a positive definite Hessian, emmeans tables
# (`emmeans_by_day`, `pairs_by_day`: emmeans(m, ~ vaccine | day), on the log scale for log(wt), on the response
# scale for the Gamma fits) as make_inference_reference.R stores them; `summary_lines` is the summary.
#
# Usage, from the project root: Rscript tests/reference/make_covstruct_reference.R
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite)})
out <- "tests/reference"
fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day <- factor(fish$day); fish$fish <- factor(fish$fish)

vc_list <- function(vc) {
  lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)), corr = I(unname(cm[upper.tri(cm)])))
  })
}
table_of <- function(x) {
  s <- as.data.frame(summary(x))
  list(columns = I(names(s)), values = lapply(s, function(col) if (is.factor(col)) as.character(col) else col),
       lines = I(capture.output(print(x))))
}
interval_table <- function(ci) list(rows = I(rownames(ci)), lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2])),
                                    estimate = I(unname(ci[, 3])))

cases <- list(
  fish_log_ar1_reml = list(formula = "log(wt) ~ vaccine * day + ar1(day + 0 | fish)", family = gaussian(), REML = TRUE),
  fish_log_cs_reml = list(formula = "log(wt) ~ vaccine * day + cs(day + 0 | fish)", family = gaussian(), REML = TRUE),
  fish_gamma_ar1_ml = list(formula = "wt ~ vaccine * day + ar1(day + 0 | fish)", family = Gamma(link = "log"), REML = FALSE),
  fish_gamma_cs_ml = list(formula = "wt ~ vaccine * day + cs(day + 0 | fish)", family = Gamma(link = "log"), REML = FALSE))

for (name in names(cases)) {
  case <- cases[[name]]
  m <- glmmTMB(as.formula(case$formula), family = case$family, data = fish, REML = case$REML)
  pd <- isTRUE(m$sdr$pdHess)
  x <- list(case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = "fish_vaccines",
            formula = case$formula, family = case$family$family, link = case$family$link, REML = case$REML,
            nobs = nobs(m), df_resid = df.residual(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
            objective = -m$fit$objective, message = m$fit$message,
            fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
            random = vc_list(VarCorr(m)$cond), sigma = sigma(m),
            fitted_head = unname(head(predict(m, type = "response"), 5)),
            pearson_ss = sum(residuals(m, type = "pearson")^2),
            converged = m$fit$convergence == 0, pdHess = pd, summary_lines = capture.output(print(summary(m))))
  if (pd) {
    x$confint_theta <- interval_table(confint(m, parm = "theta_"))
    # on the log scale for log(wt) (glmmteach does not back-transform a transformed response), else response
    e <- if (case$family$family == "gaussian") emmeans(m, ~ vaccine | day) else emmeans(m, ~ vaccine | day, type = "response")
    x$emmeans_by_day <- table_of(e)
    x$pairs_by_day <- table_of(pairs(e))
  }
  write_json(x, file.path(out, paste0(name, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-20s logLik %12.5f  objective %12.5f  %s  pdHess %s\n", name, x$logLik, x$objective, x$message, pd))
}
writeLines(capture.output(sessionInfo()), file.path(out, "covstruct_sessionInfo.txt"))
