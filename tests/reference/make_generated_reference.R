# A differential test: random but well-posed GLMMs, simulated here and fitted by glmmTMB; tests/test_generated.py
# fits each with glmmteach and compares.
#
# Every family and link pair that glmmteach allows, canonical or not (gaussian identity/log/inverse; binomial
# logit/probit/cloglog, with 0/1 responses or y out of n trials; poisson log/sqrt, some with an offset; Gamma
# log/inverse/identity; nbinom2 log; beta logit/probit), each crossed with four random-effect structures
# ((1 | g), (1 + x | g), crossed (1 | g) + (1 | h), nested (1 | g/h)); then more of them drawn at random. Sizes from
# 8 to 30 groups and 3 to 25 rows per group (or per cell), and three models of 2,000 to 2,500 rows (gaussian and
# Gamma with the inverse link, nested and crossed); each true SD is 0 with probability 0.2; ML, or REML
# with probability 0.3. The linear predictors are chosen inside each link's range (e.g. eta about 0.5 to 1.5 for
# the inverse link, with SDs a tenth of it), so the models are well-posed.
#
# Writes data/generated.csv (all data sets, one column `model`; columns a model does not use are empty) and
# generated_models.json: for each model its formula, family, link, REML flag, the true parameters, and glmmTMB's
# estimates with what glmmTMB said about them: `clean` is TRUE when the fit converged (code 0) with a positive-
# definite Hessian, no warning, and no SD below 1e-3 or correlation beyond +-0.99. A fit that failed is kept with
# its error message (`failed`).
#
# Usage, from the project root: Rscript tests/reference/make_generated_reference.R tests/reference
suppressMessages({library(glmmTMB); library(jsonlite)})
args <- commandArgs(TRUE)
out <- if (length(args)) args[1] else "tests/reference"
datadir <- file.path(out, "data")
dir.create(datadir, showWarnings = FALSE, recursive = TRUE)

LINKS <- list(c("gaussian", "identity"), c("gaussian", "log"), c("gaussian", "inverse"),
              c("binomial", "logit"), c("binomial", "probit"), c("binomial", "cloglog"),
              c("poisson", "log"), c("poisson", "sqrt"),
              c("Gamma", "log"), c("Gamma", "inverse"), c("Gamma", "identity"),
              c("nbinom2", "log"), c("beta", "logit"), c("beta", "probit"))
STRUCTURES <- c("(1 | g)", "(1 + x | g)", "(1 | g) + (1 | h)", "(1 | g/h)")

lev <- function(prefix, k) sprintf(paste0(prefix, "%02d"), seq_len(k))
sd_or_zero <- function(s) if (runif(1) < 0.2) 0 else s

# eta = b0 + b1 x + random effects, on a scale that keeps the mean inside the family's range
scale_of <- function(family, link) {
  switch(paste(family, link),
    "gaussian identity" = list(b0 = runif(1, -2, 2), b1 = runif(1, -1, 1), sd = runif(1, 0.3, 1)),
    "gaussian log" = list(b0 = runif(1, 0.5, 2), b1 = runif(1, -0.4, 0.4), sd = runif(1, 0.1, 0.3)),
    "gaussian inverse" = { b0 <- runif(1, 0.5, 1.5); list(b0 = b0, b1 = 0.1 * b0 * runif(1, -1, 1), sd = b0 * runif(1, 0.03, 0.1)) },
    "binomial logit" = list(b0 = runif(1, -1, 1), b1 = runif(1, -1, 1), sd = runif(1, 0.3, 1)),
    "binomial probit" = list(b0 = runif(1, -0.6, 0.6), b1 = runif(1, -0.6, 0.6), sd = runif(1, 0.2, 0.6)),
    "binomial cloglog" = list(b0 = runif(1, -1.5, 0), b1 = runif(1, -0.6, 0.6), sd = runif(1, 0.2, 0.6)),
    "poisson log" = list(b0 = runif(1, 0, 2), b1 = runif(1, -0.5, 0.5), sd = runif(1, 0.2, 0.6)),
    "poisson sqrt" = list(b0 = runif(1, 1.5, 3), b1 = runif(1, -0.3, 0.3), sd = runif(1, 0.1, 0.4)),
    "Gamma log" = list(b0 = runif(1, 0, 2), b1 = runif(1, -0.5, 0.5), sd = runif(1, 0.1, 0.5)),
    "Gamma inverse" = { b0 <- runif(1, 0.3, 1); list(b0 = b0, b1 = 0.1 * b0 * runif(1, -1, 1), sd = b0 * runif(1, 0.03, 0.12)) },
    "Gamma identity" = { b0 <- runif(1, 2, 6); list(b0 = b0, b1 = 0.1 * b0 * runif(1, -1, 1), sd = b0 * runif(1, 0.05, 0.15)) },
    "nbinom2 log" = list(b0 = runif(1, 0.5, 2), b1 = runif(1, -0.5, 0.5), sd = runif(1, 0.2, 0.6)),
    "beta logit" = list(b0 = runif(1, -1, 1), b1 = runif(1, -0.8, 0.8), sd = runif(1, 0.1, 0.5)),
    "beta probit" = list(b0 = runif(1, -0.6, 0.6), b1 = runif(1, -0.5, 0.5), sd = runif(1, 0.1, 0.3)))
}

