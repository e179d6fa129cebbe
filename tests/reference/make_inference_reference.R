# Reference for glmmteach's inference: marginal means, contrasts, joint tests (emmeans on glmmTMB fits),
# confidence intervals (glmmTMB's confint, Wald and profile) and likelihood-ratio tables (anova).
# Writes tests/reference/inference_reference.json. Every table is kept twice: its numbers (the columns of
# summary(), full precision) and the lines R prints for it.
# Usage, from the project root: Rscript tests/reference/make_inference_reference.R
# (R 4.2.2, glmmTMB 1.1.5, emmeans 1.8.4, mvtnorm, jsonlite; Debian packages r-cran-glmmtmb r-cran-emmeans)
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite); library(mvtnorm)})
set.seed(20261201)   # emmeans' "mvt" adjustment integrates with mvtnorm's randomised Genz-Bretz method

fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
seeds <- read.csv("datasets/crowder_seeds.csv", stringsAsFactors = TRUE)
# The jaw deformity is recorded once and kept for life: one value per fish (the harvest row).
stopifnot(all(tapply(fish$jaw, fish$fish, function(v) length(unique(v))) == 1))
jaw <- fish[fish$day == 901, ]

table_of <- function(x) {
  s <- if (inherits(x, "summary_emm")) as.data.frame(x) else as.data.frame(summary(x))   # joint_tests: a summary
  list(columns = I(names(s)), values = lapply(s, function(col) if (is.factor(col)) as.character(col) else col),
       lines = I(capture.output(print(x))))
}

out <- list(engine = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                          emmeans = as.character(packageVersion("emmeans")),
                          mvtnorm = as.character(packageVersion("mvtnorm"))))

# ---- salmon: wt ~ vaccine * day_f + (1 | fish), Gamma(log), REML ----
salmon <- glmmTMB(wt ~ vaccine * day_f + (1 | fish), family = Gamma(link = "log"), data = fish, REML = TRUE)
e <- emmeans(salmon, ~ vaccine | day_f, type = "response")
h <- emmeans(salmon, ~ vaccine, at = list(day_f = "901"), type = "response")
hl <- emmeans(salmon, ~ vaccine, at = list(day_f = "901"))
out$salmon <- list(
  formula = "wt ~ vaccine * day_f + (1 | fish)", family = "Gamma", link = "log", REML = TRUE,
  df_resid = df.residual(salmon),
  emmeans_response = table_of(e),
  emmeans_link = table_of(emmeans(salmon, ~ vaccine | day_f)),
  emmeans_vaccine = table_of(emmeans(salmon, ~ vaccine)),          # averaged over day_f
  pairs_by_day = table_of(pairs(e)),
  harvest_emmeans = table_of(h),
  harvest_pairs = table_of(pairs(h)),
  harvest_pairs_link = table_of(pairs(hl)),
  harvest_revpairwise = table_of(contrast(h, "revpairwise")),
  harvest_trt_vs_ctrl = table_of(contrast(h, "trt.vs.ctrl", ref = 1)),
  harvest_trt_vs_ctrl3 = table_of(contrast(h, "trt.vs.ctrl", ref = 3)),
  harvest_consec = table_of(contrast(h, "consec")),
  harvest_custom = table_of(contrast(h, list(`1 vs 2` = c(1, -1, 0, 0), `1+2 vs 3+4` = c(0.5, 0.5, -0.5, -0.5)))),
  harvest_pairs_adjust = lapply(setNames(nm = c("none", "bonferroni", "holm", "sidak", "tukey", "mvt")),
                                function(a) table_of(pairs(h, adjust = a))),
  harvest_trt_vs_ctrl_mvt = table_of(contrast(h, "trt.vs.ctrl", adjust = "mvt")),
  joint_tests = table_of(joint_tests(salmon)))

# ---- jaw deformity, one row per fish: jaw ~ vaccine, binomial (logit) ----
jm <- glmmTMB(jaw ~ vaccine, family = binomial, data = jaw)
ej <- emmeans(jm, ~ vaccine, type = "response")
out$jaw <- list(formula = "jaw ~ vaccine", family = "binomial", link = "logit", REML = FALSE,
                rows = "the harvest row (day 901) of each fish", df_resid = df.residual(jm),
                fixef = as.list(fixef(jm)$cond),
                emmeans_response = table_of(ej), pairs = table_of(pairs(ej)),
                pairs_link = table_of(pairs(emmeans(jm, ~ vaccine))),
                joint_tests = table_of(joint_tests(jm)))

