"""A subset of the commercetools query-predicate language (the ``where`` parameter).

Pipeline: :func:`parse` turns text into an untyped AST (cached per text); :func:`resolve` checks the
fields against a :class:`Schema`, binds ``:variables`` and types the literals (timestamps become
epoch milliseconds); :func:`compile_predicate` turns the typed tree into a Python closure over a
record; :func:`bounds` extracts an interval on one field so callers can bisect an index instead of
scanning.

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" "(" expr ")" | "not" unary | primary
    primary    := "(" expr ")"
                | FIELD "(" expr ")"                          -- nested: masterVariant(sku = "X")
                | FIELD OP value                              -- = != <> > >= < <=
                | FIELD ["not"] "in" ( "(" value ("," value)* ")" | VAR )
                | FIELD "is" ["not"] "defined"
    value      := STRING | NUMBER | "true" | "false" | VAR
    STRING     := double-quoted, backslash escapes (\\" and \\\\)
    VAR        := ":" name      -- bound by the query parameter var.<name>=...

Semantics: a comparison on a field the record does not have is false, except ``!=``/``<>`` and
``not in`` which are true (MongoDB-like). On multi-valued fields (for example ``sku`` on product
projections, which covers every variant) a comparison is true when ANY value satisfies it, while
``!=`` and ``not in`` are true when NO value equals. Nested predicates are true when any nested
element satisfies the inner predicate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from simulators.world import parse_iso_us

SYNTAX_PREFIX = "Malformed parameter: where: Syntax error while parsing 'where'. "


class PredicateError(ValueError):
    """A where predicate that cannot be parsed or resolved (answer 400 InvalidInput)."""

    def __init__(self, detail: str) -> None:
        super().__init__(SYNTAX_PREFIX + detail)
        self.detail = detail


# ---------------------------------------------------------------------------------------------------
# untyped AST
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    kind: str  # "string" | "number" | "boolean"
    value: Any


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Cmp:
    field: str
    op: str
    value: Lit | Var


@dataclass(frozen=True)
class InList:
    field: str
    values: tuple[Lit | Var, ...] | Var
    negated: bool


@dataclass(frozen=True)
class Defined:
    field: str
    negated: bool


@dataclass(frozen=True)
class Nested:
    field: str
    inner: Any


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Any


# ---------------------------------------------------------------------------------------------------
# tokenizer and parser
# ---------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
   |(?P<string>"(?:[^"\\]|\\.)*")
   |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
   |(?P<var>:[A-Za-z_][A-Za-z0-9_.\-]*)
   |(?P<op><>|!=|>=|<=|=|<|>)
   |(?P<lparen>\()
   |(?P<rparen>\))
   |(?P<comma>,)
   |(?P<ident>[A-Za-z_][A-Za-z0-9_\-]*)
    """,
    re.VERBOSE,
)
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch == '"':
                raise PredicateError(f"Unterminated string literal (line 1, column {pos + 1}).")
            raise PredicateError(f"Invalid input '{ch}' (line 1, column {pos + 1}).")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", n))
    return toks


