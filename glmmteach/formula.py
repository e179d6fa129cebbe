"""Read an R model formula as text: ``y ~ fixed + (1 + x | g)``.

This module works on strings only. It splits a glmmTMB/lme4 formula into

* the response expression (``germ``, ``log(wt)``, ``cbind(germ, n - germ)``),
* the fixed-effects part, rewritten for :mod:`formulaic` (``factor(x)`` becomes ``C(x)``,
  ``^`` inside ``I()`` becomes ``**``),
* the ``offset(...)`` expressions,
* the random-effect terms ``(expr | group)``, with nesting ``(1 | a/b)`` expanded into
  ``(1 | a) + (1 | a:b)`` as R does.

:mod:`glmmteach.design` turns these pieces into matrices.

Examples
--------
>>> f = parse("cbind(germ, n - germ) ~ gen * extract + (1 | plate)")
>>> f.response, f.fixed, f.random
('cbind(germ, n - germ)', 'gen * extract', (RandomTerm(expr='1', group='plate'),))
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: Functions a formula may call; any other name must be a column of the data.
FUNCTIONS = frozenset({"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "I", "C", "factor",
                       "offset", "cbind", "scale", "center", "np"})

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


class FormulaError(ValueError):
    """A formula that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(expr | group)``.

    ``expr`` is the model formula of the terms that vary by group (``"1"``, ``"1 + x"``, ``"x"``,
    which R also reads as intercept plus slope); ``group`` is a column or an interaction ``a:b``.
    """

    expr: str
    group: str


@dataclass(frozen=True)
class Formula:
    """A parsed formula: ``response ~ fixed + offsets + random``."""

    text: str
    response: str
    fixed: str
    offsets: tuple[str, ...]
    random: tuple[RandomTerm, ...]

    def variables(self) -> list[str]:
        """The names the formula uses that are not functions: the columns it needs, in order."""
        pieces = [self.response, self.fixed, *self.offsets]
        pieces += [f"{t.expr} {t.group}" for t in self.random]
        names = []
        for piece in pieces:
            for match in _IDENTIFIER.finditer(piece):
                name, after = match.group(), piece[match.end():].lstrip()
                if after.startswith("(") or name in FUNCTIONS or name in names:
                    continue
                if piece[:match.start()].endswith("np."):
                    continue
                names.append(name)
        return names


def parse(text: str) -> Formula:
    """Split an R formula string into response, fixed part, offsets and random terms."""
    if not isinstance(text, str):
        raise FormulaError(f"the formula must be a string such as 'y ~ x + (1 | g)'; got {type(text).__name__}")
    _check_brackets(text)
    if text.count("~") != 1:
        raise FormulaError(f"a formula needs exactly one '~' between the response and the predictors: {text!r}")
    response, rhs = (part.strip() for part in text.split("~"))
    if not response:
        raise FormulaError(f"the formula has no response before '~': {text!r}")
    if not rhs:
        raise FormulaError(f"the formula has nothing after '~' (write '1' for an intercept only): {text!r}")
    terms = _split_top_level(rhs)
    random, offsets, fixed = [], [], []
    for sign, term in terms:
        if term.startswith("(") and term.endswith(")") and _top_level_bar(term[1:-1]) is not None:
            random.extend(_random_terms(term[1:-1], text))
        elif term.startswith("offset(") and term.endswith(")"):
            offsets.append(term[len("offset("):-1].strip())
        else:
            fixed.append(f"{sign} {term}" if fixed or sign == "-" else term)
    fixed_text = _to_formulaic(" ".join(fixed)) if fixed else "1"
    if fixed_text.startswith("-"):
        fixed_text = "1 " + fixed_text
    return Formula(text, response, fixed_text, tuple(offsets), tuple(random))


def _check_brackets(text: str) -> None:
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise FormulaError(f"unmatched ')' at position {i} of the formula {text!r}")
    if depth:
        raise FormulaError(f"unmatched '(' in the formula {text!r}")


def _split_top_level(rhs: str) -> list[tuple[str, str]]:
    """Split ``a + b - 1 + (1 | g)`` at top-level ``+``/``-`` into (sign, term) pairs."""
    terms, depth, start, sign = [], 0, 0, "+"
    for i, char in enumerate(rhs + "+"):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in "+-" and not _inside_number(rhs, i):
            term = rhs[start:i].strip()
            if term:
                terms.append((sign, term))
            elif i < len(rhs) and terms and rhs[start:i].strip() == "":
                raise FormulaError(f"two operators in a row near position {i} in {rhs!r}")
            sign, start = char, i + 1
    return terms


def _inside_number(text: str, i: int) -> bool:
    """True for the sign of an exponent, as in ``1e-3``."""
    return 0 < i < len(text) and text[i - 1] in "eE" and i > 1 and text[i - 2].isdigit()


def _top_level_bar(text: str) -> int | None:
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char == "|":
            return i
    return None


def _random_terms(inside: str, text: str) -> list[RandomTerm]:
    """``1 + x | a/b`` -> ``(1 + x | a)``, ``(1 + x | b:a)``; R names the nested grouping ``b:a``."""
    bar = _top_level_bar(inside)
    expr, group = inside[:bar].strip(), inside[bar + 1:].strip()
    if inside[bar + 1:].startswith("|"):
        raise FormulaError(f"'||' (uncorrelated terms) is not supported; write separate terms in {text!r}")
    if not expr or not group:
        raise FormulaError(f"a random-effect term needs terms and a group, as (1 | g); got ({inside}) in {text!r}")
    names = [g.strip() for g in group.split("/")]
    if any(not _IDENTIFIER.fullmatch(n.replace(":", "_")) for n in names):
        raise FormulaError(f"the grouping '{group}' must be a column, a:b, or a/b in {text!r}")
    return [RandomTerm(expr, ":".join(reversed(names[:i + 1]))) for i in range(len(names))]


def _to_formulaic(fixed: str) -> str:
    """R spellings that formulaic writes differently: ``factor(x)`` -> ``C(x)``, ``I(x^2)`` -> ``I(x**2)``."""
    fixed = re.sub(r"\bfactor\(", "C(", fixed)
    return re.sub(r"\bI\(([^()]*(\([^()]*\))*[^()]*)\)", lambda m: "I(" + m.group(1).replace("^", "**") + ")", fixed)


def r_name(column: str) -> str:
    """formulaic's column name -> R's: ``Intercept`` -> ``(Intercept)``, ``gen[T.O75]`` -> ``genO75``,
    ``C(day)[T.82]`` -> ``factor(day)82``, ``I(x ** 2)`` -> ``I(x^2)``."""
    if column == "Intercept":
        return "(Intercept)"
    parts = []
    for part in column.split(":"):
        part = re.sub(r"\[(?:T\.)?(.*)\]$", r"\1", part)
        part = re.sub(r"^C\(", "factor(", part)
        part = part.replace(" ** ", "^").replace("**", "^")
        parts.append(part)
    return ":".join(parts)
