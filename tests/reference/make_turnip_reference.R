# Reference for a Gamma GLMM with R's default (inverse) link, whose optimum lies close to where a mean turns
# negative: glmmteach must reach it. Same JSON fields as make_reference.R's tmb_summary().
# Usage, from the project root: Rscript tests/reference/make_turnip_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
turnip <- read.csv("datasets/mcconway_turnip.csv", stringsAsFactors = TRUE)
f <- yield ~ gen * date + log(density) + (1 | block)
m <- glmmTMB(f, family = Gamma, data = turnip)
vc <- VarCorr(m)$cond
re <- lapply(names(vc), function(g) {
  s <- attr(vc[[g]], "stddev"); list(group = g, terms = I(names(s)), sd = I(unname(s)), corr = I(numeric(0)))
})
v <- vcov(m)$cond
out <- list(case = "turnip_gamma_inverse", engine = paste0("glmmTMB ", packageVersion("glmmTMB")),
            data = "mcconway_turnip", data_file = "datasets/mcconway_turnip.csv",
            formula = "yield ~ gen * date + log(density) + (1 | block)", family = "Gamma", link = "inverse",
            REML = FALSE, nobs = nobs(m), df_resid = df.residual(m), logLik = as.numeric(logLik(m)),
            AIC = AIC(m), BIC = BIC(m), fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(v))),
            random = re, sigma = sigma(m), fitted_head = unname(head(predict(m, type = "response"), 5)),
            pearson_ss = sum(residuals(m, type = "pearson")^2),
            converged = m$fit$convergence == 0, pdHess = m$sdr$pdHess)
write_json(out, "tests/reference/turnip_gamma_inverse.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("logLik", out$logLik, "converged", out$converged, "pdHess", out$pdHess, "\n")
