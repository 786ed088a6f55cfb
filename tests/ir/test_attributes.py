"""The typed attribute schema: attributes decode to typed values, print back as XLA spells
them, and what an op does not declare is kept verbatim."""
import pytest

from flowjit.ir.attributes import BufferSlice
from flowjit.ir.errors import HloParseError
from flowjit.ir.parser import parse_module

LOOP = """HloModule m
%cond {
  %s = (s32[], f32[]) parameter(0)
  %i = s32[] get-tuple-element(%s), index=0
  %n = s32[] constant(5)
  ROOT %lt = pred[] compare(%i, %n), direction=LT
}
%body {
  %s = (s32[], f32[]) parameter(0)
  %i = s32[] get-tuple-element(%s), index=0
  %one = s32[] constant(1)
  %j = s32[] add(%i, %one)
  %x = f32[] get-tuple-element(%s), index=1
  ROOT %t = (s32[], f32[]) tuple(%j, %x)
}
ENTRY %main {
  %x = f32[] parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], f32[]) tuple(%zero, %x)
  ROOT %w = (s32[], f32[]) while(%init), condition=%cond, body=%body, CONFIG
}
"""


def loop(config: str):
    module = parse_module(LOOP.replace("CONFIG", config))
    return module, module.entry.root


def test_a_known_trip_count_is_a_typed_attribute_printed_as_xla_does():
    module, w = loop('backend_config={"known_trip_count":{"n":"5"}}')
    assert w.attrs["known_trip_count"] == 5 and w.extra_attrs == {}
    assert 'backend_config={"known_trip_count":{"n":"5"}}' in module.to_text()
    assert parse_module(module.to_text()).entry.root.attrs["known_trip_count"] == 5


def test_a_backend_config_saying_more_is_kept_verbatim():
    config = 'backend_config={"known_trip_count":{"n":"5"},"other":1}'
    module, w = loop(config)
    assert "known_trip_count" not in w.attrs
    assert w.extra_attrs["backend_config"] == config.split("=", 1)[1]
    assert config in module.to_text()


@pytest.mark.parametrize("config", ['backend_config={"known_trip_count":{"n":"x"}}',
                                    'backend_config={"known_trip_count":{"n":"-1"}}',
                                    'backend_config={"known_trip_count":'])
def test_a_malformed_trip_count_is_a_parse_error(config):
    with pytest.raises(HloParseError):
        loop(config)


@pytest.mark.parametrize("text, value", [
    ("output", (BufferSlice(output=True),)),
    ("{offset=64,size=16}", (BufferSlice(64, 16),)),
    ("{{offset=0,size=8},output}", (BufferSlice(0, 8), BufferSlice(output=True))),
])
def test_buffer_slices_are_typed_and_round_trip(text, value):
    module = parse_module("HloModule m\nENTRY %main {\n  %x = f32[2] parameter(0)\n"
                          f"  ROOT %n = f32[2] negate(%x), buffer={text}\n}}\n")
    assert module.entry.root.attrs["buffer"] == value
    assert f"buffer={text}" in module.to_text()


@pytest.mark.parametrize("text", ["{offset=1}", "{offset=1,size=2", "somewhere", "{}"])
def test_a_malformed_buffer_is_a_parse_error(text):
    with pytest.raises(HloParseError, match="malformed value for attribute 'buffer'"):
        parse_module("HloModule m\nENTRY %main {\n  %x = f32[2] parameter(0)\n"
                     f"  ROOT %n = f32[2] negate(%x), buffer={text}\n}}\n")


def test_an_attribute_the_op_does_not_declare_is_kept_verbatim():
    # `dimensions` means something to transpose, nothing to negate.
    module = parse_module("HloModule m\nENTRY %main {\n  %x = f32[2] parameter(0)\n"
                          "  ROOT %n = f32[2] negate(%x), dimensions={0}\n}\n")
    root = module.entry.root
    assert root.attrs == {} and root.extra_attrs == {"dimensions": "{0}"}
    assert "dimensions={0}" in module.to_text()


def test_a_string_attribute_is_escaped_and_unescaped():
    module = parse_module('HloModule m\nENTRY %main {\n  %x = f32[] parameter(0)\n'
                          '  ROOT %c = f32[] custom-call(%x), custom_call_target="a\\"b"\n}\n')
    assert module.entry.root.attrs["custom_call_target"] == 'a"b'
    assert 'custom_call_target="a\\"b"' in module.to_text()


def test_one_computation_where_the_schema_says_one():
    text = LOOP.replace("body=%body, CONFIG", "body={%body, %cond}")
    with pytest.raises(HloParseError, match="'body' names one computation"):
        parse_module(text)


# --- windows (convolution, reduce-window, select-and-scatter) ------------------------------
from hypothesis import given, strategies as st  # noqa: E402

from flowjit.ir.attributes import AttrKind, WindowDim, window  # noqa: E402
from flowjit.ir.parser import _Parser  # noqa: E402
from flowjit.ir.printer import FORMATTERS  # noqa: E402


def decode_window(text):
    return _Parser.decode_window(_Parser, text)


@pytest.mark.parametrize("text, dims", [
    ("{size=3x3 stride=2x2 pad=1_1x1_1}", window((3, 3), (2, 2), ((1, 1), (1, 1)))),
    ("{size=2x1 lhs_dilate=2x1 rhs_dilate=1x3}",
     window((2, 1), window_dilation=(1, 3), base_dilation=(2, 1))),
    ("{size=1x4 pad=0_0x-1_3 rhs_reversal=0x1}",
     window((1, 4), padding=((0, 0), (-1, 3)), reversal=(False, True))),
    ("{size=5}", (WindowDim(5),)),
    ("{}", ()),
])
def test_a_window_reads_and_prints_as_xla_spells_it(text, dims):
    assert decode_window(text) == dims
    assert FORMATTERS[AttrKind.WINDOW](dims) == text


@pytest.mark.parametrize("text", ["{stride=2}", "{size=3x3 stride=2}", "{size=3 pad=1}",
                                  "{size=3 size=3}", "{size=3 wobble=1}", "{size=3x}",
                                  "size=3", "{size=3 rhs_reversal=2}", "{size=3_1}"])
def test_a_malformed_window_is_rejected(text):
    with pytest.raises(ValueError):
        decode_window(text)


_dim = st.builds(WindowDim, st.integers(0, 9), st.integers(1, 4), st.integers(-3, 5),
                 st.integers(-3, 5), st.integers(1, 3), st.integers(1, 3), st.booleans())


@given(st.lists(_dim, max_size=4).map(tuple))
def test_any_window_round_trips(dims):
    assert decode_window(FORMATTERS[AttrKind.WINDOW](dims)) == dims