def _unescape(literal: str) -> str:
    body = literal[1:-1]
    if "\\" not in body:
        return body
    return _ESCAPE_RE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # helpers
    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_kw(self, tok: _Tok, word: str) -> bool:
        return tok.kind == "ident" and tok.text.lower() == word

    def fail(self, tok: _Tok, expected: str) -> PredicateError:
        shown = "Unexpected end of input" if tok.kind == "eof" else f"Invalid input '{tok.text}'"
        return PredicateError(f"{shown}, expected {expected} (line 1, column {tok.pos + 1}).")

    def expect(self, kind: str, expected: str) -> _Tok:
        tok = self.next()
        if tok.kind != kind:
            raise self.fail(tok, expected)
        return tok

    def expect_kw(self, word: str) -> None:
        tok = self.next()
        if not self.is_kw(tok, word):
            raise self.fail(tok, f"'{word}'")

    # grammar
    def parse(self):
        if self.peek().kind == "eof":
            raise PredicateError("Empty predicate (line 1, column 1).")
        node = self.expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.fail(tok, "'and', 'or' or end of input")
        return node

    def expr(self):
        items = [self.and_expr()]
        while self.is_kw(self.peek(), "or"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self):
        items = [self.unary()]
        while self.is_kw(self.peek(), "and"):
            self.next()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self):
        tok = self.peek()
        if self.is_kw(tok, "not") and not (self.peek(1).kind in ("op",) or self.is_kw(self.peek(1), "in")):
            self.next()
            return Not(self.unary())
        return self.primary()

    def primary(self):
        tok = self.next()
        if tok.kind == "lparen":
            node = self.expr()
            self.expect("rparen", "')', 'and' or 'or'")
            return node
        if tok.kind != "ident" or tok.text.lower() in ("and", "or"):
            raise self.fail(tok, "a field name, 'not' or '('")
        fname = tok.text
        nxt = self.peek()
        if nxt.kind == "lparen":
            self.next()
            inner = self.expr()
            self.expect("rparen", "')', 'and' or 'or'")
            return Nested(fname, inner)
        if nxt.kind == "op":
            self.next()
            op = "!=" if nxt.text == "<>" else nxt.text
            return Cmp(fname, op, self.value())
        if self.is_kw(nxt, "in") or (self.is_kw(nxt, "not") and self.is_kw(self.peek(1), "in")):
            negated = self.is_kw(nxt, "not")
            self.next()
            if negated:
                self.next()
            return InList(fname, self.value_list(), negated)
        if self.is_kw(nxt, "is"):
            self.next()
            negated = False
            if self.is_kw(self.peek(), "not"):
                self.next()
                negated = True
            tok2 = self.next()
            if not self.is_kw(tok2, "defined"):
                raise self.fail(tok2, "'defined' or 'not defined'")
            return Defined(fname, negated)
        raise self.fail(nxt, "an operator (=, !=, <>, >, >=, <, <=, in, not in, is defined) or '('")

    def value(self) -> Lit | Var:
        tok = self.next()
        if tok.kind == "string":
            return Lit("string", _unescape(tok.text))
        if tok.kind == "number":
            txt = tok.text
            num = float(txt) if any(c in txt for c in ".eE") else int(txt)
            return Lit("number", num)
        if tok.kind == "var":
            return Var(tok.text[1:])
        if tok.kind == "ident" and tok.text.lower() in ("true", "false"):
            return Lit("boolean", tok.text.lower() == "true")
        raise self.fail(tok, "a value (string in double quotes, number, true, false or :variable)")

    def value_list(self) -> tuple[Lit | Var, ...] | Var:
        tok = self.peek()
        if tok.kind == "var":
            self.next()
            return Var(tok.text[1:])
        self.expect("lparen", "'(' or a :variable")
        values = [self.value()]
        while self.peek().kind == "comma":
            self.next()
            values.append(self.value())
        self.expect("rparen", "',' or ')'")
        return tuple(values)


@lru_cache(maxsize=1024)
def parse(text: str):
    """Parse one predicate into an untyped AST (raises :class:`PredicateError`)."""
    if len(text) > 100_000:
        raise PredicateError("Predicate too long.")
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise PredicateError("Predicate nested too deeply.") from None


# ---------------------------------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------------------------------

KINDS = ("string", "number", "datetime", "boolean", "nested")


@dataclass(frozen=True)
class FieldSpec:
    """How a record exposes one queryable field.

    ``getter(record)`` returns the value (``None`` when undefined), a tuple of values for ``multi``
    fields, or an iterable of nested objects for ``kind == "nested"`` (then ``schema`` describes
    the nested object).
    """

    name: str
    kind: str
    getter: Callable[[Any], Any]
    nullable: bool = False
    multi: bool = False
    sortable: bool = True
    schema: Schema | None = None


