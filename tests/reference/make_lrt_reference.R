# Reference for the chapter on testing a random effect: the crowder binomial model with and without the plate
# effect, both by ML in glmmTMB, and R's likelihood-ratio test between them (anova).
# Usage, from the project root: Rscript tests/reference/make_lrt_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
seeds <- read.csv("datasets/crowder_seeds.csv", stringsAsFactors = TRUE)
glm_fit <- glmmTMB(cbind(germ, n - germ) ~ gen * extract, family = binomial, data = seeds)
glmm_fit <- glmmTMB(cbind(germ, n - germ) ~ gen * extract + (1 | plate), family = binomial, data = seeds)

v <- vcov(glm_fit)$cond
out <- list(case = "crowder_binomial_glm", engine = paste0("glmmTMB ", packageVersion("glmmTMB")),
            data = "crowder_seeds", formula = "cbind(germ, n - germ) ~ gen * extract", family = "binomial",
            link = "logit", REML = FALSE, nobs = nobs(glm_fit), df_resid = df.residual(glm_fit),
            logLik = as.numeric(logLik(glm_fit)), AIC = AIC(glm_fit), BIC = BIC(glm_fit),
            fixef = as.list(fixef(glm_fit)$cond), se = as.list(sqrt(diag(v))), random = list(), sigma = sigma(glm_fit),
            fitted_head = unname(head(predict(glm_fit, type = "response"), 5)),
            pearson_ss = sum(residuals(glm_fit, type = "pearson")^2),
            converged = glm_fit$fit$convergence == 0, pdHess = glm_fit$sdr$pdHess)
write_json(out, "tests/reference/crowder_binomial_glm.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)

a <- anova(glm_fit, glmm_fit)
lrt <- list(case = "crowder_plate_lrt", engine = out$engine, null = "crowder_binomial_glm",
            alternative = "crowder_binomial_ml", logLik_null = a$logLik[1], logLik_alternative = a$logLik[2],
            Chisq = a$Chisq[2], Df = a[["Chi Df"]][2], p_chisq = a[["Pr(>Chisq)"]][2],
            p_mixture = 0.5 * pchisq(a$Chisq[2], df = 1, lower.tail = FALSE))
write_json(lrt, "tests/reference/crowder_plate_lrt.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
print(a)
