"""HLO text parser: reads what ir.printer writes and what XLA/JAX print.

Layouts (`{1,0}`), `entry_computation_layout`, computation signatures, `metadata` keys we do
not use and other attributes without semantics are accepted; unknown attributes are kept
verbatim in `Instruction.extra_attrs`. Every error carries line and column.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

import networkx as nx
import numpy as np

from flowjit.ir import dtypes
from flowjit.ir.errors import HloParseError, ShapeError
from flowjit.ir.attributes import AttrKind, BufferSlice, window
from flowjit.ir.attributes import ConvDimensionLabels, OperandLayout
from flowjit.ir.graph import use_graph
from flowjit.ir.module import Computation, Instruction, Module, UseCycleError
from flowjit.ir.ops import OPS, infer_shape, spec
from flowjit.ir.shapes import (MAX_TUPLE_DEPTH, ArrayShape, Shape, TupleShape,
                               array_shape_problem)
from flowjit.ir.verifier import verify

_TOKEN = re.compile(r"""
    (?P<space>\s+|/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<arrow>->)
  | (?P<word>[%A-Za-z0-9_.+\-<>]+)
  | (?P<punct>[{}\[\]()=,:])
""", re.VERBOSE | re.DOTALL)


@dataclass
class Token:
    kind: str
    text: str
    pos: int


class _Lexer:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[Token] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                line, col = self.where(pos)
                raise HloParseError(f"unexpected character {text[pos]!r}", line, col)
            if m.lastgroup != "space":
                self.tokens.append(Token(m.lastgroup, m.group(), pos))
            pos = m.end()
        self.tokens.append(Token("eof", "", len(text)))
        self.i = 0

    def where(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def error(self, message: str, token: Optional[Token] = None) -> HloParseError:
        token = token or self.peek()
        line, col = self.where(token.pos)
        text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
        found = repr(text) if token.kind != "eof" else "end of input"
        return HloParseError(f"{message} (found {found})", line, col)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind != "string":
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.accept(text):
            raise self.error(f"expected '{text}'")
        return self.tokens[self.i - 1]

    def word(self, what: str = "a name") -> Token:
        token = self.peek()
        if token.kind != "word":
            raise self.error(f"expected {what}")
        self.i += 1
        return token

    def skip_balanced(self) -> tuple[int, int]:
        """Skip a bracketed group starting at the current token; return its source span."""
        pairs = {"{": "}", "(": ")", "[": "]"}
        start = self.peek()
        if start.text not in pairs or start.kind != "punct":
            raise self.error("expected a bracket")
        stack = []
        while True:
            token = self.next()
            if token.kind == "eof":
                raise self.error(f"unclosed '{start.text}'", start)
            if token.kind == "punct" and token.text in pairs:
                stack.append(pairs[token.text])
            elif token.kind == "punct" and token.text in ")]}":
                if not stack or token.text != stack.pop():
                    raise self.error("mismatched bracket", token)
                if not stack:
                    return start.pos, token.pos + 1


_C_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_C_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"a": b"\a", b"b": b"\b", b"f": b"\f",
             b"v": b"\v"}


_VERBATIM = object()   # a decoder's answer: keep this attribute's text as it is


def _one(words: list[Token]) -> Token:
    if len(words) != 1:
        raise ValueError
    return words[0]


def _int(words: list[Token]) -> int:
    return int(_one(words).text)


def _bool(words: list[Token]) -> bool:
    text = _one(words).text
    if text not in ("true", "false"):
        raise ValueError
    return text == "true"


def _string(tokens: list[Token]) -> str:
    if len(tokens) != 1 or tokens[0].kind not in ("string", "word"):
        raise ValueError
    text = tokens[0].text
    return unescape_string(text[1:-1]) if tokens[0].kind == "string" else text


def unescape_string(text: str) -> str:
    """Undo C escapes (`\\n`, `\\"`, `\\303`, `\\xff`) and read the bytes as UTF-8, as XLA
    writes strings; non-ASCII characters may also appear unescaped."""
    def one(m: re.Match) -> bytes:
        if m.group(1):
            return bytes([int(m.group(1), 8) & 0xFF])
        if m.group(2):
            return bytes([int(m.group(2), 16)])
        return _C_SIMPLE.get(m.group(3), m.group(3))
    return _C_ESCAPE.sub(one, text.encode("utf-8")).decode("utf-8", errors="replace")


def _name(token: Token) -> str:
    return token.text[1:] if token.text.startswith("%") else token.text


_DEBUG_SECTIONS = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")
# What a shape rule may raise on operands it was not written for (a tuple where it wants an
# array, a list where it wants one int): all mean the instruction is malformed.
_RULE_ERRORS = (ShapeError, KeyError, ValueError, TypeError, IndexError, AttributeError)


@dataclass
class _PendingInstruction:
    inst: Instruction
    operand_names: list[tuple[str, Token]]
    call_names: dict[str, list[tuple[str, Token]]]
    declared: Shape
    token: Token
    is_root: bool
    name_token: Optional[Token] = None


class _Parser:
    def __init__(self, text: str):
        self.lex = _Lexer(text)
        self.computation_names: set[str] = set()
        self.tuple_depth = 0
        self.pending_checks: list[_PendingInstruction] = []

    # --- shapes -------------------------------------------------------------------------
    def at_shape(self) -> bool:
        token, after = self.lex.peek(), self.lex.peek(1)
        if token.text == "(" and token.kind == "punct":
            return True
        return token.kind == "word" and after.text == "[" and (
            token.text in dtypes.DType._value2member_map_ or token.text == "token")

    def at_body(self) -> bool:
        """Whether the `{` here opens a computation's body (after a signature's result type,
        `-> pred[] {`), not a layout: a layout holds numbers and colons, never a name."""
        after = self.lex.peek(1)
        return after.text == "ROOT" or after.text.startswith("%") or (
            after.kind == "word" and self.lex.peek(2).text == "=")

    def shape(self) -> Shape:
        lex = self.lex
        if lex.peek().text == "(" and lex.peek().kind == "punct":
            return self.tuple_shape()
        token = lex.word("an element type")
        if token.text == "token":
            raise lex.error("token types are not supported", token)
        try:
            dtype = dtypes.parse(token.text)
        except ValueError as e:
            raise lex.error(str(e), token) from None
        lex.expect("[")
        dims = []
        if not lex.accept("]"):
            while True:
                dims.append(self.dimension())
                if lex.accept("]"):
                    break
                lex.expect(",")
        if lex.peek().text == "{" and lex.peek().kind == "punct" and not self.at_body():
            lex.skip_balanced()  # layout: has no effect on semantics
        shape = ArrayShape(dtype, tuple(dims))
        problem = array_shape_problem(shape)
        if problem:
            raise lex.error(problem, token)
        return shape

    def tuple_shape(self) -> TupleShape:
        """`(s1, (s2, s3), ...)`; the nesting depth is bounded so that no later recursive
        walk over the shape can run out of stack."""
        lex = self.lex
        start = lex.expect("(")
        elements = []
        if not lex.accept(")"):
            self.tuple_depth += 1
            if self.tuple_depth > MAX_TUPLE_DEPTH:
                raise lex.error(f"tuple shape nested deeper than {MAX_TUPLE_DEPTH}", start)
            while True:
                elements.append(self.shape())
                if lex.accept(")"):
                    break
                lex.expect(",")
            self.tuple_depth -= 1
        return TupleShape(tuple(elements))

    def dimension(self) -> int:
        lex = self.lex
        dim = lex.word("a dimension")
        text = dim.text.lstrip("<=")
        if not text.isdigit():
            raise lex.error("expected a dimension size", dim)
        if len(text) > 19:   # int() refuses very long digit strings; none of these fits
            raise lex.error("dimension size is too large", dim)
        return int(text)

    # --- literals -----------------------------------------------------------------------
    def literal(self, shape: Shape) -> np.ndarray:
        lex = self.lex
        if not isinstance(shape, ArrayShape):
            raise lex.error("tuple constants are not supported")
        values: list[Token] = []
        if lex.peek().text == "{":
            start = lex.i
            lex.skip_balanced()
            values = [t for t in lex.tokens[start:lex.i] if t.kind == "word"]
            if any(t.text == "..." for t in lex.tokens[start:lex.i]):
                raise lex.error("constant is elided ('{...}'); print with large constants")
        else:
            values = [lex.word("a literal")]
        if len(values) != shape.size:
            raise lex.error(f"constant has {len(values)} values, shape {shape} needs "
                            f"{shape.size}", values[0] if values else None)
        parsed = [self.scalar(t, shape.dtype) for t in values]
        return np.array(parsed, dtype=shape.dtype.to_numpy()).reshape(shape.dims)

    def scalar(self, token: Token, dtype: dtypes.DType):
        text = token.text
        try:
            if dtype is dtypes.DType.PRED:
                if text not in ("true", "false", "1", "0"):
                    raise ValueError
                return text in ("true", "1")
            # int() refuses very long digit strings; none of those fits in 64 bits anyway
            value = (int(text) if len(text) <= 40 else None) if dtype.is_int else float(text)
        except ValueError:
            raise self.lex.error(f"bad {dtype} literal", token) from None
        if dtype.is_int:
            in_range = value is not None and dtypes.int_in_range(value, dtype)
        else:
            in_range = not dtypes.float_overflows(value, text, dtype)
        if not in_range:
            raise self.lex.error(f"{text} is out of range for {dtype}", token)
        return value

    # --- attributes ---------------------------------------------------------------------
    def attribute(self, pending: _PendingInstruction) -> None:
        lex = self.lex
        key_token = lex.word("an attribute name")
        key = key_token.text
        lex.expect("=")
        inst = pending.inst
        start_index = lex.i
        if lex.peek().text in "{([" and lex.peek().kind == "punct":
            span = lex.skip_balanced()
        else:
            token = lex.next()
            if token.kind not in ("word", "string"):
                raise lex.error(f"expected a value for '{key}'", token)
            span = (token.pos, token.pos + len(token.text))
        tokens = lex.tokens[start_index:lex.i]
        words = [t for t in tokens if t.kind == "word"]
        attribute = spec(inst.opcode).attr(key)
        if inst.opcode == "parameter" and attribute is not None and attribute.name == "number":
            attribute = None   # the number is the operand, not an attribute
        try:
            if key == "metadata":
                inst.metadata = self.decode_metadata(tokens)
            elif attribute is None:
                inst.extra_attrs[key] = lex.text[span[0]:span[1]]
            elif attribute.kind in (AttrKind.COMPUTATION, AttrKind.COMPUTATIONS):
                pending.call_names[attribute.name] = (
                    [(_name(t), t) for t in words], attribute.kind is AttrKind.COMPUTATIONS)
            else:
                value = self.DECODERS[attribute.kind](self, tokens, words,
                                                      lex.text[span[0]:span[1]])
                if value is _VERBATIM:
                    inst.extra_attrs[key] = lex.text[span[0]:span[1]]
                else:
                    inst.attrs[attribute.name] = value
        except (ValueError, IndexError, KeyError, TypeError):
            raise lex.error(f"malformed value for attribute '{key}'", key_token) from None

    def decode_slice(self, tokens: list[Token]) -> tuple:
        ranges, current = [], []
        for t in tokens:
            if t.text == "[":
                current = []
            elif t.text == "]":
                if len(current) not in (2, 3):
                    raise ValueError
                ranges.append(tuple(current) + ((1,) if len(current) == 2 else ()))
            elif t.kind == "word":
                current.append(int(t.text))
        return tuple(ranges)

    def decode_padding(self, token: Token) -> tuple:
        config = []
        for part in token.text.split("x"):
            numbers = [int(n) for n in re.findall(r"-?\d+", part)]
            if len(numbers) not in (2, 3):
                raise ValueError
            config.append(tuple(numbers) + ((0,) if len(numbers) == 2 else ()))
        return tuple(config)

    def decode_trip_count(self, raw: str):
        """A `while`'s backend_config: its trip count when that is all it says."""
        config = json.loads(raw)
        if set(config) != {"known_trip_count"} or set(config["known_trip_count"]) != {"n"}:
            return _VERBATIM
        n = int(config["known_trip_count"]["n"])
        if n < 0:
            raise ValueError
        return n

    def decode_buffer(self, raw: str) -> tuple:
        parts = re.findall(r"\{offset=(\d+),size=(\d+)\}|(output)", raw)
        rebuilt = ",".join("output" if out else f"{{offset={o},size={s}}}"
                           for o, s, out in parts)
        if not parts or raw not in (rebuilt, "{" + rebuilt + "}"):
            raise ValueError
        return tuple(BufferSlice(output=True) if out else BufferSlice(int(o), int(s))
                     for o, s, out in parts)

    _WINDOW_FIELD = re.compile(r"(size|stride|pad|lhs_dilate|rhs_dilate|rhs_reversal)="
                               r"(-?\d+(?:_-?\d+)?(?:x-?\d+(?:_-?\d+)?)*)")

    def decode_window(self, raw: str) -> tuple:
        """`{size=3x3 stride=2x2 pad=1_1x0_0 ...}` -> WindowDims; every field is checked to
        name one value per dimension, and nothing but known fields may appear."""
        body = raw.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise ValueError
        body = body[1:-1].strip()
        if not body:
            return ()
        fields = {}
        for part in body.split():
            match = self._WINDOW_FIELD.fullmatch(part)
            if match is None or match.group(1) in fields:
                raise ValueError
            fields[match.group(1)] = match.group(2).split("x")
        if "size" not in fields:
            raise ValueError
        n = len(fields["size"])
        if any(len(v) != n for v in fields.values()):
            raise ValueError

        def ints(name, default):
            return [int(v) for v in fields[name]] if name in fields else [default] * n
        pads = ([tuple(int(x) for x in v.split("_")) for v in fields["pad"]]
                if "pad" in fields else [(0, 0)] * n)
        if any(len(p) != 2 for p in pads):
            raise ValueError
        if any("_" in v for k, vs in fields.items() if k != "pad" for v in vs):
            raise ValueError
        reversal = ints("rhs_reversal", 0)
        if any(r not in (0, 1) for r in reversal):
            raise ValueError
        return window(ints("size", 0), ints("stride", 1), pads, ints("rhs_dilate", 1),
                      ints("lhs_dilate", 1), [bool(r) for r in reversal])

    _LAYOUT = re.compile(r"\s*([a-z][a-z0-9]*)\[([0-9,]*)\](?:\{([0-9,]*)\})?\s*")

    def decode_layouts(self, raw: str) -> tuple:
        """`{f32[4,4]{0,1}, s32[4]{0}, f32[]}` -> OperandLayouts (a shape printed without
        a layout, as XLA prints scalars, has the default: major to minor)."""
        body = raw.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise ValueError
        body = body[1:-1].strip()
        layouts = []
        for part in re.split(r",\s*(?=[a-z])", body) if body else []:
            match = self._LAYOUT.fullmatch(part)
            if match is None:
                raise ValueError
            dtype, dims, order = match.groups()
            dtypes.parse(dtype)
            dims = tuple(int(d) for d in dims.split(",") if d)
            order = (tuple(int(d) for d in order.split(",") if d) if order is not None
                     else tuple(range(len(dims) - 1, -1, -1)))
            layouts.append(OperandLayout(dtype, dims, order))
        return tuple(layouts)

    _FFI_ENTRY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(-?\d+)\s*:\s*([a-z]+\d+)\s*")

    def decode_ffi_config(self, raw: str):
        """A typed-FFI custom call's backend_config, `{uplo = 76 : ui8, ...}` (MLIR's
        dictionary of integers), as sorted (key, value, type); any other text (a JSON
        config of another kind of custom call) is kept verbatim."""
        body = raw.strip()
        if not (body.startswith("{") and body.endswith("}")):
            return _VERBATIM
        body = body[1:-1].strip()
        if not body:
            return ()
        entries = [self._FFI_ENTRY.fullmatch(part) for part in body.split(",")]
        if any(m is None for m in entries):
            return _VERBATIM
        keys = [m.group(1) for m in entries]
        if len(set(keys)) != len(keys):
            raise ValueError
        return tuple(sorted((m.group(1), int(m.group(2)), m.group(3)) for m in entries))

    # One decoder per attribute kind, (parser, tokens, word tokens, raw text) -> value: the
    # parser's half of the attribute schema (computations are resolved later).
    DECODERS = {
        AttrKind.INT: lambda self, tokens, words, raw: _int(words),
        AttrKind.INT_LIST: lambda self, tokens, words, raw: tuple(int(t.text) for t in words),
        AttrKind.BOOL: lambda self, tokens, words, raw: _bool(words),
        AttrKind.WORD: lambda self, tokens, words, raw: _one(words).text,
        AttrKind.STRING: lambda self, tokens, words, raw: _string(tokens),
        AttrKind.SLICE: lambda self, tokens, words, raw: self.decode_slice(tokens),
        AttrKind.PADDING: lambda self, tokens, words, raw: (
            self.decode_padding(_one(words)) if words else ()),
        AttrKind.TRIP_COUNT: lambda self, tokens, words, raw: self.decode_trip_count(raw),
        AttrKind.BUFFER: lambda self, tokens, words, raw: self.decode_buffer(raw),
        AttrKind.WINDOW: lambda self, tokens, words, raw: self.decode_window(raw),
        AttrKind.DIM_LABELS: lambda self, tokens, words, raw: ConvDimensionLabels.parse(
            _one(words).text),
        AttrKind.LAYOUTS: lambda self, tokens, words, raw: self.decode_layouts(raw),
        AttrKind.FFI_CONFIG: lambda self, tokens, words, raw: self.decode_ffi_config(raw),
    }

    def decode_metadata(self, tokens: list[Token]) -> dict:
        result = {}
        inner = tokens[1:-1]
        i = 0
        while i < len(inner):
            key, eq, value = inner[i], inner[i + 1], inner[i + 2]
            if eq.text != "=":
                raise ValueError
            if value.kind == "string":
                result[key.text] = unescape_string(value.text[1:-1])
            elif value.text.lstrip("-").isdigit():
                result[key.text] = int(value.text)
            elif value.text in "{[(":
                # nested value (e.g. a list): skip it, it has no meaning for us
                depth, i = 0, i + 2
                while True:
                    depth += inner[i].text in "{[(" and inner[i].kind == "punct"
                    depth -= inner[i].text in ")]}" and inner[i].kind == "punct"
                    if depth == 0:
                        break
                    i += 1
                i += 1
                continue
            else:
                result[key.text] = value.text
            i += 3
        return result

    # --- instructions and computations --------------------------------------------------
    def instruction(self) -> _PendingInstruction:
        lex = self.lex
        is_root = lex.accept("ROOT")
        name_token = lex.word("an instruction name")
        lex.expect("=")
        declared = self.shape()
        opcode_token = lex.word("an opcode")
        opcode = opcode_token.text
        if opcode not in OPS:
            raise lex.error(f"unknown opcode '{opcode}'", opcode_token)
        inst = Instruction(_name(name_token), opcode, declared)
        pending = _PendingInstruction(inst, [], {}, declared, opcode_token, is_root, name_token)
        lex.expect("(")
        if opcode == "parameter":
            number = lex.word("a parameter number")
            if not number.text.isdigit() or len(number.text) > 9:
                raise lex.error("expected a parameter number (0 to 999999999)", number)
            inst.attrs["number"] = int(number.text)
            lex.expect(")")
        elif opcode == "constant":
            inst.literal = self.literal(declared)
            lex.expect(")")
        elif not lex.accept(")"):
            while True:
                if self.at_shape():
                    self.shape()  # older XLA prints each operand's shape before its name
                token = lex.word("an operand name")
                pending.operand_names.append((_name(token), token))
                if lex.accept(")"):
                    break
                lex.expect(",")
        while lex.accept(","):
            self.attribute(pending)
        return pending

    def computation(self) -> tuple[Computation, list[_PendingInstruction], bool]:
        lex = self.lex
        is_entry = lex.accept("ENTRY")
        name_token = lex.word("a computation name")
        name = _name(name_token)
        if name in self.computation_names:
            raise lex.error(f"duplicate computation name %{name}", name_token)
        self.computation_names.add(name)
        if lex.peek().text == "(":
            lex.skip_balanced()
            lex.expect("->")
            self.shape()
        lex.expect("{")
        pending = []
        while not lex.accept("}"):
            if lex.peek().kind == "eof":
                raise lex.error(f"computation %{name} is not closed")
            pending.append(self.instruction())
        if not pending:
            raise lex.error(f"computation %{name} is empty", name_token)
        return Computation(name), pending, is_entry

    def module(self) -> Module:
        lex = self.lex
        if lex.peek().text != "HloModule":
            raise lex.error("expected 'HloModule'")
        lex.next()
        name = lex.word("a module name").text
        while lex.accept(","):
            lex.word("an attribute name")
            lex.expect("=")
            if lex.peek().text in "{([" and lex.peek().kind == "punct":
                lex.skip_balanced()
            else:
                lex.next()
        self.skip_debug_sections()
        parsed = []
        while lex.peek().kind != "eof":
            parsed.append(self.computation())
        if not parsed:
            raise lex.error("module has no computations")
        by_name = {comp.name: comp for comp, _, _ in parsed}
        entries = [comp for comp, _, is_entry in parsed if is_entry]
        entry = entries[0] if entries else parsed[-1][0]
        for comp, pending, _ in parsed:
            self.resolve(comp, pending, by_name)
        module = Module(name, entry, [c for c, _, _ in parsed])
        return module

    def skip_debug_sections(self) -> None:
        """Skip the stack-trace tables (`FileNames`, `StackFrames`, ...) that XLA prints
        before the computations with debug info on; metadata refers to them by number."""
        lex = self.lex
        while (lex.peek().text in _DEBUG_SECTIONS and lex.peek().kind == "word"
               and lex.peek(1).text not in ("{", "(")):
            lex.next()
            while lex.peek().kind == "word" and lex.peek().text.isdigit():
                lex.next()
                if lex.peek().kind == "string":
                    lex.next()
                elif lex.peek().text == "{" and lex.peek().kind == "punct":
                    lex.skip_balanced()
                else:
                    raise lex.error("expected a string or '{' in a debug-info table")

    def resolve(self, comp: Computation, pending: list[_PendingInstruction],
                computations: dict[str, Computation]) -> None:
        lex = self.lex
        by_name: dict[str, _PendingInstruction] = {}
        for p in pending:
            if p.inst.name in by_name:
                raise lex.error(f"duplicate instruction name %{p.inst.name}",
                                p.name_token or p.token)
            by_name[p.inst.name] = p
        for p in pending:
            for key, (names, is_list) in p.call_names.items():
                try:
                    callees = [computations[n] for n, _ in names]
                except KeyError:
                    bad = next(t for n, t in names if n not in computations)
                    raise lex.error(f"unknown computation %{_name(bad)}", bad) from None
                if not is_list and len(callees) != 1:
                    raise lex.error(f"'{key}' names one computation", names[-1][1] if names
                                    else p.token)
                p.inst.calls[key] = callees if is_list else callees[0]
            for operand, token in p.operand_names:
                if operand not in by_name:
                    raise lex.error(f"unknown operand %{operand}", token)
                p.inst.operands.append(by_name[operand].inst)
        comp.instructions = [p.inst for p in pending]
        roots = [p.inst for p in pending if p.is_root]
        comp.root = roots[0] if roots else pending[-1].inst
        try:
            comp.sort()
        except UseCycleError as e:
            raise self.cycle_error(comp, by_name, e.instruction) from None
        # Shapes are checked once callees are resolved (a call's shape is its callee's).
        self.pending_checks.extend(pending)

    def cycle_error(self, comp: Computation, by_name: dict, inst: Instruction
                    ) -> HloParseError:
        """A parse error naming the instructions of a use cycle through `inst`."""
        cycle = nx.find_cycle(use_graph(comp), source=inst.name)
        path = " -> ".join(f"%{user}" for _, user in [(None, cycle[0][0])] + cycle)
        return self.lex.error(f"instructions use each other in a cycle: {path}",
                              by_name[inst.name].name_token or by_name[inst.name].token)

    def check_shapes(self) -> None:
        for p in self.pending_checks:
            inst = p.inst
            if inst.opcode in ("parameter", "constant"):
                continue
            try:
                inferred = infer_shape(inst.opcode, [o.shape for o in inst.operands], inst.attrs,
                                       inst.calls, p.declared)
            except _RULE_ERRORS as e:
                raise self.lex.error(f"%{inst.name}: {e}", p.token) from None
            if inferred != p.declared:
                raise self.lex.error(f"%{inst.name}: declared shape {p.declared} but the "
                                     f"operands give {inferred}", p.token)


def parse_unverified(text: str) -> Module:
    """Parse HLO text into a Module, checking syntax and each instruction's shape but not
    the module as a whole (for tools that read partial modules); HloParseError
    (line:column) if it is malformed."""
    parser = _Parser(text)
    module = parser.module()
    parser.check_shapes()
    return module


def parse_module(text: str) -> Module:
    """Parse HLO text into a verified Module: HloParseError (line:column) if the text is
    malformed, VerifierError if the module it spells is not one flowjit can compile."""
    module = parse_unverified(text)
    verify(module)
    return module
