# One fit of one scale benchmark row with one R engine, in a process of its own, so that its peak memory is
# its own: prints a JSON line with the elapsed seconds (the median of `runs` fits), logLik, estimates, the
# random-effect SDs, sigma and the process's peak resident memory (VmHWM, MB).
#
# Usage, from the project root (benchmarks/scale.py calls it):
#   Rscript benchmarks/r_scale.R export              # write the cost-growth data sets into benchmarks/data
#   Rscript benchmarks/r_scale.R ROW ENGINE [RUNS]   # ENGINE: lmer, glmer, glmmTMB or glm
suppressMessages({library(lme4); library(glmmTMB); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
data_dir <- "benchmarks/data"

growth_sizes <- c(1e3, 1e4, 1e5, 1e6)
growth_file <- function(n) file.path(data_dir, sprintf("growth_%d.csv.gz", as.integer(n)))

export <- function() {
  # InstEval and Chem97 are read from tests/reference/data (written there by make_scale_reference.R).
  # the cost-growth rows: y ~ x + (1 | g), binary, 50 rows per group, intercept SD 0.8 (not committed:
  # remade here, from the seed, for every run)
  for (n in growth_sizes) {
    set.seed(20261201 + n)
    k <- n / 50
    g <- rep(sprintf("g%06d", seq_len(k)), each = 50)
    x <- round(rnorm(n), 3)
    y <- rbinom(n, 1, plogis(-0.5 + 0.7 * x + rnorm(k, 0, 0.8)[rep(seq_len(k), each = 50)]))
    con <- gzfile(growth_file(n), "w"); write.csv(data.frame(y, x, g), con, row.names = FALSE, quote = FALSE)
    close(con)
  }
}

load_row <- function(row) {
  if (startsWith(row, "insteval")) {
    d <- read.csv("tests/reference/data/insteval.csv.gz")
    for (v in c("s", "d", "dept", "service")) d[[v]] <- factor(d[[v]])
    d$good <- as.integer(d$y > 3)
    return(d)
  }
  if (row == "chem97") {
    d <- read.csv("tests/reference/data/chem97.csv.gz")
    d$lea <- factor(d$lea); d$school <- factor(d$school)
    return(d)
  }
  if (row == "fish_gamma_glm") {
    d <- read.csv("datasets/fish_vaccines.csv")
    d$vaccine <- factor(d$vaccine); d$day_f <- factor(d$day)
    return(d)
  }
  d <- read.csv(growth_file(as.numeric(sub("growth_", "", row))))
  d$g <- factor(d$g)
  d
}

fit_row <- function(row, engine, d) {
  f <- switch(sub("_[0-9]+$", "", row),
              insteval_gaussian = y ~ service + (1 | s) + (1 | d) + (1 | dept:service),
              insteval_binary = good ~ service + (1 | s) + (1 | d),
              chem97 = score ~ 1 + (1 | lea/school),
              fish_gamma_glm = wt ~ vaccine * day_f,
              growth = y ~ x + (1 | g))
  reml <- row %in% c("insteval_gaussian", "chem97")
  family <- switch(sub("_[0-9]+$", "", row), insteval_gaussian = gaussian(), chem97 = gaussian(),
                   fish_gamma_glm = Gamma(link = "log"), binomial())
  switch(engine,
         lmer = lmer(f, data = d, REML = reml),
         glmer = glmer(f, data = d, family = family),
         glm = glm(f, data = d, family = family),
         glmmTMB = glmmTMB(f, data = d, family = family, REML = reml))
}

peak_mb <- function() {
  status <- readLines("/proc/self/status")
  as.numeric(strsplit(trimws(sub("VmHWM:", "", grep("^VmHWM", status, value = TRUE))), " ")[[1]][1]) / 1024
}

if (args[1] == "export") {
  export()
} else {
  row <- args[1]; engine <- args[2]; runs <- if (length(args) > 2) as.integer(args[3]) else 1
  d <- load_row(row)
  warn <- character(0)
  seconds <- sapply(seq_len(runs), function(i) system.time(fit <<- withCallingHandlers(fit_row(row, engine, d),
    warning = function(w) { warn <<- union(warn, conditionMessage(w)); invokeRestart("muffleWarning") }))[["elapsed"]])
  sds <- if (engine %in% c("lmer", "glmer")) sapply(VarCorr(fit), function(v) attr(v, "stddev")) else
    if (engine == "glmmTMB" && length(VarCorr(fit)$cond)) sapply(VarCorr(fit)$cond, function(v) attr(v, "stddev")) else numeric(0)
  out <- list(row = row, engine = engine, seconds = median(seconds), runs = runs, logLik = as.numeric(logLik(fit)),
              fixef = as.list(if (engine == "glmmTMB") fixef(fit)$cond else if (engine == "glm") coef(fit) else fixef(fit)),
              sd = as.list(sds), peak_mb = peak_mb(), warnings = I(warn))
  cat(toJSON(out, auto_unbox = TRUE, digits = NA), "\n")
}
