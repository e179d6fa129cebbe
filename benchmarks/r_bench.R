# Times glmmTMB and lme4::glmer on the benchmark models; the Python benchmark compares against these.
# Debian: r-base-core r-cran-lme4 r-cran-glmmtmb r-cran-jsonlite.
#
# Writes benchmarks/data/verbagg.csv, benchmarks/data/sim_binomial_100k.csv.gz and
# benchmarks/data/crowder_refit_sims.csv (the data the Python benchmark reads; all are re-read here and the fits use
# them), and benchmarks/r_timings.json: engine versions, for each row
# and engine the median elapsed seconds of 3 fits (system.time) and the fit's logLik, estimates and SDs, so the
# Python benchmark can check it fits the same model. The crowder and fish rows also carry a glmmTMB ML fit, which
# uses the same criterion as glmer (the brief's glmmTMB fits there are REML).
#
# Usage, from the project root: Rscript benchmarks/r_bench.R
suppressMessages({library(glmmTMB); library(lme4); library(jsonlite)})
dir.create("benchmarks/data", showWarnings = FALSE, recursive = TRUE)
runs <- 3
loadavg <- function() if (file.exists("/proc/loadavg")) scan("/proc/loadavg", what = "", n = 3, quiet = TRUE) else NA
load_start <- loadavg()

# ---------------------------------------------------------------- data -------------------------------------------
seeds <- read.csv("datasets/crowder_seeds.csv", stringsAsFactors = TRUE)
fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
egg <- read.csv("datasets/fecal_egg_counts.csv")
for (v in c("tx", "lact", "manure", "province", "herd")) egg[[v]] <- factor(egg[[v]])

# VerbAgg from lme4, r2 written as 0/1 (1 = "Y"); read back with R's level orders restored
data(VerbAgg, package = "lme4")
va_out <- data.frame(r2 = as.integer(VerbAgg$r2 == "Y"), Anger = VerbAgg$Anger, Gender = VerbAgg$Gender,
                     btype = VerbAgg$btype, situ = VerbAgg$situ, id = VerbAgg$id, item = VerbAgg$item)
write.csv(va_out, "benchmarks/data/verbagg.csv", row.names = FALSE, quote = FALSE)
verbagg <- read.csv("benchmarks/data/verbagg.csv")
for (v in c("Gender", "btype", "situ", "id", "item"))
  verbagg[[v]] <- factor(verbagg[[v]], levels = levels(VerbAgg[[v]]))
stopifnot(all.equal(verbagg$r2, as.integer(VerbAgg$r2 == "Y")), identical(verbagg$item, VerbAgg$item),
          identical(verbagg$id, VerbAgg$id), identical(verbagg$btype, VerbAgg$btype))

# simulated binary data: 2,000 groups x 50 = 100,000 rows, intercept SD 0.8
set.seed(20240201)
k <- 2000; m_ <- 50
g <- rep(sprintf("g%04d", 1:k), each = m_)
x <- round(rnorm(k * m_), 3)
y <- rbinom(k * m_, 1, plogis(-0.5 + 0.7 * x + rnorm(k, 0, 0.8)[rep(1:k, each = m_)]))
con <- gzfile("benchmarks/data/sim_binomial_100k.csv.gz", "w")
write.csv(data.frame(y, x, g), con, row.names = FALSE, quote = FALSE); close(con)
stopifnot(file.size("benchmarks/data/sim_binomial_100k.csv.gz") < 5e6)
sim <- read.csv("benchmarks/data/sim_binomial_100k.csv.gz", stringsAsFactors = TRUE)

# ---------------------------------------------------------------- timing -----------------------------------------
# fit `runs` times; keep the elapsed seconds of each and the last fit, and the warnings of the fits
timed <- function(expr) {
  e <- substitute(expr); secs <- numeric(runs); warn <- character(0)
  for (i in seq_len(runs)) {
    secs[i] <- system.time(fit <- withCallingHandlers(eval(e, parent.frame(3)), warning = function(w) {
      warn <<- union(warn, conditionMessage(w)); invokeRestart("muffleWarning") }))[["elapsed"]]
  }
  list(fit = fit, seconds = secs, warnings = warn)
}

