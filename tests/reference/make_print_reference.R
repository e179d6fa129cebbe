# How R prints a coefficient table and p-values: the reference for glmmteach's summary() layout.
#
# glmmTMB's summary prints its fixed effects with printCoefmat(cc, zap.ind = 3, digits = 4), which
# formats the p-values with format.pval(p, digits = 3). This script stores, for several coefficient
# tables from real fits, the table at full precision and the lines R prints, and for several p-value
# vectors what format.pval gives. The Python tests format the same numbers and compare the text. It also keeps
# whole printed summaries of eight fits, which the Python tests fit again and compare line by line.
#
# Run from the repository root:  Rscript tests/reference/make_print_reference.R
suppressPackageStartupMessages({
  library(glmmTMB)
  library(jsonlite)
})

printed_lines <- function(cc) {
  out <- capture.output(printCoefmat(cc, zap.ind = 3, digits = 4, signif.stars = TRUE))
  out[!startsWith(out, "Signif. codes") & out != "---"]
}

table_case <- function(model) {
  cc <- summary(model)$coefficients$cond
  list(rownames = rownames(cc), colnames = colnames(cc), values = unname(cc),
       lines = printed_lines(cc))
}

seeds <- read.csv("datasets/crowder_seeds.csv", stringsAsFactors = TRUE)
fish <- read.csv("datasets/fish_vaccines.csv", stringsAsFactors = TRUE)
fish$vaccine <- factor(fish$vaccine)
fish$day <- factor(fish$day)

set.seed(20261125)
n <- 300
sim <- data.frame(x = rnorm(n), big = rnorm(n, 5000, 1000), g = factor(sample(sprintf("g%02d", 1:15), n, TRUE)))
sim$y <- rpois(n, exp(1 + 0.8 * sim$x))                                  # p far below 2e-16
sim$w <- 1234.5 + 0.0021 * sim$big + rnorm(n, 0, 5)                     # estimates of very different size
sim$z <- rnorm(n)                                                         # nothing significant
sim$k <- rpois(n, exp(0.2 + 0.25 * sim$x + 0.05 * sim$z))               # p of order 1e-4 to 1e-1

# A table whose standard errors are NaN (a Hessian that is not positive definite), as glmmTMB reports them
nan_table <- function() {
  cc <- summary(glmmTMB(k ~ x + z, data = sim, family = poisson))$coefficients$cond
  cc[2:3, 2:4] <- NaN
  list(rownames = rownames(cc), colnames = colnames(cc), values = unname(cc), lines = printed_lines(cc))
}

cases <- list(
  crowder_reml = table_case(glmmTMB(cbind(germ, n - germ) ~ gen * extract + (1 | plate), data = seeds,
                                    family = binomial, REML = TRUE)),
  fish_gamma = table_case(glmmTMB(wt ~ day * vaccine, data = fish, family = Gamma(link = "log"))),
  poisson_strong = table_case(glmmTMB(y ~ x + (1 | g), data = sim, family = poisson)),
  gaussian_scales = table_case(glmmTMB(w ~ big, data = sim)),
  nothing_significant = table_case(glmmTMB(z ~ x, data = sim)),
  poisson_moderate = table_case(glmmTMB(k ~ x + z, data = sim, family = poisson)),
  nan_standard_errors = nan_table()
)

pvalue_vectors <- list(c(0.0575, 0.8087, 0.1277, 0.0569), c(1, 0.0569), c(1e-20, 0.5),
                       c(1e-20, 0.000123), c(3.2e-05, 1.234e-04, 0.5), c(1e-10, 0.03), c(1e-20, 1e-30),
                       c(0.999999, 0.2), c(0.00099, 0.001, 0.0011), c(2.5e-300, 0.049999))
pvalues <- lapply(pvalue_vectors, function(p) list(p = p, formatted = format.pval(p, digits = 3)))
# print.htest (a test's printout) formats its single p-value with format.pval(p, digits = 4)
htest_pvalues <- lapply(c(0.9902, 0.016, 1, 0.0569123, 3.2e-05, 0.000339, 1e-20, 6.31e-10, NaN),
                        function(p) list(p = p, formatted = format.pval(p, digits = 4)))

# Whole summaries: what print(summary(m)) shows, line by line, for fits the Python tests repeat.
summary_case <- function(formula, family, data_file, REML = FALSE) {
  data <- read.csv(data_file, stringsAsFactors = TRUE)
  m <- glmmTMB(as.formula(formula), family = family, data = data, REML = REML)
  list(formula = formula, family = family$family, link = family$link, data_file = data_file, REML = REML,
       lines = capture.output(print(summary(m))))
}
summaries <- list(
  crowder_reml = summary_case("cbind(germ, n - germ) ~ gen * extract + (1 | plate)", binomial(),
                              "datasets/crowder_seeds.csv", REML = TRUE),
  gaussian_slopes = summary_case("y ~ x + (1 + x | g)", gaussian(), "tests/reference/data/gaussian_slopes.csv"),
  binary_slopes = summary_case("y ~ x + (1 + x | g)", binomial(), "tests/reference/data/binary_slopes.csv"),
  poisson_crossed = summary_case("y ~ x + (1 | a) + (1 | b)", poisson(), "tests/reference/data/poisson_crossed.csv"),
  nbinom2 = summary_case("y ~ x + (1 | g)", nbinom2(), "tests/reference/data/nbinom2.csv"),
  gamma = summary_case("y ~ x + (1 | g)", Gamma(link = "log"), "tests/reference/data/gamma.csv"),
  beta = summary_case("y ~ x + (1 | g)", beta_family(), "tests/reference/data/beta.csv"),
  glm_poisson = summary_case("y ~ x", poisson(), "tests/reference/data/poisson_ri.csv")
)

write_json(list(tables = cases, format_pval = pvalues, format_pval_htest = htest_pvalues, summaries = summaries,
                made_with = paste(R.version.string, "glmmTMB", packageVersion("glmmTMB"))),
           "tests/reference/print_reference.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