# the groups: g alone, g and h crossed, or h nested in g (labels h1.. reused within each g)
design_of <- function(structure, large = FALSE) {
  k <- sample(8:30, 1)
  if (structure == "(1 | g) + (1 | h)") {
    kh <- sample(5:15, 1); reps <- sample(1:3, 1)
    if (large) { k <- 30; kh <- 20; reps <- 4 }
    d <- expand.grid(rep = seq_len(reps), h = lev("h", kh), g = lev("g", k))
    d <- d[sort(sample(nrow(d), min(nrow(d), max(60, round(nrow(d) * runif(1, if (large) 0.9 else 0.5, 1)))))), ]
  } else if (structure == "(1 | g/h)") {
    k <- sample(6:15, 1); kh <- sample(2:5, 1); each <- sample(3:10, 1)
    if (large) { k <- 25; kh <- 5; each <- 20 }
    d <- expand.grid(rep = seq_len(each), h = paste0("h", seq_len(kh)), g = lev("g", k))
  } else {
    d <- data.frame(g = rep(lev("g", k), times = sample(3:25, k, replace = TRUE)))
  }
  d$g <- factor(d$g)
  if (!is.null(d$h)) d$h <- factor(d$h)
  d$rep <- NULL
  d
}

simulate_model <- function(id, family, link, structure, large = FALSE) {
  d <- design_of(structure, large)
  N <- nrow(d)
  d$x <- round(runif(N, -1, 1), 3)
  s <- scale_of(family, link)
  truth <- list(b0 = s$b0, b1 = s$b1)
  G <- nlevels(d$g); gi <- as.integer(d$g)
  eta <- s$b0 + s$b1 * d$x
  if (structure == "(1 | g)") {
    truth$sd_g <- sd_or_zero(s$sd); eta <- eta + rnorm(G, 0, truth$sd_g)[gi]
  } else if (structure == "(1 + x | g)") {
    truth$sd_g <- sd_or_zero(s$sd); truth$sd_x <- sd_or_zero(0.6 * s$sd); truth$corr <- round(runif(1, -0.6, 0.6), 2)
    z1 <- rnorm(G); z2 <- truth$corr * z1 + sqrt(1 - truth$corr^2) * rnorm(G)
    eta <- eta + (truth$sd_g * z1)[gi] + (truth$sd_x * z2)[gi] * d$x
  } else if (structure == "(1 | g) + (1 | h)") {
    truth$sd_g <- sd_or_zero(s$sd); truth$sd_h <- sd_or_zero(0.7 * s$sd)
    eta <- eta + rnorm(G, 0, truth$sd_g)[gi] + rnorm(nlevels(d$h), 0, truth$sd_h)[as.integer(d$h)]
  } else {
    truth$sd_g <- sd_or_zero(s$sd); truth$sd_hg <- sd_or_zero(0.7 * s$sd)
    cell <- as.integer(interaction(d$h, d$g))
    eta <- eta + rnorm(G, 0, truth$sd_g)[gi] + rnorm(max(cell), 0, truth$sd_hg)[cell]
  }
  offset <- FALSE; trials <- FALSE
  if (family == "poisson" && link == "log" && runif(1) < 0.4) {
    offset <- TRUE; d$t <- round(runif(N, 0.5, 3), 2); eta <- eta + log(d$t)
  }
  mu <- switch(link, identity = eta, log = exp(eta), inverse = 1 / eta, sqrt = eta^2,
               logit = plogis(eta), probit = pnorm(eta), cloglog = -expm1(-exp(eta)))
  if (family == "gaussian") {
    truth$sigma <- signif(runif(1, 0.1, 0.4) * mean(abs(mu)), 3); d$y <- round(rnorm(N, mu, truth$sigma), 5)
  } else if (family == "binomial") {
    trials <- runif(1) < 0.5
    d$n <- if (trials) sample(3:15, N, replace = TRUE) else rep(1L, N)
    d$y <- rbinom(N, d$n, mu)
  } else if (family == "poisson") {
    d$y <- rpois(N, mu)
  } else if (family == "Gamma") {
    truth$shape <- round(runif(1, 2, 10), 2); d$y <- signif(rgamma(N, truth$shape, truth$shape / mu), 7)
  } else if (family == "nbinom2") {
    truth$theta <- round(runif(1, 1, 10), 2); d$y <- rnbinom(N, mu = mu, size = truth$theta)
  } else {
    truth$phi <- round(runif(1, 5, 30), 1)
    d$y <- pmin(pmax(round(rbeta(N, mu * truth$phi, (1 - mu) * truth$phi), 6), 1e-6), 1 - 1e-6)
  }
  response <- if (family == "binomial" && trials) "cbind(y, n - y)" else "y"
  formula <- paste(response, "~ x", if (offset) "+ offset(log(t))", "+", structure)
  list(id = id, family = family, link = link, structure = structure, formula = formula,
       REML = runif(1) < 0.3, truth = truth, data = d)
}