# ---- crowder seeds: cbind(germ, n - germ) ~ gen * extract + (1 | plate), binomial, REML ----
crowder <- glmmTMB(cbind(germ, n - germ) ~ gen * extract + (1 | plate), family = binomial, data = seeds,
                   REML = TRUE)
ec <- emmeans(crowder, ~ extract | gen, type = "response")
out$crowder <- list(formula = "cbind(germ, n - germ) ~ gen * extract + (1 | plate)", family = "binomial",
                    link = "logit", REML = TRUE, df_resid = df.residual(crowder),
                    emmeans_response = table_of(ec), pairs = table_of(pairs(ec)),
                    emmeans_gen_link = table_of(emmeans(crowder, ~ gen)),
                    emmeans_cells = table_of(emmeans(crowder, ~ gen * extract, type = "response")),
                    pairs_cells = table_of(pairs(emmeans(crowder, ~ gen * extract, type = "response"))),
                    joint_tests = table_of(joint_tests(crowder)))

# ---- a covariate and the inverse link (turnip yields, Gamma); a covariate and an offset (Poisson) ----
turnip <- read.csv("datasets/mcconway_turnip.csv", stringsAsFactors = TRUE)
tm <- suppressWarnings(glmmTMB(yield ~ gen * date + log(density) + (1 | block), family = Gamma, data = turnip))
et <- emmeans(tm, ~ gen | date, type = "response")   # density at its mean: log(mean density) in the grid
out$turnip <- list(formula = "yield ~ gen * date + log(density) + (1 | block)", family = "Gamma",
                   link = "inverse", REML = FALSE, df_resid = df.residual(tm),
                   emmeans_response = table_of(et), pairs = table_of(pairs(et)),
                   emmeans_density = table_of(emmeans(tm, ~ density, at = list(density = c(1, 8)), type = "response")),
                   joint_tests = table_of(joint_tests(tm)))
po <- read.csv("tests/reference/data/poisson_offset.csv"); po$g <- factor(po$g)
pm <- glmmTMB(y ~ x + offset(log(t)) + (1 | g), family = poisson, data = po)
ep <- emmeans(pm, ~ x, at = list(x = c(-1, 0, 1)), type = "response")   # the offset at log(mean t)
out$poisson_offset <- list(formula = "y ~ x + offset(log(t)) + (1 | g)", family = "poisson", link = "log",
                           REML = FALSE, df_resid = df.residual(pm), data_file = "tests/reference/data/poisson_offset.csv",
                           emmeans_response = table_of(ep), consec = table_of(contrast(ep, "consec")),
                           pairs_link = table_of(pairs(emmeans(pm, ~ x, at = list(x = c(-1, 0, 1))))))

# ---- confint: Wald (both fits) and profile (ML fits; glmmTMB 1.1.5 does not profile REML fits) ----
ci_list <- function(ci) list(rows = I(rownames(ci)), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
                             estimate = if (ncol(ci) > 2) unname(ci[, 3]) else NULL)
crowder_ml <- update(crowder, REML = FALSE)
salmon_ml <- update(salmon, REML = FALSE)

# The profile interval of a random-effect SD, found with glmmTMB itself: the model refitted with log(SD)
# held at a value (map = theta fixed), and the root of 2 (logLik_max - logLik) = qchisq(0.95, 1). Where the
# profile never reaches that height down to SD = 0 (the model without the random effect), the lower limit is 0.
profile_sd <- function(m, data, level = 0.95) {
  cutoff <- qchisq(level, 1)
  est <- getME(m, "theta")
  drop <- function(log_sd) {
    f <- update(m, start = list(theta = log_sd), map = list(theta = factor(NA)))
    2 * (as.numeric(logLik(m)) - as.numeric(logLik(f)))
  }
  upper <- uniroot(function(s) drop(s) - cutoff, c(est, est + 2), tol = 1e-10)$root
  lower <- if (drop(est - 12) < cutoff) 0 else exp(uniroot(function(s) drop(s) - cutoff, c(est - 12, est),
                                                            tol = 1e-10)$root)
  list(lower = lower, upper = exp(upper), drop_at_sd_near_zero = drop(est - 12))
}

