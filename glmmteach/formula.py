"""Read an R model formula as text: ``y ~ fixed + (1 + x | g)``.

This module works on strings only. It splits a glmmTMB/lme4 formula into

* the response expression (``germ``, ``log(wt)``, ``cbind(germ, n - germ)``),
* the fixed-effects part, rewritten for :mod:`formulaic` (``factor(x)`` becomes ``C(x)``,
  ``^`` inside ``I()`` becomes ``**``),
* the ``offset(...)`` expressions,
* the random-effect terms ``(expr | group)``, with nesting ``(1 | a/b)`` expanded into
  ``(1 | a) + (1 | a:b)`` as R does, and each term's covariance structure: ``(1 + x | g)`` and
  ``us(1 + x | g)`` unstructured, ``(1 + x || g)`` and ``diag(1 + x | g)`` independent, ``cs(day + 0 | fish)``
  compound symmetry and ``ar1(day + 0 | fish)`` autoregressive (as glmmTMB reads them; any name in
  :data:`glmmteach.covstruct.STRUCTURES` is read the same way).

:mod:`glmmteach.design` turns these pieces into matrices.

Examples
--------
>>> f = parse("cbind(germ, n - germ) ~ gen * extract + (1 | plate)")
>>> f.response, f.fixed, f.random
('cbind(germ, n - germ)', 'gen * extract', (RandomTerm(expr='1', group='plate', structure='us'),))
>>> parse("y ~ x + (1 + x || g)").random
(RandomTerm(expr='1 + x', group='g', structure='diag'),)
>>> parse("log(wt) ~ vaccine * day + ar1(day + 0 | fish)").random
(RandomTerm(expr='day + 0', group='fish', structure='ar1'),)
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .covstruct import STRUCTURES

#: Functions a formula may call; any other name must be a column of the data.
FUNCTIONS = frozenset({"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "I", "C", "factor",
                       "as.factor", "offset", "cbind", "scale", "center", "poly", "np"})

#: A name: a column or a function. Not the ``e`` of a number such as ``1e-3``.
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_.]*")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_.]*)\s*\(")


class FormulaError(ValueError):
    """A formula that cannot be read; the message says where and why."""


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(expr | group)``.

    ``expr`` is the model formula of the terms that vary by group (``"1"``, ``"1 + x"``, ``"x"``,
    which R also reads as intercept plus slope); ``group`` is a column or an interaction ``a:b``;
    ``structure`` the name of its covariance structure in :data:`glmmteach.covstruct.STRUCTURES`.
    """

    expr: str
    group: str
    structure: str = "us"


@dataclass(frozen=True)
class Formula:
    """A parsed formula: ``response ~ fixed + offsets + random``."""

    text: str
    response: str
    fixed: str
    offsets: tuple[str, ...]
    random: tuple[RandomTerm, ...]

    def variables(self) -> list[str]:
        """The names the formula uses that are not calls: the columns it needs, in order. As in R, a bare
        name is a column even when a function has that name: in ``y ~ I + I(x^2)``, ``I`` is a column."""
        pieces = [self.response, self.fixed, *self.offsets]
        pieces += [f"{t.expr} {t.group}" for t in self.random]
        names = []
        for piece in pieces:
            for match in _IDENTIFIER.finditer(piece):
                name, after = match.group(), piece[match.end():].lstrip()
                if after.startswith("(") or name in names:     # a call is a function, a bare name a column
                    continue
                names.append(name)
        return names


def bare_names(expr: str) -> set[str]:
    """The names ``expr`` uses bare, not as calls: ``{"I", "x"}`` for ``I + I(x^2)``."""
    return {m.group() for m in _IDENTIFIER.finditer(expr) if not expr[m.end():].lstrip().startswith("(")}


