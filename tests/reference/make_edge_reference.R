# Reference fits from glmmTMB for data that once gave glmmteach a wrong answer:
#   - columns named like formula functions (a column I next to I(x^2); a factor column center);
#   - a binomial cloglog dose-response with near-complete survival at the highest doses, where log(1 - mu)
#     = -exp(eta) is far below the -36 that a mean clipped to 1 - 2.2e-16 allows (R's glm clips and is
#     wrong: its logLik is printed next to glmmTMB's below), as a GLM and with (Dose | Rep);
#   - optima next to a boundary: a Poisson (x | i) fit with frequency weights (and the same data expanded
#     to one row per unit), and a second cloglog dose-response, whose default starts stop with an SD at 0.
# Conventions as make_extra_reference.R: each data set simulated with its own set.seed, rounded, written to
# tests/reference/data/NAME.csv and read back before fitting; one JSON per case in the same format; every
# fit must converge with a positive-definite Hessian and no variance or correlation at its boundary.
#
# Usage, from the project root: Rscript tests/reference/make_edge_reference.R tests/reference
suppressMessages({library(glmmTMB); library(jsonlite)})
args <- commandArgs(TRUE)
out <- if (length(args)) args[1] else "tests/reference"
datadir <- file.path(out, "data")
dir.create(datadir, showWarnings = FALSE, recursive = TRUE)

# ---------------------------------------------------------------- summaries (as make_extra_reference.R) ------
vc_list <- function(vc) {
  lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
}

tmb_summary <- function(m, name, formula, family, link, data_name, extra = list()) {
  v <- vcov(m)$cond
  res <- list(
    case = name, engine = paste0("glmmTMB ", packageVersion("glmmTMB")), data = data_name,
    data_file = paste0("tests/reference/data/", data_name, ".csv"),
    formula = formula, family = family, link = link, REML = FALSE,
    nobs = nobs(m), df_resid = df.residual(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(v))),
    random = vc_list(VarCorr(m)$cond), sigma = sigma(m),
    fitted_head = unname(head(predict(m, type = "response"), 5)),
    pearson_ss = sum(residuals(m, type = "pearson")^2),
    converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
  # glmmTMB's Pearson residuals are NaN where a fitted mean rounds to exactly 1 (the cloglog fits): no sum then
  if (!is.finite(res$pearson_ss)) res$pearson_ss <- NULL
  check(res)
  c(res, extra)
}

check <- function(res) {
  if (!isTRUE(res$converged) || !isTRUE(res$pdHess))
    stop(res$case, ": converged ", res$converged, ", pdHess ", res$pdHess)
  for (r in res$random) if (any(r$sd < 1e-3) || any(abs(r$corr) > 0.99)) stop(res$case, ": boundary fit in ", r$group)
}