prof_salmon <- confint(salmon_ml, method = "profile", parm = c(1, 2, 20))
prof_salmon_sd <- confint(salmon_ml, method = "profile", parm = "theta_")
out$confint <- list(
  crowder_reml_wald = ci_list(confint(crowder)),
  crowder_ml_wald = ci_list(confint(crowder_ml)),
  crowder_ml_profile_beta = ci_list(confint(crowder_ml, method = "profile", parm = "beta_")),
  # glmmTMB's confint(method = "profile") stops for this SD (its profile flattens out above the cut-off
  # towards SD = 0, so there is no lower root): found as above instead.
  crowder_ml_profile_sd = profile_sd(crowder_ml, seeds),
  salmon_reml_wald = ci_list(confint(salmon)),
  salmon_ml_wald = ci_list(confint(salmon_ml)),
  salmon_ml_profile_beta = ci_list(prof_salmon),
  # glmmTMB reports the profile interval of theta on the log(SD) scale
  salmon_ml_profile_log_sd = ci_list(prof_salmon_sd),
  level90_crowder_ml_wald = ci_list(confint(crowder_ml, level = 0.9)))
fish$t <- fish$day / 901
slope_ml <- glmmTMB(wt ~ vaccine * day_f + (1 + t | fish), family = Gamma(link = "log"), data = fish)
out$confint$fish_slope_ml_wald <- ci_list(confint(slope_ml))

# ---- anova of nested ML fits ----
c0 <- glmmTMB(cbind(germ, n - germ) ~ gen + extract + (1 | plate), family = binomial, data = seeds)
c00 <- glmmTMB(cbind(germ, n - germ) ~ gen + (1 | plate), family = binomial, data = seeds)
a3 <- anova(c00, c0, crowder_ml)
s0 <- update(salmon_ml, . ~ vaccine + day_f + (1 | fish))
a2 <- anova(s0, salmon_ml)
anova_list <- function(a) list(rows = I(rownames(a)), columns = I(names(a)),
                               values = lapply(as.list(a), function(v) ifelse(is.na(v), NA, v)),
                               lines = I(capture.output(print(a))))
out$anova <- list(crowder_three = c(anova_list(a3), list(formulas = I(c(
                    "cbind(germ, n - germ) ~ gen + (1 | plate)", "cbind(germ, n - germ) ~ gen + extract + (1 | plate)",
                    "cbind(germ, n - germ) ~ gen * extract + (1 | plate)")))),
                  salmon_interaction = c(anova_list(a2), list(formulas = I(c(
                    "wt ~ vaccine + day_f + (1 | fish)", "wt ~ vaccine * day_f + (1 | fish)")))))

# ---- the p-value adjustments on their own, for 2 to 6 levels ----
# tukey: ptukey(sqrt(2)|t|, k, df); dunnettx: emmeans' approximation of Dunnett's test for k - 1 comparisons
# with a control; dunnett_mvt: the exact Dunnett p-value for equal group sizes, the multivariate t with
# correlation 1/2 (mvtnorm::pmvt, error below 1e-5).
grid <- expand.grid(t = c(0.5, 1.5, 2.2, 3, 4.5), k = 2:6, df = c(8, 30, 1998, Inf))
grid$tukey <- ptukey(sqrt(2) * grid$t, grid$k, grid$df, lower.tail = FALSE)
grid$dunnettx <- 1 - emmeans:::.pdunnx(grid$t, grid$k - 1, grid$df)
grid$dunnett_mvt <- mapply(function(t, k, df) {
  if (k == 2) return(2 * pt(-t, df))
  R <- matrix(0.5, k - 1, k - 1); diag(R) <- 1
  d <- if (is.finite(df)) as.integer(df) else 0L
  1 - pmvt(rep(-t, k - 1), rep(t, k - 1), df = d, corr = R, algorithm = GenzBretz(abseps = 1e-6, maxpts = 1e6))
}, grid$t, grid$k, grid$df)
out$adjust_grid <- lapply(grid, function(v) ifelse(is.infinite(v), "Inf", v))

write_json(out, "tests/reference/inference_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("done\n")
