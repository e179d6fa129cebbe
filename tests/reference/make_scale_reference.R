# References for designs at scale, from lmer (REML): lme4's InstEval (73,421 ratings, 2,972 students crossed
# with 1,128 lecturers, and dept:service) and mlmRev's Chem97 (31,022 pupils in 2,410 schools nested in 131
# education authorities). Debian: r-base-core r-cran-lme4 r-cran-mlmrev r-cran-jsonlite.
#
# The data are written to tests/reference/data/ (gzipped CSV) and READ BACK before fitting, so R and the Python
# tests use the same numbers. service is 0/1 there, so the formula says factor(service). JSON fields as in
# make_extra_reference.R.
#
# Usage, from the project root: Rscript tests/reference/make_scale_reference.R
suppressMessages({library(lme4); library(jsonlite)})
out <- "tests/reference"

put <- function(d, name) {
  path <- file.path(out, "data", paste0(name, ".csv.gz"))
  con <- gzfile(path, "w"); write.csv(d, con, row.names = FALSE, quote = FALSE); close(con)
  read.csv(path)
}

summary_json <- function(m, name, formula, data_name) {
  vc <- VarCorr(m)
  res <- list(
    case = name, engine = paste0("lme4 ", packageVersion("lme4"), " lmer"), data = data_name,
    data_file = paste0("tests/reference/data/", data_name, ".csv.gz"),
    formula = formula, family = "gaussian", link = "identity", REML = isREML(m),
    nobs = nobs(m), df_resid = df.residual(m), logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    random = lapply(names(vc), function(g) list(group = g, terms = I(names(attr(vc[[g]], "stddev"))),
                                                sd = I(unname(attr(vc[[g]], "stddev"))), corr = I(numeric(0)))),
    sigma = sigma(m), fitted_head = unname(head(fitted(m), 5)),
    converged = m@optinfo$conv$opt == 0 && length(m@optinfo$conv$lme4$messages) == 0,
    singular = isSingular(m))
  stopifnot(res$converged, !res$singular)
  write_json(res, file.path(out, paste0(name, ".json")), auto_unbox = TRUE, digits = NA, pretty = TRUE)
  cat(sprintf("%-28s logLik %12.4f\n", name, res$logLik))
}

ie <- put(data.frame(y = InstEval$y, s = InstEval$s, d = InstEval$d, dept = InstEval$dept,
                     service = InstEval$service), "insteval")
f <- "y ~ factor(service) + (1 | s) + (1 | d) + (1 | dept:service)"
summary_json(lmer(as.formula(f), data = ie, REML = TRUE), "insteval_lmer_reml", f, "insteval")

data(Chem97, package = "mlmRev")
chem <- put(data.frame(score = Chem97$score, lea = Chem97$lea, school = Chem97$school), "chem97")
f <- "score ~ 1 + (1 | lea/school)"
summary_json(lmer(as.formula(f), data = chem, REML = TRUE), "chem97_lmer_reml", f, "chem97")

writeLines(capture.output(sessionInfo()), file.path(out, "scale_sessionInfo.txt"))
