# Reference for marginal means and a custom contrast on zero-inflated fits (the zero-inflation lesson's last step):
# emmeans(m, ~ tx, type = "response", contr = list(c(1, -1))) on the fecal egg counts' ZIP and ZINB1 glmmTMB
# fits. emmeans uses the conditional model of a glmmTMB fit (component = "cond") by default: the rates are
# exp(the count model's linear predictor), and the contrast is the ratio of mean counts, treated vs untreated.
# Writes tests/reference/zi_inference_reference.json, each table as make_inference_reference.R keeps it: its
# numbers (the columns of summary(), full precision) and the lines R prints for it.
# Usage, from the project root: Rscript tests/reference/make_zi_inference_reference.R
# (R 4.2.2, glmmTMB 1.1.5, emmeans 1.8.4, jsonlite; Debian packages r-cran-glmmtmb r-cran-emmeans)
suppressMessages({library(glmmTMB); library(emmeans); library(jsonlite)})

egg <- read.csv("datasets/fecal_egg_counts.csv")
for (v in c("tx", "lact", "manure", "province", "herd")) egg[[v]] <- factor(egg[[v]])

table_of <- function(x) {
  s <- if (inherits(x, "summary_emm")) as.data.frame(x) else as.data.frame(summary(x))
  list(columns = I(names(s)), values = lapply(s, function(col) if (is.factor(col)) as.character(col) else col),
       lines = I(capture.output(print(x))))
}

out <- list(engine = list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                          emmeans = as.character(packageVersion("emmeans"))))
cond <- fec ~ tx + lact + manure + province + (1 | province:herd)
for (case in list(list(name = "zip", family = poisson()), list(name = "zinb1", family = nbinom1()))) {
  m <- glmmTMB(cond, ziformula = ~ 1, family = case$family, data = egg)
  e <- emmeans(m, ~ tx, type = "response", contr = list(c(1, -1)))
  out[[case$name]] <- list(
    formula = deparse(cond), ziformula = "~1", family = case$family$family, link = "log", REML = FALSE,
    df_resid = df.residual(m), logLik = as.numeric(logLik(m)),
    emmeans = table_of(e$emmeans), contrasts = table_of(e$contrasts),
    emmeans_link = table_of(emmeans(m, ~ tx)))
}
write_json(out, "tests/reference/zi_inference_reference.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
