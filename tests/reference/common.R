# Helpers that the reference scripts share (source("tests/reference/common.R") from the project root).

# glmmTMB's printed summary of a fit, one string per line
summary_lines <- function(m) capture.output(print(summary(m)))

# VarCorr as a list of groups: each with its terms, their SDs and the correlations (upper triangle, by column)
vc_list <- function(vc) {
  lapply(names(vc), function(g) {
    s <- attr(vc[[g]], "stddev"); cm <- attr(vc[[g]], "correlation")
    list(group = g, terms = I(names(s)), sd = I(unname(s)),
         corr = I(if (length(s) > 1) unname(cm[upper.tri(cm)]) else numeric(0)))
  })
}