save <- function(x, dir = out) {
  write_json(x, file.path(dir, paste0(x$case, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-36s logLik %12.4f  pdHess %s\n", x$case, x$logLik, x$pdHess))
}

put <- function(d, name) {
  write.csv(d, file.path(datadir, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
  read.csv(file.path(datadir, paste0(name, ".csv")), stringsAsFactors = TRUE)
}
lev <- function(prefix, k) sprintf(paste0(prefix, "%02d"), seq_len(k))
grp <- function(prefix, k, each) factor(rep(lev(prefix, k), each = each), levels = lev(prefix, k))

# ---------------------------------------------------------------- columns named like functions ---------------
# a numeric column called I (an intensity), used bare next to the function I(x^2): 20 groups x 10, Poisson
set.seed(20240401)
k <- 20; m_ <- 10
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3); I <- round(runif(k * m_, 0, 2), 3)
y <- rpois(k * m_, exp(0.5 + 0.4 * I + 0.6 * x^2 + rnorm(k, 0, 0.4)[g]))
col_I <- put(data.frame(y, I, x, g), "column_I")
m <- glmmTMB(y ~ I + I(x^2) + (1 | g), family = poisson, data = col_I)
save(tmb_summary(m, "column_I", "y ~ I + I(x^2) + (1 | g)", "poisson", "log", "column_I"))

# a factor column called center (three centres of a trial), binomial trials: 24 groups x 8
set.seed(20240402)
k <- 24; m_ <- 8
g <- grp("g", k, m_); x <- round(runif(k * m_, -1, 1), 3)
center <- factor(rep(c("A", "B", "C"), length.out = k)[as.integer(g)])
n <- sample(5:15, k * m_, replace = TRUE)
y <- rbinom(k * m_, n, plogis(-0.2 + c(A = 0, B = 0.5, C = -0.4)[as.character(center)] + 0.7 * x + rnorm(k, 0, 0.5)[g]))
col_center <- put(data.frame(y, n, center, x, g), "column_center")
m <- glmmTMB(cbind(y, n - y) ~ center + x + (1 | g), family = binomial, data = col_center)
save(tmb_summary(m, "column_center", "cbind(y, n - y) ~ center + x + (1 | g)", "binomial", "logit", "column_center"))

# ---------------------------------------------------------------- cloglog dose-response ----------------------
# 10 replicates x 11 doses (log dose, centred) x 50 insects; survival rises steeply with dose and levels off at
# 99.5%, so the top doses have a few deaths each where the fitted cloglog curve has eta up to 11.
dose_data <- function(seed, doses, top, slope) {
  set.seed(seed)
  reps <- 10
  d <- expand.grid(Dose = doses, Rep = sprintf("r%02d", 1:reps))
  d$n <- 50
  ua <- rnorm(reps, 0, 0.5); ub <- rnorm(reps, 0, 0.4)
  r <- as.integer(factor(d$Rep))
  d$alive <- rbinom(nrow(d), d$n, top * plogis(-1 + slope * d$Dose + ua[r] + ub[r] * d$Dose))
  d[, c("alive", "n", "Dose", "Rep")]
}
dose <- put(dose_data(20240255, seq(-2, 3, by = 0.5), 0.995, 6), "cloglog_dose")
f <- cbind(alive, n - alive) ~ Dose
g <- suppressWarnings(glm(f, family = binomial("cloglog"), data = dose))
m <- glmmTMB(f, family = binomial("cloglog"), data = dose)
cat(sprintf("cloglog_dose GLM: glm (clipped mean) logLik %.4f, glmmTMB %.4f\n", logLik(g), logLik(m)))
save(tmb_summary(m, "binomial_cloglog_dose_glm", "cbind(alive, n - alive) ~ Dose", "binomial", "cloglog",
                 "cloglog_dose", extra = list(glm_logLik_clipped = as.numeric(logLik(g)))))
m <- glmmTMB(cbind(alive, n - alive) ~ Dose + (Dose | Rep), family = binomial("cloglog"), data = dose)
save(tmb_summary(m, "binomial_cloglog_dose_slopes", "cbind(alive, n - alive) ~ Dose + (Dose | Rep)", "binomial",
                 "cloglog", "cloglog_dose"))

# ---------------------------------------------------------------- optima next to a boundary ------------------
# the same design with doses up to 2.5 and a top of 99%: from glmmteach's default start the Rep intercept SD
# went to 0, 2.1 log-likelihood units below this optimum
dose_b <- put(dose_data(20240241, seq(-2, 2.5, by = 0.5), 0.99, 5), "cloglog_dose_b")
m <- glmmTMB(cbind(alive, n - alive) ~ Dose + (Dose | Rep), family = binomial("cloglog"), data = dose_b)
save(tmb_summary(m, "binomial_cloglog_dose_slopes_b", "cbind(alive, n - alive) ~ Dose + (Dose | Rep)", "binomial",
                 "cloglog", "cloglog_dose_b"))

# Poisson counts of 12 units at each x = 0..3 in 12 groups i, with correlated intercepts and slopes; the rows
# with the same (i, x, y) are aggregated with their frequency Freq. Fitted with weights = Freq, and expanded
# to one row per unit (the same log-likelihood; nobs and BIC differ)
set.seed(20240306)
k <- 12
units <- expand.grid(unit = 1:12, x = 0:3, i = lev("i", k))
ua <- rnorm(k, 0, 0.3); ub <- rnorm(k, 0, 0.3)
r <- as.integer(factor(units$i))
units$y <- rpois(nrow(units), exp(0.2 + 0.3 * units$x + ua[r] + ub[r] * units$x))
freq <- aggregate(list(Freq = rep(1, nrow(units))), units[, c("y", "x", "i")], sum)
freq <- put(freq[order(freq$i, freq$x, freq$y), c("y", "x", "i", "Freq")], "poisson_freq")
expanded <- put(freq[rep(seq_len(nrow(freq)), freq$Freq), c("y", "x", "i")], "poisson_freq_expanded")
m <- glmmTMB(y ~ x + (x | i), family = poisson, data = freq, weights = Freq)
save(tmb_summary(m, "poisson_freq_weights", "y ~ x + (x | i), weights = Freq", "poisson", "log", "poisson_freq"))
m <- glmmTMB(y ~ x + (x | i), family = poisson, data = expanded)
save(tmb_summary(m, "poisson_freq_expanded", "y ~ x + (x | i)", "poisson", "log", "poisson_freq_expanded"))

writeLines(capture.output(sessionInfo()), file.path(out, "edge_sessionInfo.txt"))
cat("done\n")