@dataclass(frozen=True)
class Schema:
    type_name: str
    fields: Mapping[str, FieldSpec] = field(default_factory=dict)

    def get(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)


# ---------------------------------------------------------------------------------------------------
# typed tree (after resolve)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TCmp:
    spec: FieldSpec
    op: str  # = != > >= < <=
    value: Any


@dataclass(frozen=True)
class TIn:
    spec: FieldSpec
    values: tuple
    negated: bool


@dataclass(frozen=True)
class TDefined:
    spec: FieldSpec
    negated: bool


@dataclass(frozen=True)
class TNested:
    spec: FieldSpec
    inner: Any


@dataclass(frozen=True)
class TConst:
    value: bool


Vars = Mapping[str, Sequence[str]]


def _coerce(spec: FieldSpec, value: Lit | Var, variables: Vars, many: bool = False) -> list:
    """Type a literal or variable for ``spec``. Returns a list (several values only for list vars)."""
    if isinstance(value, Var):
        raw = variables.get(value.name)
        if not raw:
            raise PredicateError(
                f"Missing value for variable ':{value.name}' (pass it as the query parameter var.{value.name})."
            )
        texts = list(raw) if many else [raw[0]]
        return [_coerce_text(spec, t, value.name) for t in texts]
    kind = spec.kind
    if kind in ("string",):
        if value.kind != "string":
            raise PredicateError(f"Field '{spec.name}' expects a string value, got {value.value!r}.")
        return [value.value]
    if kind == "datetime":
        if value.kind != "string":
            raise PredicateError(f"Field '{spec.name}' expects a date-time string, got {value.value!r}.")
        return [_parse_instant(spec, value.value)]
    if kind == "number":
        if value.kind != "number":
            raise PredicateError(f"Field '{spec.name}' expects a number, got {value.value!r}.")
        return [value.value]
    if kind == "boolean":
        if value.kind != "boolean":
            raise PredicateError(f"Field '{spec.name}' expects true or false, got {value.value!r}.")
        return [value.value]
    raise PredicateError(f"Field '{spec.name}' cannot be compared; use {spec.name}(...).")


def _parse_instant(spec: FieldSpec, text: str) -> int:
    try:
        return parse_iso_us(text)
    except ValueError:
        raise PredicateError(f"Field '{spec.name}' expects an ISO-8601 date-time, got '{text}'.") from None


def _coerce_text(spec: FieldSpec, text: str, var_name: str) -> Any:
    kind = spec.kind
    if kind == "string":
        return text
    if kind == "datetime":
        return _parse_instant(spec, text)
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise PredicateError(f"Variable ':{var_name}' must be a number for field '{spec.name}'.") from None
    if kind == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise PredicateError(f"Variable ':{var_name}' must be true or false for field '{spec.name}'.")
    raise PredicateError(f"Field '{spec.name}' cannot be compared; use {spec.name}(...).")


def _datetime_cmp(spec: FieldSpec, op: str, us: int):
    """Rewrite a comparison against a microsecond instant into one on integer milliseconds."""
    ms, frac = divmod(us, 1000)
    if not frac:
        return TCmp(spec, op, ms)
    # the literal lies strictly between two milliseconds
    if op in (">", ">="):
        return TCmp(spec, ">", ms)
    if op in ("<", "<="):
        return TCmp(spec, "<=", ms)
    if op == "=":
        return TConst(False)
    return TDefined(spec, False) if spec.nullable else TConst(True)  # "!="


def _lookup(schema: Schema, name: str) -> FieldSpec:
    spec = schema.get(name)
    if spec is None:
        known = ", ".join(sorted(schema.fields))
        raise PredicateError(f"Unknown field '{name}' on {schema.type_name} (supported: {known}).")
    return spec


