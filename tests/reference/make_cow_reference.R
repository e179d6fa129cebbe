# References for homework 5c (lessons/homework/source/cows.ipynb): the cattle of Diggle, Liang & Zeger (1994),
# datasets/diggle_cow.csv, 26 animals in a 2 x 2 of iron by infection, weighed on 23 days (597 weighings), of
# which the homework keeps every second weighing: 12 days, 312 weighings.
# day_f = factor(day) (its levels in time order), t = (day - 122) / 365.25 (years since the first weighing).
# Every fit is ML, as the homework compares them by AIC:
#
#   weight ~ iron * infect * day_f + (1 | animal)                               Gamma(log)  -> cow_gamma_animal_ml.json
#   weight ~ iron * infect * day_f + ar1(day_f + 0 | animal)                    Gamma(log)  -> cow_gamma_ar1_ml.json
#   weight ~ iron * infect * day_f + (1 + t | animal)                           Gamma(log)  -> cow_gamma_slope_ml.json
#   weight ~ iron * infect * day_f + (1 | animal)                               gaussian    -> cow_gaussian_animal_ml.json
#   log(weight) ~ iron * infect * day_f + (1 | animal)                          gaussian    -> cow_log_animal_ml.json
#
# Same fields as make_covstruct_reference.R (those of make_reference.R, with `objective`, `message`,
# `summary_lines`), and, for the Gamma fits with a positive definite Hessian, emmeans 1.8.4 tables as
# make_inference_reference.R stores them: `emmeans_last`, `pairs_last` (emmeans(m, ~ iron * infect,
# at = list(day_f = "781"), type = "response") and its Tukey pairs, ratios) and `emmeans_mean`, `pairs_mean` (the
# same averaged over the 12 days on the log scale). The gaussian fits of log(weight) and weight are there for the
# choice of family: `loglik_weight_scale` is the log-likelihood of the weights (for log(weight), the Jacobian
# -sum(log(weight)) added), comparable between the three families.
#
# Usage, from the project root: Rscript tests/reference/make_cow_reference.R
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite)})
source("tests/reference/common.R")     # vc_list, summary_lines
out <- "tests/reference"
cows <- read.csv("datasets/diggle_cow.csv")
cows$animal <- factor(cows$animal); cows$iron <- factor(cows$iron); cows$infect <- factor(cows$infect)
stopifnot(nrow(cows) == 597, length(unique(cows$day)) == 23, nlevels(cows$animal) == 26)
# the homework keeps every second weighing (12 days, 122 to 781, two months or so apart; 312 weighings, none
# missing), which keeps each fit in glmmteach within a few seconds
cows <- cows[cows$day %in% sort(unique(cows$day))[seq(1, 23, by = 2)], ]
cows$day_f <- factor(cows$day); cows$t <- (cows$day - 122) / 365.25
stopifnot(nrow(cows) == 312, nlevels(cows$day_f) == 12)
fixed <- "iron * infect * day_f"
# With 48 fixed effects nlminb's default limits (300 iterations, 400 evaluations) stop the Gamma fits short,
# "iteration limit reached without convergence (10)": raise them.
control <- glmmTMBControl(optCtrl = list(iter.max = 10000, eval.max = 10000))

table_of <- function(x) {
  s <- as.data.frame(summary(x))
  list(columns = I(names(s)), values = lapply(s, function(col) if (is.factor(col)) as.character(col) else col),
       lines = I(capture.output(print(x))))
}

gamma_log <- Gamma(link = "log")
cases <- list(
  cow_gamma_animal_ml = list(response = "weight", random = "(1 | animal)", family = gamma_log),
  cow_gamma_ar1_ml = list(response = "weight", random = "ar1(day_f + 0 | animal)", family = gamma_log),
  cow_gamma_slope_ml = list(response = "weight", random = "(1 + t | animal)", family = gamma_log),
  cow_gaussian_animal_ml = list(response = "weight", random = "(1 | animal)", family = gaussian()),
  cow_log_animal_ml = list(response = "log(weight)", random = "(1 | animal)", family = gaussian()))

for (name in names(cases)) {
  case <- cases[[name]]
  formula <- paste(case$response, "~", fixed, "+", case$random)
  seconds <- system.time(m <- glmmTMB(as.formula(formula), family = case$family, data = cows, REML = FALSE,
                                      control = control))[["elapsed"]]
  pd <- isTRUE(m$sdr$pdHess)
  ll <- as.numeric(logLik(m))
  x <- list(case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = "diggle_cow",
            formula = formula, family = case$family$family, link = case$family$link, REML = FALSE,
            nobs = nobs(m), df_resid = df.residual(m), logLik = ll, AIC = AIC(m), BIC = BIC(m),
            loglik_weight_scale = if (case$response == "log(weight)") ll - sum(log(cows$weight)) else ll,
            objective = -m$fit$objective, message = m$fit$message,
            fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
            random = vc_list(VarCorr(m)$cond), sigma = sigma(m),
            fitted_head = unname(head(predict(m, type = "response"), 5)),
            pearson_ss = sum(residuals(m, type = "pearson")^2),
            converged = m$fit$convergence == 0, pdHess = pd,
            summary_lines = summary_lines(m))
  if (pd && case$family$family == "Gamma") {
    last <- emmeans(m, ~ iron * infect, at = list(day_f = "781"), type = "response")
    mean_days <- emmeans(m, ~ iron * infect, type = "response")
    x$emmeans_last <- table_of(last)
    x$pairs_last <- table_of(pairs(last))
    x$emmeans_mean <- table_of(mean_days)
    x$pairs_mean <- table_of(pairs(mean_days))
  }
  write_json(x, file.path(out, paste0(name, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-26s logLik %10.4f  AIC %9.3f  weight-scale logLik %10.4f  %s  pdHess %s  %.1f s\n", name, x$logLik,
              x$AIC, x$loglik_weight_scale, x$message, pd, seconds))
}
writeLines(capture.output(sessionInfo()), file.path(out, "cow_sessionInfo.txt"))