fit_tmb <- function(m) {
  fam <- switch(m$family, gaussian = gaussian(link = m$link), binomial = binomial(link = m$link),
                poisson = poisson(link = m$link), Gamma = Gamma(link = m$link), nbinom2 = nbinom2(link = m$link),
                beta = beta_family(link = m$link))
  caught <- character(0)
  start <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(
    tryCatch(glmmTMB(as.formula(m$formula), data = m$data, family = fam, REML = m$REML),
             error = function(e) e),
    warning = function(w) { caught <<- c(caught, conditionMessage(w)); invokeRestart("muffleWarning") })
  seconds <- proc.time()[["elapsed"]] - start
  if (inherits(fit, "error")) return(list(failed = conditionMessage(fit), warnings = I(caught)))
  vc <- VarCorr(fit)$cond
  random <- lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
  se <- tryCatch(sqrt(diag(vcov(fit)$cond)), error = function(e) rep(NaN, length(fixef(fit)$cond)), warning = function(w) rep(NaN, length(fixef(fit)$cond)))
  ll <- as.numeric(logLik(fit))
  boundary <- any(sapply(random, function(r) any(r$sd < 1e-3) || any(abs(r$corr) > 0.99)))
  list(logLik = ll, fixef = as.list(fixef(fit)$cond), se = as.list(se), random = random,
       sigma = tryCatch(sigma(fit), error = function(e) NA),
       convergence = fit$fit$convergence, message = fit$fit$message, pdHess = fit$sdr$pdHess,
       warnings = I(caught), seconds = seconds,
       clean = fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess) && length(caught) == 0 && !boundary && is.finite(ll))
}

set.seed(20241217)
plan <- expand.grid(structure = STRUCTURES, link = seq_along(LINKS), stringsAsFactors = FALSE)
plan <- plan[sample(nrow(plan)), ]
extra <- data.frame(structure = sample(STRUCTURES, 10, replace = TRUE), link = sample(seq_along(LINKS), 10, replace = TRUE))
plan <- rbind(plan, extra)
plan$large <- FALSE
# and three large ones (2,000 to 2,500 rows), with the inverse link and nested or crossed intercepts
plan <- rbind(plan, data.frame(structure = c("(1 | g/h)", "(1 | g) + (1 | h)", "(1 | g/h)"), link = c(3, 3, 10),
                               large = TRUE))
models <- list(); rows <- list()
for (i in seq_len(nrow(plan))) {
  fl <- LINKS[[plan$link[i]]]
  m <- simulate_model(sprintf("m%02d", i), fl[1], fl[2], plan$structure[i], plan$large[i])
  d <- m$data
  d$model <- m$id
  rows[[i]] <- d
  models[[i]] <- m
}
# write every data set, then read them back, so that the fits use exactly what the CSV holds
all_rows <- do.call(rbind, lapply(rows, function(d) {
  for (col in c("n", "t", "h")) if (is.null(d[[col]])) d[[col]] <- NA
  d[, c("model", "y", "n", "x", "t", "g", "h")]
}))
write.csv(all_rows, file.path(datadir, "generated.csv"), row.names = FALSE, quote = FALSE, na = "")
back <- read.csv(file.path(datadir, "generated.csv"), stringsAsFactors = TRUE)
results <- list()
for (i in seq_along(models)) {
  m <- models[[i]]
  d <- droplevels(back[back$model == m$id, ])
  m$data <- d[, colSums(!is.na(d)) > 0]
  r <- fit_tmb(m)
  results[[i]] <- c(list(id = m$id, formula = m$formula, family = m$family, link = m$link, REML = m$REML,
                         structure = m$structure, nobs = nrow(d), truth = m$truth,
                         engine = paste0("glmmTMB ", packageVersion("glmmTMB"))), r)
  cat(sprintf("%s %-9s %-8s %-18s REML=%-5s n=%4d  %s\n", m$id, m$family, m$link, m$structure, m$REML, nrow(d),
              if (!is.null(r$failed)) paste("FAILED:", r$failed) else
              sprintf("logLik %.4f clean %s%s", r$logLik, r$clean,
                      if (length(r$warnings)) paste0(" [", paste(unique(r$warnings), collapse = "; "), "]") else "")))
}
write_json(results, file.path(out, "generated_models.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
writeLines(capture.output(sessionInfo()), file.path(out, "generated_sessionInfo.txt"))
cat("done\n")