def rename_bare(expr: str, aliases: dict[str, str]) -> str:
    """``expr`` with each bare name in ``aliases`` replaced by its alias; calls keep their name:
    ``rename_bare("center + center(x)", {"center": "c_"})`` is ``"c_ + center(x)"``."""
    def replace(match: re.Match) -> str:
        name = match.group()
        is_call = match.string[match.end():].lstrip().startswith("(")
        return aliases.get(name, name) if not is_call else name
    return _IDENTIFIER.sub(replace, expr)


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
    _check_response(response, text)
    _check_expression(rhs, text)
    if _top_level_bar(rhs) is not None:
        raise FormulaError(f"a random-effect term must be in parentheses, as 'y ~ x + (1 | g)': {text!r}")
    terms = _split_top_level(rhs, text)
    random, offsets, fixed = [], [], []
    for sign, term in terms:
        structure, inside = _structure_call(term, text)
        if inside is not None:
            if sign == "-":
                raise FormulaError(f"a random-effect term cannot be removed with '-': {term!r} in {text!r}")
            random.extend(_random_terms(inside, text, structure))
        elif "|" in term:
            raise FormulaError(f"a random-effect term such as (1 | g) must be added with '+' on its own, "
                               f"not combined with other terms by '*', ':' or '/': {term!r} in {text!r}")
        elif term.startswith("offset(") and _closing(term, len("offset")) == len(term) - 1:
            if sign == "-":
                raise FormulaError(f"an offset cannot be removed with '-': {term!r} in {text!r}")
            offsets.append(term[len("offset("):-1].strip())
        else:
            fixed.append(f"{sign} {term}" if fixed or sign == "-" else term)
    fixed_text = _to_formulaic(" ".join(fixed)) if fixed else "1"
    if fixed_text.startswith("-"):
        fixed_text = "1 " + fixed_text
    return Formula(text, response, fixed_text, tuple(offsets), tuple(random))


def parse_one_sided(text: str, argument: str) -> Formula:
    """A one-sided formula of fixed effects, ``"~ 1"`` or ``"~ x + ..."``, as glmmTMB's ``ziformula`` takes
    it (``argument`` names it in the messages). It has no response (its ``response`` is ``""``); random-effect
    terms and offsets are not supported there yet, and say so."""
    if not isinstance(text, str):
        raise FormulaError(f"{argument} must be a string such as '~ 1' or '~ x'; got {type(text).__name__}")
    before, tilde, rhs = text.partition("~")
    if not tilde:
        raise FormulaError(f"{argument} must start with '~', as '~ 1' or '~ x'; got {text!r}")
    if before.strip():
        raise FormulaError(f"{argument} has no response: write '~ {rhs.strip()}', not {text!r} (the response is "
                           f"the model formula's)")
    parsed = parse(f"y ~ {rhs}")
    if parsed.random:
        raise FormulaError(f"random-effect terms in {argument} are not supported yet ({text!r}); "
                           f"use fixed effects only, such as '~ 1' or '~ x'")
    if parsed.offsets:
        raise FormulaError(f"offsets in {argument} are not supported yet ({text!r})")
    return Formula(text.strip(), "", parsed.fixed, (), ())


def _check_brackets(text: str) -> None:
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise FormulaError(f"unmatched ')' at position {i} of the formula {text!r}")
    if depth:
        raise FormulaError(f"unmatched '(' in the formula {text!r}")


def _check_response(response: str, text: str) -> None:
    if "|" in response:
        raise FormulaError(f"the response {response!r} cannot contain '|'; random-effect terms such as "
                           f"(1 | g) go after '~': {text!r}")
    _check_expression(response, text, where="response")


def _check_expression(expr: str, text: str, where: str = "right-hand side") -> None:
    """Mistakes that formulaic would report obscurely, or not at all."""
    stripped = expr.strip()
    if re.search(r"[+\-*/:^|]$", stripped):
        raise FormulaError(f"the {where} of the formula ends with {stripped[-1]!r} and nothing after it: "
                           f"{text!r}")
    if re.match(r"^[*/:^|]", stripped):
        raise FormulaError(f"the {where} of the formula starts with {stripped[0]!r}: {text!r}")
    doubled = re.search(r"([*/:^+\-])\s*([*/:^])", expr.replace("**", "^"))
    if doubled:
        raise FormulaError(f"two operators in a row, {doubled.group(1)!r} then {doubled.group(2)!r}, in the "
                           f"{where} of the formula {text!r}")
    if re.search(r"\(\s*\)", expr):
        raise FormulaError(f"empty parentheses '()' in the formula {text!r}")
    if re.search(r"(?<![\w.])\.(?![\w.])", expr):
        raise FormulaError(f"'.' (all other columns) is not supported; name the columns, as 'y ~ a + b': "
                           f"{text!r}")
    for match in _CALL.finditer(expr):
        name = match.group(1)
        if name not in FUNCTIONS and name not in STRUCTURES and not name.startswith("np."):
            allowed = ", ".join(sorted(FUNCTIONS - {"np", "C"}))
            raise FormulaError(f"unknown function {name}() in the formula {text!r}; the functions allowed "
                               f"are: {allowed}")
    if where == "response" and re.search(r"(?<![\w.])cbind\s*\(", expr) and not (expr.startswith("cbind(")
                                                         and _closing(expr, len("cbind")) == len(expr) - 1):
        raise FormulaError(f"cbind(successes, failures) must be the whole response, not part of "
                           f"{expr!r}: {text!r}")