def resolve(node, schema: Schema, variables: Vars):
    """Type-check ``node`` against ``schema`` and bind variables; returns a typed tree."""
    if isinstance(node, And):
        return And(tuple(resolve(n, schema, variables) for n in node.items))
    if isinstance(node, Or):
        return Or(tuple(resolve(n, schema, variables) for n in node.items))
    if isinstance(node, Not):
        return Not(resolve(node.item, schema, variables))
    spec = _lookup(schema, node.field)
    if isinstance(node, Nested):
        if spec.kind != "nested" or spec.schema is None:
            raise PredicateError(f"Field '{spec.name}' is not an object; compare it directly.")
        return TNested(spec, resolve(node.inner, spec.schema, variables))
    if spec.kind == "nested" and not isinstance(node, Defined):
        raise PredicateError(f"Field '{spec.name}' is an object; write {spec.name}(<predicate>).")
    if isinstance(node, Defined):
        return TDefined(spec, node.negated)
    if isinstance(node, Cmp):
        if node.op not in ("=", "!=") and spec.kind == "boolean":
            raise PredicateError(f"Field '{spec.name}' supports only = and !=.")
        (value,) = _coerce(spec, node.value, variables)
        if spec.kind == "datetime":
            return _datetime_cmp(spec, node.op, value)
        return TCmp(spec, node.op, value)
    if isinstance(node, InList):
        if isinstance(node.values, Var):
            values = _coerce(spec, node.values, variables, many=True)
        else:
            values = [v for item in node.values for v in _coerce(spec, item, variables)]
        if spec.kind == "datetime":
            values = [us // 1000 for us in values if us % 1000 == 0]
        return TIn(spec, tuple(values), node.negated)
    raise PredicateError("Unsupported predicate.")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------
# compile to closures
# ---------------------------------------------------------------------------------------------------

_OPS = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

Predicate = Callable[[Any], bool]


def _true(_r: Any) -> bool:
    return True


def _false(_r: Any) -> bool:
    return False


def _compile_cmp(node: TCmp) -> Predicate:
    spec, op, v = node.spec, node.op, node.value
    get = spec.getter
    f = _OPS[op]
    if spec.multi:
        if op == "=":
            return lambda r: v in get(r)
        if op == "!=":
            return lambda r: v not in get(r)
        return lambda r: any(x is not None and f(x, v) for x in get(r))
    if spec.nullable:
        if op == "!=":
            return lambda r: (x := get(r)) is None or x != v
        return lambda r: (x := get(r)) is not None and f(x, v)
    return lambda r: f(get(r), v)


def _compile_in(node: TIn) -> Predicate:
    spec, get = node.spec, node.spec.getter
    try:
        values: Any = frozenset(node.values)
    except TypeError:  # pragma: no cover - all literal kinds are hashable
        values = node.values
    if spec.multi:
        if node.negated:
            return lambda r: values.isdisjoint(get(r))
        return lambda r: not values.isdisjoint(get(r))
    if node.negated:
        return lambda r: get(r) not in values
    if spec.nullable:
        return lambda r: (x := get(r)) is not None and x in values
    return lambda r: get(r) in values


def _compile_defined(node: TDefined) -> Predicate:
    spec, get = node.spec, node.spec.getter
    if spec.multi or spec.kind == "nested":
        if node.negated:
            return lambda r: not any(True for _ in get(r))
        return lambda r: any(True for _ in get(r))
    if node.negated:
        return lambda r: get(r) is None
    return lambda r: get(r) is not None


def compile_predicate(node) -> Predicate:
    """Typed tree -> ``callable(record) -> bool``."""
    if isinstance(node, TCmp):
        return _compile_cmp(node)
    if isinstance(node, TIn):
        return _compile_in(node)
    if isinstance(node, TDefined):
        return _compile_defined(node)
    if isinstance(node, TConst):
        return _true if node.value else _false
    if isinstance(node, TNested):
        inner = compile_predicate(node.inner)
        get = node.spec.getter
        return lambda r: any(inner(x) for x in get(r))
    if isinstance(node, Not):
        inner = compile_predicate(node.item)
        return lambda r: not inner(r)
    if isinstance(node, And):
        parts = [compile_predicate(n) for n in node.items]
        if len(parts) == 2:
            a, b = parts
            return lambda r: a(r) and b(r)
        return lambda r: all(p(r) for p in parts)
    if isinstance(node, Or):
        parts = [compile_predicate(n) for n in node.items]
        if len(parts) == 2:
            a, b = parts
            return lambda r: a(r) or b(r)
        return lambda r: any(p(r) for p in parts)
    raise TypeError(f"cannot compile {node!r}")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------
# bounds (for index planning)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    value: Any
    strict: bool


def _lo_of(node, name: str) -> Bound | None:
    if isinstance(node, TCmp) and node.spec.name == name and not node.spec.multi:
        if node.op in (">", ">="):
            return Bound(node.value, node.op == ">")
        if node.op == "=":
            return Bound(node.value, False)
        return None
    if isinstance(node, TIn) and node.spec.name == name and not node.negated and not node.spec.multi:
        return Bound(min(node.values), False) if node.values else None
    if isinstance(node, And):
        best: Bound | None = None
        for item in node.items:
            b = _lo_of(item, name)
            if b is not None and (best is None or b.value > best.value or (b.value == best.value and b.strict)):
                best = b
        return best
    if isinstance(node, Or):
        worst: Bound | None = None
        for item in node.items:
            b = _lo_of(item, name)
            if b is None:
                return None
            if worst is None or b.value < worst.value or (b.value == worst.value and not b.strict):
                worst = b
        return worst
    return None


def _hi_of(node, name: str) -> Bound | None:
    if isinstance(node, TCmp) and node.spec.name == name and not node.spec.multi:
        if node.op in ("<", "<="):
            return Bound(node.value, node.op == "<")
        if node.op == "=":
            return Bound(node.value, False)
        return None
    if isinstance(node, TIn) and node.spec.name == name and not node.negated and not node.spec.multi:
        return Bound(max(node.values), False) if node.values else None
    if isinstance(node, And):
        best: Bound | None = None
        for item in node.items:
            b = _hi_of(item, name)
            if b is not None and (best is None or b.value < best.value or (b.value == best.value and b.strict)):
                best = b
        return best
    if isinstance(node, Or):
        worst: Bound | None = None
        for item in node.items:
            b = _hi_of(item, name)
            if b is None:
                return None
            if worst is None or b.value > worst.value or (b.value == worst.value and not b.strict):
                worst = b
        return worst
    return None


def bounds(node, name: str) -> tuple[Bound | None, Bound | None]:
    """(lower, upper) bound implied on field ``name`` by the typed tree (``None`` = unbounded)."""
    if node is None:
        return None, None
    return _lo_of(node, name), _hi_of(node, name)


def equality_values(node, name: str) -> tuple | None:
    """Values ``name`` must equal (one of) for the tree to hold, if the tree says so at top level.

    Looks at top-level conjuncts only: ``name = v`` or ``name in (...)``. Works for multi-valued
    fields too (a record matches only if one of its values is among them).
    """
    if node is None:
        return None
    items: Iterable = node.items if isinstance(node, And) else (node,)
    best: tuple | None = None
    for item in items:
        vals = None
        if isinstance(item, TCmp) and item.spec.name == name and item.op == "=":
            vals = (item.value,)
        elif isinstance(item, TIn) and item.spec.name == name and not item.negated:
            vals = tuple(item.values)
        if vals is not None and (best is None or len(vals) < len(best)):
            best = vals
    return best


def build(texts: Sequence[str], schema: Schema, variables: Vars):
    """Parse, resolve and AND together repeated ``where`` texts; returns (typed tree, predicate)."""
    if not texts:
        return None, None
    typed = [resolve(parse(t), schema, variables) for t in texts]
    flat: list = []
    for t in typed:
        flat.extend(t.items if isinstance(t, And) else (t,))
    tree = flat[0] if len(flat) == 1 else And(tuple(flat))
    return tree, compile_predicate(tree)