vc_list <- function(vc) lapply(names(vc), function(g) {
  s <- attr(vc[[g]], "stddev"); list(group = g, terms = I(names(s)), sd = I(unname(s)))
})

tmb_row <- function(t, reml) {
  m <- t$fit
  list(engine = "glmmTMB", method = if (reml) "REML" else "ML (Laplace)",
       seconds = round(median(t$seconds), 3), seconds_runs = round(t$seconds, 3),
       logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)$cond),
       se = as.list(sqrt(diag(vcov(m)$cond))), random = vc_list(VarCorr(m)$cond),
       sigma = tryCatch(sigma(m), error = function(e) NA),
       converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess, warnings = I(t$warnings))
}
glmer_row <- function(t) {
  m <- t$fit
  list(engine = "lme4::glmer", method = "ML (Laplace, nAGQ = 1)",
       seconds = round(median(t$seconds), 3), seconds_runs = round(t$seconds, 3),
       logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
       se = as.list(sqrt(diag(as.matrix(vcov(m))))), random = vc_list(VarCorr(m)),
       sigma = sigma(m),
       converged = m@optinfo$conv$opt == 0 && length(m@optinfo$conv$lme4$messages) == 0,
       lme4_messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
       singular = isSingular(m), warnings = I(t$warnings))
}

rows <- list()
add <- function(name, data_file, formula, family, link, nobs, fits, ziformula = NULL) {
  rows[[length(rows) + 1]] <<- c(list(name = name, data = data_file, formula = formula, family = family, link = link,
                                      nobs = nobs, fits = fits), if (!is.null(ziformula)) list(ziformula = ziformula))
  for (f in fits) cat(sprintf("%-16s %-12s %-24s %8.3f s  logLik %12.4f\n", name, f$engine, f$method, f$seconds,
                              f$logLik))
}

f <- cbind(germ, n - germ) ~ gen * extract + (1 | plate)
add("crowder", "datasets/crowder_seeds.csv", "cbind(germ, n - germ) ~ gen * extract + (1 | plate)", "binomial",
    "logit", nrow(seeds),
    list(tmb_row(timed(glmmTMB(f, family = binomial, data = seeds, REML = TRUE)), TRUE),
         glmer_row(timed(glmer(f, family = binomial, data = seeds, nAGQ = 1))),
         tmb_row(timed(glmmTMB(f, family = binomial, data = seeds)), FALSE)))   # ML: same criterion as glmer

# Crowder's beta-binomial: the plate-to-plate spread as the beta-binomial's precision (glmer has no beta-binomial)
f <- cbind(germ, n - germ) ~ gen * extract
add("crowder_betabinomial", "datasets/crowder_seeds.csv", "cbind(germ, n - germ) ~ gen * extract", "betabinomial",
    "logit", nrow(seeds), list(tmb_row(timed(glmmTMB(f, family = betabinomial, data = seeds)), FALSE)))

f <- wt ~ vaccine * day_f + (1 | fish)
add("fish_gamma", "datasets/fish_vaccines.csv (day_f = factor(day))", "wt ~ vaccine * day_f + (1 | fish)", "Gamma",
    "log", nrow(fish),
    list(tmb_row(timed(glmmTMB(f, family = Gamma(link = "log"), data = fish, REML = TRUE)), TRUE),
         glmer_row(timed(glmer(f, family = Gamma(link = "log"), data = fish))),
         tmb_row(timed(glmmTMB(f, family = Gamma(link = "log"), data = fish)), FALSE)))   # ML, as glmer

# repeated measures: an ar1 effect over the 5 days of each fish (glmer has no ar1)
f <- wt ~ vaccine * day_f + ar1(day_f + 0 | fish)
add("fish_gamma_ar1", "datasets/fish_vaccines.csv (day_f = factor(day))", "wt ~ vaccine * day_f + ar1(day_f + 0 | fish)",
    "Gamma", "log", nrow(fish),
    list(tmb_row(timed(glmmTMB(f, family = Gamma(link = "log"), data = fish)), FALSE)))