def _closing(text: str, opening: int) -> int:
    """Index of the ')' that closes the '(' at ``opening``."""
    depth = 0
    for i in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top_level(rhs: str, text: str | None = None) -> list[tuple[str, str]]:
    """Split ``a + b - 1 + (1 | g)`` at top-level ``+``/``-`` into (sign, term) pairs."""
    terms, depth, start, sign = [], 0, 0, "+"
    for i, char in enumerate(rhs + "+"):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in "+-" and not _inside_number(rhs, i):
            term = rhs[start:i].strip()
            if term:
                terms.append((sign, term))
            elif i < len(rhs) and start > 0:
                if not (sign == "+" and char == "-"):      # R reads 'x + -1' as 'x - 1'
                    raise FormulaError(f"two operators in a row, {sign!r} then {char!r}, in "
                                       f"{text or rhs!r}")
            elif i == len(rhs) and start > 0:
                raise FormulaError(f"the formula ends with {sign!r} and nothing after it: {text or rhs!r}")
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


def _structure_call(term: str, text: str) -> tuple[str | None, str | None]:
    """``diag(1 + x | g)`` -> ("diag", "1 + x | g"); ``(1 + x | g)`` -> (None, "1 + x | g"), the default
    structure; a term that is not a random-effect term -> (None, None)."""
    call = re.match(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(", term)
    if call and call.group(1) in STRUCTURES and _closing(term, call.end() - 1) == len(term) - 1:
        inside = term[call.end():-1]
        if _top_level_bar(inside) is None:
            raise FormulaError(f"{call.group(1)}() holds a random-effect term, as {call.group(1)}(1 + x | g); "
                               f"got {term!r} in {text!r}")
        return call.group(1), inside
    if term.startswith("(") and _closing(term, 0) == len(term) - 1 and _top_level_bar(term[1:-1]) is not None:
        return None, term[1:-1]
    return None, None


def _random_terms(inside: str, text: str, structure: str | None = None) -> list[RandomTerm]:
    """``1 + x | a/b`` -> ``(1 + x | a)``, ``(1 + x | b:a)``; R names the nested grouping ``b:a``.
    ``1 + x || g`` is ``diag(1 + x | g)``: independent effects, as glmmTMB reads it."""
    bar = _top_level_bar(inside)
    expr, group = inside[:bar].strip(), inside[bar + 1:].strip()
    if inside[bar + 1:].startswith("|"):
        if structure not in (None, "diag"):
            raise FormulaError(f"'||' (independent effects) cannot be combined with {structure}(): write "
                               f"{structure}({expr} | {inside[bar + 2:].strip()}) or ({expr} || ...), in {text!r}")
        structure, group = "diag", inside[bar + 2:].strip()
    structure = structure or "us"
    if not expr or not group:
        raise FormulaError(f"a random-effect term needs terms and a group, as (1 | g); got ({inside}) in {text!r}")
    _check_expression(expr, text, where=f"random-effect term ({inside.strip()})")
    names = [g.strip() for g in group.split("/")]
    if any(not _IDENTIFIER.fullmatch(n.replace(":", "_").replace(" ", "")) for n in names):
        raise FormulaError(f"the grouping '{group}' must be a column, a:b, or a/b in {text!r}")
    names = [":".join(part.strip() for part in n.split(":")) for n in names]
    return [RandomTerm(expr, ":".join(reversed(names[:i + 1])), structure) for i in range(len(names))]


def _to_formulaic(fixed: str) -> str:
    """R spellings that formulaic writes differently: ``factor(x)`` and ``as.factor(x)`` -> ``C(x)``,
    ``^`` inside ``I()`` (R's power) -> ``**``. Outside ``I()``, ``^`` means interactions in both."""
    fixed = re.sub(r"(?<![\w.])(?:as\.)?factor\s*\(", "C(", fixed)
    out, i = [], 0
    for match in re.finditer(r"(?<![\w.])I\s*\(", fixed):
        if match.start() < i:
            continue                     # an I() inside an I() already converted
        end = _closing(fixed, match.end() - 1)
        out.append(fixed[i:match.start()] + "I(" + fixed[match.end():end].replace("^", "**") + ")")
        i = end + 1
    return "".join(out) + fixed[i:]


@functools.lru_cache(maxsize=4096)
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
