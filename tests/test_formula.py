"""The formula parser: R / glmmTMB syntax split into response, fixed part, offsets and random terms.

These tests work on strings only (glmmteach.formula); the matrices are in test_design.py.
"""
import pytest

from glmmteach.formula import FormulaError, RandomTerm, parse, r_name


# --- the split ----------------------------------------------------------------------------------------

def test_split_into_response_fixed_offsets_random():
    f = parse("y ~ x + z + offset(log(t)) + (1 | g)")
    assert f.response == "y"
    assert f.fixed == "x + z"
    assert f.offsets == ("log(t)",)
    assert f.random == (RandomTerm("1", "g"),)
    assert f.text == "y ~ x + z + offset(log(t)) + (1 | g)"


def test_cbind_response_keeps_arithmetic():
    f = parse("cbind(germ, n - germ) ~ gen * extract + (1 | plate)")
    assert f.response == "cbind(germ, n - germ)"
    assert f.fixed == "gen * extract"
    assert f.random == (RandomTerm("1", "plate"),)


def test_transformed_response():
    assert parse("log(wt) ~ day * vaccine").response == "log(wt)"
    assert parse("sqrt(y) ~ x").response == "sqrt(y)"


def test_crossing_is_passed_on():
    assert parse("y ~ a * b").fixed == "a * b"
    assert parse("y ~ a + b + a:b").fixed == "a + b + a:b"


@pytest.mark.parametrize("text, fixed", [
    ("y ~ factor(x)", "C(x)"),
    ("y ~ as.factor(x) + factor(z)", "C(x) + C(z)"),
    ("y ~ factor(day) * vaccine", "C(day) * vaccine"),
])
def test_factor_becomes_formulaic_C(text, fixed):
    assert parse(text).fixed == fixed


@pytest.mark.parametrize("text, fixed", [
    ("y ~ I(x^2)", "I(x**2)"),
    ("y ~ x + I(x^2) + I(x^3)", "x + I(x**2) + I(x**3)"),
    ("y ~ I((x - 1)^2)", "I((x - 1)**2)"),
    ("y ~ I(log(x)^2)", "I(log(x)**2)"),
])
def test_power_inside_I_is_python_power(text, fixed):
    assert parse(text).fixed == fixed


def test_power_outside_I_is_left_alone():
    # R and formulaic both read (a + b)^2 as "all interactions up to order 2"
    assert parse("y ~ (a + b)^2").fixed == "(a + b)^2"


def test_offset_is_taken_out_of_the_fixed_part():
    f = parse("y ~ x + offset(log(t))")
    assert f.fixed == "x"
    assert f.offsets == ("log(t)",)
    f = parse("y ~ offset(log(t)) + offset(z) + (1 | g)")
    assert f.fixed == "1"
    assert f.offsets == ("log(t)", "z")


@pytest.mark.parametrize("text, fixed", [
    ("y ~ 0 + x", "0 + x"),
    ("y ~ x - 1", "x - 1"),
    ("y ~ x + -1", "x - 1"),
    ("y ~ -1 + x", "1 - 1 + x"),
])
def test_no_intercept_spellings(text, fixed):
    assert parse(text).fixed == fixed


def test_intercept_only():
    assert parse("y ~ 1").fixed == "1"
    assert parse("y ~ (1 | g)").fixed == "1"


# --- random-effect terms ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, terms", [
    ("y ~ x + (1 | g)", [("1", "g")]),
    ("y ~ x + (1 + x | g)", [("1 + x", "g")]),
    ("y ~ x + (x | g)", [("x", "g")]),       # R: intercept and slope; see test_design
    ("y ~ x + (0 + x | g)", [("0 + x", "g")]),
    ("y ~ x + (1 | a) + (1 | b)", [("1", "a"), ("1", "b")]),
    ("y ~ x + (1|a)+(1|b)", [("1", "a"), ("1", "b")]),
    ("y ~ x + (1 | a:b)", [("1", "a:b")]),
    ("y ~ x + (1 | a : b)", [("1", "a:b")]),
])
def test_random_terms(text, terms):
    f = parse(text)
    assert [(t.expr, t.group) for t in f.random] == terms
    assert f.fixed == "x"


def test_nested_grouping_is_expanded_with_R_names():
    """(1 | a/b) = (1 | a) + (1 | a:b); lme4 and glmmTMB name the nested factor b:a."""
    f = parse("y ~ x + (1 | a/b)")
    assert [t.group for t in f.random] == ["a", "b:a"]
    assert all(t.expr == "1" for t in f.random)
    f = parse("y ~ (1 + x | site/plot)")
    assert f.random == (RandomTerm("1 + x", "site"), RandomTerm("1 + x", "plot:site"))


def test_random_term_between_fixed_terms():
    f = parse("y ~ a + (1 | g) + b")
    assert f.fixed == "a + b"
    assert f.random == (RandomTerm("1", "g"),)