# zero-inflated counts: the egg counts' ZINB1 (nbinom1 with ziformula = ~ 1; glmer has no zero inflation)
f <- fec ~ tx + lact + manure + province + (1 | province:herd)
add("egg_zinb1", "datasets/fecal_egg_counts.csv (tx, lact, manure, province, herd factors)",
    "fec ~ tx + lact + manure + province + (1 | province:herd)", "nbinom1", "log", nrow(egg),
    list(tmb_row(timed(glmmTMB(f, ziformula = ~ 1, family = nbinom1, data = egg)), FALSE)), ziformula = "~ 1")

f <- r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)
add("verbagg", "benchmarks/data/verbagg.csv", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
    "binomial", "logit", nrow(verbagg),
    list(tmb_row(timed(glmmTMB(f, family = binomial, data = verbagg)), FALSE),
         glmer_row(timed(glmer(f, family = binomial, data = verbagg)))))

f <- y ~ x + (1 | g)
add("sim_binomial_100k", "benchmarks/data/sim_binomial_100k.csv.gz", "y ~ x + (1 | g)", "binomial", "logit",
    nrow(sim),
    list(tmb_row(timed(glmmTMB(f, family = binomial, data = sim)), FALSE),
         glmer_row(timed(glmer(f, family = binomial, data = sim)))))

# ------------------------------------------------ refits: the inner loop of a parametric bootstrap ----------------
# 100 responses simulated once from glmmTMB's ML fit of the crowder model and written for the Python benchmark, so
# both languages refit the same 100 data sets. lme4 refits with refit(); glmmTMB with update(), since its refit()
# does not take a cbind() response. Each loop of 100 refits is timed once; every refit's logLik is kept.
f <- cbind(germ, n - germ) ~ gen * extract + (1 | plate)
m_tmb <- glmmTMB(f, family = binomial, data = seeds)
m_glmer <- glmer(f, family = binomial, data = seeds)
sims <- simulate(m_tmb, nsim = 100, seed = 20261125)
write.csv(sapply(sims, function(s) s[, 1]), "benchmarks/data/crowder_refit_sims.csv", row.names = FALSE)
germ_sims <- as.matrix(read.csv("benchmarks/data/crowder_refit_sims.csv"))
quiet <- function(expr) suppressMessages(suppressWarnings(expr))      # singular refits are expected
secs_glmer <- system.time(ll_glmer <- apply(germ_sims, 2, function(y)
  as.numeric(logLik(quiet(refit(m_glmer, newresp = cbind(y, seeds$n - y)))))))[["elapsed"]]
secs_tmb <- system.time(ll_tmb <- apply(germ_sims, 2, function(y) {
  d <- seeds; d$germ <- y; as.numeric(logLik(quiet(update(m_tmb, data = d))))
}))[["elapsed"]]
refits <- list(name = "crowder, 100 refits (ML)", data = "benchmarks/data/crowder_refit_sims.csv",
               formula = "cbind(germ, n - germ) ~ gen * extract + (1 | plate)", n_refits = ncol(germ_sims),
               fits = list(list(engine = "glmmTMB", how = "update(m, data = d)", seconds = secs_tmb,
                                logLik = I(unname(ll_tmb))),
                           list(engine = "lme4::glmer", how = "refit(m, newresp)", seconds = secs_glmer,
                                logLik = I(unname(ll_glmer)))))
cat(sprintf("refits: glmmTMB %.2f s, glmer %.2f s for %d refits\n", secs_tmb, secs_glmer, ncol(germ_sims)))

si <- sessionInfo()
out <- list(
  made_by = "Rscript benchmarks/r_bench.R", date = format(Sys.Date()),
  timing = sprintf("median elapsed seconds of %d fits (system.time), data already in memory", runs),
  engines = list(R = R.version.string, glmmTMB = packageDescription("glmmTMB")$Version,
                 lme4 = packageDescription("lme4")$Version, TMB = packageDescription("TMB")$Version,
                 Matrix = packageDescription("Matrix")$Version, glmmTMB_cores = getOption("glmmTMB.cores", 1L),
                 BLAS = si$BLAS, LAPACK = si$LAPACK),
  machine = list(cores = parallel::detectCores(), platform = R.version$platform, os = si$running,
                 loadavg_start = load_start, loadavg_end = loadavg()),   # other work on the machine skews timings
  rows = rows, refits = refits)
write_json(out, "benchmarks/r_timings.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("wrote benchmarks/r_timings.json\n")
