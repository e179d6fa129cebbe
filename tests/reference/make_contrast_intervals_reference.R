# Reference for the confidence intervals of contrasts (emmeans' confint() on contrast results, with each
# conf-level adjustment), on the glmmTMB fits of tests/reference/make_inference_reference.R.
# Writes tests/reference/contrast_intervals.json; each table kept as its numbers and the lines R prints.
# Usage, from the project root: Rscript tests/reference/make_contrast_intervals_reference.R
# (R 4.2.2, glmmTMB 1.1.5, emmeans 1.8.4, mvtnorm, jsonlite; Debian packages r-cran-glmmtmb r-cran-emmeans)
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite); library(mvtnorm)})
set.seed(20261201)   # the "mvt" interval's quantile comes from mvtnorm's randomised qmvt

fish <- read.csv("datasets/fish_vaccines.csv")
fish$vaccine <- factor(fish$vaccine); fish$day_f <- factor(fish$day); fish$fish <- factor(fish$fish)
jaw <- fish[fish$day == 901, ]          # one row per fish: the deformity is recorded for life

table_of <- function(x) {
  s <- as.data.frame(x)
  list(columns = I(names(s)), values = lapply(s, function(col) if (is.factor(col)) as.character(col) else col),
       lines = I(capture.output(print(x))))
}

salmon <- glmmTMB(wt ~ vaccine * day_f + (1 | fish), family = Gamma(link = "log"), data = fish, REML = TRUE)
h <- suppressMessages(emmeans(salmon, ~ vaccine, at = list(day_f = "901"), type = "response"))
hl <- suppressMessages(emmeans(salmon, ~ vaccine, at = list(day_f = "901")))
e <- suppressMessages(emmeans(salmon, ~ vaccine | day_f, type = "response"))
jm <- glmmTMB(jaw ~ vaccine, family = binomial, data = jaw)
ej <- emmeans(jm, ~ vaccine, type = "response")

out <- list(engine = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                          emmeans = as.character(packageVersion("emmeans")),
                          mvtnorm = as.character(packageVersion("mvtnorm"))))
out$salmon <- list(
  harvest_pairs = table_of(confint(pairs(h))),                                    # tukey, the default
  harvest_pairs_adjust = lapply(setNames(nm = c("none", "bonferroni", "sidak", "holm")),
                                function(a) table_of(confint(pairs(h), adjust = a))),   # holm: bonferroni
  harvest_pairs_level90 = table_of(confint(pairs(h, adjust = "none"), level = 0.9)),
  harvest_pairs_link = table_of(confint(pairs(hl))),
  harvest_trt_vs_ctrl = table_of(confint(contrast(h, "trt.vs.ctrl"))),             # dunnettx
  harvest_trt_vs_ctrl_mvt = table_of(confint(contrast(h, "trt.vs.ctrl", adjust = "mvt"))),
  harvest_custom = table_of(confint(contrast(h, list(`1 vs 2` = c(1, -1, 0, 0))))),
  pairs_by_day = table_of(confint(pairs(e))))
out$jaw <- list(pairs = table_of(confint(pairs(ej))))

write_json(out, "tests/reference/contrast_intervals.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("done\n")