# --- variables() --------------------------------------------------------------------------------------

def test_variables_are_the_columns_in_order_without_functions():
    f = parse("cbind(germ, n - germ) ~ gen * extract + offset(log(t)) + (1 + x | plate/dish)")
    assert f.variables() == ["germ", "n", "gen", "extract", "t", "x", "plate", "dish"]


def test_variables_skip_functions_and_numbers():
    f = parse("log(y) ~ factor(day) + I(x^2) + I(z * 1e-3) + poly(w, 2) + np.log(v)")
    assert f.variables() == ["y", "day", "x", "z", "w", "v"]


def test_variables_have_no_duplicates():
    assert parse("y ~ x + I(x^2) + (x | g) + (1 | g:h)").variables() == ["y", "x", "g", "h"]


# --- malformed formulas -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("y", ["exactly one '~'"]),
    ("y ~ x ~ z", ["exactly one '~'"]),
    ("y ~ (x + z", ["unmatched '('"]),
    ("y ~ x + z)", ["unmatched ')'"]),
    ("y ~ x + (1 | g", ["unmatched '('"]),
    (" ~ x", ["no response"]),
    ("y ~ ", ["nothing after '~'", "'1'"]),
    ("y ~ x +", ["ends with '+'"]),
    ("y ~ x *", ["ends with '*'"]),
    ("y ~ x + + z", ["two operators in a row"]),
    ("y ~ x * * z", ["two operators in a row"]),
    ("y ~ * x", ["starts with '*'"]),
    ("y ~ us(1 + x || g)", ["'||'", "cannot be combined with us()"]),
    ("y ~ x + diag(x)", ["diag() holds a random-effect term", "diag(1 + x | g)"]),
    ("y ~ x + (1 | )", ["needs terms and a group"]),
    ("y ~ x + ( | g)", ["needs terms and a group"]),
    ("y ~ x + (1 + | g)", ["random-effect term (1 + | g)", "ends with '+'"]),
    ("y ~ x + (1 | 2)", ["grouping '2'", "must be a column"]),
    ("y ~ x + (1 | g + h)", ["grouping 'g + h'", "must be a column"]),
    ("y ~ x | g", ["must be in parentheses"]),
    ("y ~ x * (1 | g)", ["must be added with '+'"]),
    ("y ~ x - (1 | g)", ["cannot be removed"]),
    ("y | g ~ x", ["cannot contain '|'"]),
    ("y ~ x + ()", ["empty parentheses"]),
    ("y ~ .", ["'.'", "not supported", "name the columns"]),
    ("y ~ foo(x)", ["unknown function foo()", "allowed", "log", "factor"]),
    ("foo(y) ~ x", ["unknown function foo()"]),
    ("cbind(s, f) + 1 ~ x", ["cbind(successes, failures) must be the whole response"]),
])
def test_malformed_formulas_say_what_is_wrong(text, words):
    with pytest.raises(FormulaError) as error:
        parse(text)
    message = str(error.value)
    for word in words:
        assert word in message, (word, message)
    assert text.strip() in message or "~" not in text, "the message quotes the formula"


def test_formula_error_is_a_value_error():
    assert issubclass(FormulaError, ValueError)
    with pytest.raises(ValueError):
        parse("y ~ x +")


@pytest.mark.parametrize("value", [3, None, ["y ~ x"]])
def test_formula_must_be_a_string(value):
    with pytest.raises(FormulaError, match="must be a string"):
        parse(value)


# --- R's coefficient names from formulaic's ---------------------------------------------------------

@pytest.mark.parametrize("formulaic, r", [
    ("Intercept", "(Intercept)"),
    ("gen[T.O75]", "genO75"),
    ("gen[T.O75]:extract[T.cucumber]", "genO75:extractcucumber"),
    ("C(day)[T.82]", "factor(day)82"),
    ("I(x ** 2)", "I(x^2)"),
    ("log(x)", "log(x)"),
    ("gen[O73]", "genO73"),                       # no intercept: every level
    ("poly(x, 2)[1]", "poly(x, 2)1"),
])
def test_r_name(formulaic, r):
    assert r_name(formulaic) == r


# --- covariance structures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, structure", [
    ("y ~ x + (1 + x | g)", "us"), ("y ~ x + us(1 + x | g)", "us"),
    ("y ~ x + (1 + x || g)", "diag"), ("y ~ x + diag(1 + x | g)", "diag"), ("y ~ x + diag(1 + x || g)", "diag"),
])
def test_each_random_term_names_its_covariance_structure(text, structure):
    f = parse(text)
    assert f.random == (RandomTerm("1 + x", "g", structure),)
    assert f.fixed == "x"


def test_double_bar_with_nesting_gives_independent_effects_in_every_term():
    assert parse("y ~ (1 + x || a/b)").random == (RandomTerm("1 + x", "a", "diag"), RandomTerm("1 + x", "b:a", "diag"))
