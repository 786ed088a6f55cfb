"""HLO text printed by JAX parses, verifies, round-trips and evaluates correctly.

The fixtures in tests/fixtures/ were written by make_jax_fixtures.py: NAME.hlo is what
`jax.jit(f).lower(*inputs).as_text(dialect="hlo")` printed and NAME.npz holds the inputs
(`arg0`, ...) and JAX's outputs (`out0`, ...). Each program's result under ir.reference is
checked against an independent numpy version written here, against JAX's recorded outputs,
and, where JAX is installed, against JAX run live.
"""
from __future__ import annotations

import importlib.util
import math
import pathlib

import numpy as np
import pytest

from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.verifier import verify
from tests import conv_oracle
from tests.ir import linalg_oracles
from tests.ir.sort_oracles import SORT_ORACLES, SORT_TOLERANCE

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.hlo"))
F32 = np.float32


def load(name: str):
    """(hlo text, inputs, JAX's outputs) of one fixture."""
    text = (FIXTURES / f"{name}.hlo").read_text()
    with np.load(FIXTURES / f"{name}.npz") as data:
        count = lambda prefix: sum(k.startswith(prefix) for k in data.files)  # noqa: E731
        args = [data[f"arg{i}"] for i in range(count("arg"))]
        outs = [data[f"out{i}"] for i in range(count("out"))]
    return text, args, outs


def flat(value) -> list[np.ndarray]:
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in flat(item)]
    return [np.asarray(value)]


def run_fixture(name: str) -> list[np.ndarray]:
    text, args, _ = load(name)
    return flat(evaluate(parse_module(text), args))


# --- independent numpy versions of the programs (float64 inside) ----------------------

def _relu(x):
    return np.maximum(x, 0.0)


def np_softmax(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return [e / e.sum(axis=-1, keepdims=True)]


def np_mlp(x, w1, b1, w2, b2):
    x, w1, b1, w2, b2 = (v.astype(np.float64) for v in (x, w1, b1, w2, b2))
    return [np.tanh(_relu(x @ w1 + b1) @ w2 + b2)]


def np_mlp_grad(x, y, w1, b1, w2, b2):
    """Backprop by hand for loss = mean((tanh(relu(x w1 + b1) w2 + b2) - y)^2)."""
    x, y, w1, b1, w2, b2 = (v.astype(np.float64) for v in (x, y, w1, b1, w2, b2))
    z1 = x @ w1 + b1
    h = _relu(z1)
    out = np.tanh(h @ w2 + b2)
    d_out = 2.0 * (out - y) / out.size
    d_z2 = d_out * (1.0 - out**2)
    d_z1 = (d_z2 @ w2.T) * (z1 > 0)
    return [x.T @ d_z1, d_z1.sum(axis=0), h.T @ d_z2, d_z2.sum(axis=0)]


def _wrap(index, size):
    return index + size if index < 0 else index


def np_gather(x, idx):
    rows = [min(max(_wrap(int(i), len(x)), 0), len(x) - 1) for i in idx]
    return [x[rows]]


def np_scatter_add(x, idx, v):
    out = x.astype(np.float64)
    for k, i in enumerate(idx):
        i = _wrap(int(i), len(x))
        if 0 <= i < len(x):  # updates out of bounds are dropped
            out[i] += v[k]
    return [out]


def np_pad(x, value, config):
    """lax.pad by index arithmetic: output position o holds x[(o - lo) / (interior + 1)]
    when that is a whole in-range number, else the padding value."""
    index, valid = [], np.ones((), bool)
    for axis, (lo, hi, interior) in enumerate(config):
        n = x.shape[axis]
        size = lo + hi + n + max(n - 1, 0) * interior
        src = np.arange(size) - lo
        ok = (src >= 0) & (src % (interior + 1) == 0) & (src // (interior + 1) < n)
        shape = [1] * x.ndim
        shape[axis] = size
        index.append(np.where(ok, src // (interior + 1), 0).reshape(shape))
        valid = valid & ok.reshape(shape)
    return np.where(valid, x[tuple(index)], value)


def np_concat_pad(a, b):
    joined = np.concatenate([a, b], axis=1)
    padded = np.full((joined.shape[0] + 3, joined.shape[1] + 3), -1.0, F32)
    padded[1:1 + joined.shape[0], :joined.shape[1]] = joined
    return [padded, np_pad(joined, 0.5, [(1, -1, 2), (-2, 1, 1)])]


def np_dynamic_slice(x, i, j, update):
    def start(index, size, window):
        return min(max(_wrap(int(index), size), 0), size - window)
    r, c = start(i, 5, 2), start(j, 6, 3)
    window = x[r:r + 2, c:c + 3]
    updated = x.copy()
    r, c = start(j, 5, 2), start(i, 6, 3)
    updated[r:r + 2, c:c + 3] = update
    return [window, updated]


def np_reductions(x):
    # numpy's max/min propagate NaN and argmax/argmin return the first NaN, as JAX does.
    return [x.max(axis=1), x.min(axis=0), x.argmax(axis=1).astype(np.int32),
            x.argmin(axis=0).astype(np.int32), x.astype(np.float64).sum()]


def _xla_div(a: int, b: int) -> int:
    if b == 0:
        return -1
    if a == -2**31 and b == -1:
        return a
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _xla_rem(a: int, b: int) -> int:
    if b == 0:
        return a
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def np_int_ops(x, y):
    pairs = list(zip(x.ravel().tolist(), y.ravel().tolist()))
    div = np.array([_xla_div(a, b) for a, b in pairs], np.int32).reshape(x.shape)
    rem = np.array([_xla_rem(a, b) for a, b in pairs], np.int32).reshape(x.shape)
    wide = x.astype(np.int64)
    return [div, rem, (wide << 3).astype(np.int32), x >> 2,
            (x.view(np.uint32) >> 28).view(np.int32), (x & y) | (x ^ 7),
            (np.abs(wide) * y - 5).astype(np.int32), np.maximum(x, y)]


def _saturate(x, lo, hi, dtype):
    x = np.trunc(x.astype(np.float64))
    return np.where(np.isnan(x), 0, np.clip(np.nan_to_num(x), lo, hi)).astype(dtype)


def np_convert_iota(x):
    ramp = np.arange(8).reshape(2, 4)
    return [_saturate(x, -2**31, 2**31 - 1, np.int32), _saturate(x, 0, 255, np.uint8),
            ramp * x.astype(np.float64), np.arange(6, dtype=F32),
            (x > 0).astype(np.int32) + ramp]


def np_select_clamp(x, y):
    return [np.where(x > 0, x, F32(0.1) * x), np.clip(x, -0.5, 0.75), np.clip(y, -1.0, 1.0),
            np.where(x < y, y, x)]


def np_gelu(x):
    x = x.astype(np.float64)
    exact = 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    approx = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return [exact, approx]


def np_logsumexp(x):
    x = x.astype(np.float64)
    out = []
    for row in x:
        m = row.max()
        out.append(m if np.isneginf(m) else m + np.log(np.exp(row - m).sum()))
    return [np.array(out)]


def np_layernorm(x, gamma, beta):
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return [(x - mean) / np.sqrt(var + 1e-5) * gamma + beta]


def np_control_flow(x, n):
    acc = x.astype(np.float64)
    for i in range(int(n)):
        acc = acc * 0.5 + i
    return [np.sin(acc) if n > 2 else np.cos(acc)]


def np_take_along_axis(x, idx):
    """Per row r: x[r, i] with i wrapped once; NaN where it is still out of range."""
    out = np.full(idx.shape, np.nan)
    for r, c in np.ndindex(*idx.shape):
        i = _wrap(int(idx[r, c]), x.shape[1])
        if 0 <= i < x.shape[1]:
            out[r, c] = x[r, i]
    return [out]


def _np_log_softmax(logits):
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def np_cross_entropy(logits, labels):
    return [-_np_log_softmax(logits)[np.arange(len(labels)), labels].mean()]


def np_cross_entropy_grad(logits, labels):
    """d/dlogits of the mean cross-entropy: (softmax - one_hot(label)) / batch."""
    probs = np.exp(_np_log_softmax(logits))
    probs[np.arange(len(labels)), labels] -= 1.0
    return [probs / len(labels)]


def np_vmap_gather(x, k):
    """Row r's element k[r] (wrapped once, then clamped: jnp indexing under vmap)."""
    width = x.shape[1]
    return [np.array([x[r, min(max(_wrap(int(i), width), 0), width - 1)]
                      for r, i in enumerate(k)])]


def np_vmap_scatter_add(x, k, v):
    out = x.astype(np.float64)
    for r, i in enumerate(k):
        i = _wrap(int(i), x.shape[1])
        if 0 <= i < x.shape[1]:  # dropped otherwise
            out[r, i] += v[r]
    return [out]
def _np_windows(x, window, strides, pads):
    """For NHWC `x` (float64): each output position's window as a list of (h, w) taps inside
    the image, row-major (padding taps left out)."""
    n, h, w, c = x.shape
    out_h = (h + sum(pads[0]) - window[0]) // strides[0] + 1
    out_w = (w + sum(pads[1]) - window[1]) // strides[1] + 1
    windows = {}
    for i in range(out_h):
        for j in range(out_w):
            windows[i, j] = [(i * strides[0] + a - pads[0][0], j * strides[1] + b - pads[1][0])
                             for a in range(window[0]) for b in range(window[1])
                             if 0 <= i * strides[0] + a - pads[0][0] < h
                             and 0 <= j * strides[1] + b - pads[1][0] < w]
    return (out_h, out_w), windows


def _np_max_pool(x):
    (out_h, out_w), windows = _np_windows(x, (3, 3), (2, 2), ((1, 1), (0, 1)))
    out = np.empty((x.shape[0], out_h, out_w, x.shape[3]))
    argmax = {}
    for (i, j), taps in windows.items():
        values = np.stack([x[:, a, b] for a, b in taps])            # [taps, n, c]
        out[:, i, j] = values.max(axis=0)
        argmax[i, j] = (taps, values.argmax(axis=0))                # first maximum wins
    return out, argmax


def np_pooling(x):
    x = x.astype(np.float64)
    n, h, w, c = x.shape
    avg = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    return [_np_max_pool(x)[0], avg]


def np_pooling_grad(x):
    x = x.astype(np.float64)
    n, h, w, c = x.shape
    pooled, argmax = _np_max_pool(x)
    grad = np.zeros_like(x)
    for (i, j), (taps, first) in argmax.items():
        for b in range(n):
            for k in range(c):
                a, col = taps[first[b, k]]
                grad[b, a, col, k] += 2 * pooled[b, i, j, k]
    avg = np_pooling(x)[1]
    spread = np.repeat(np.repeat(np.cos(avg) / 4, 2, axis=1), 2, axis=2)
    grad[:, :h // 2 * 2, :w // 2 * 2] += spread
    return [grad]


def np_cumulative(x, positive):
    x, positive = x.astype(np.float64), positive.astype(np.float64)
    return [np.cumsum(x, axis=1), np.cumsum(x[::-1], axis=0)[::-1],
            np.cumprod(positive, axis=1), np.maximum.accumulate(x, axis=1),
            np.minimum.accumulate(x[::-1], axis=0)[::-1]]


ORACLES = {
    "softmax": np_softmax, "mlp": np_mlp, "mlp_grad": np_mlp_grad, "gather": np_gather,
    "scatter_add": np_scatter_add, "concat_pad": np_concat_pad,
    "dynamic_slice": np_dynamic_slice, "reductions": np_reductions, "int_ops": np_int_ops,
    "convert_iota": np_convert_iota, "select_clamp": np_select_clamp, "gelu": np_gelu,
    "logsumexp": np_logsumexp, "layernorm": np_layernorm, "control_flow": np_control_flow,
    "take_along_axis": np_take_along_axis, "cross_entropy": np_cross_entropy,
    "cross_entropy_grad": np_cross_entropy_grad, "vmap_gather": np_vmap_gather,
    "vmap_scatter_add": np_vmap_scatter_add,
    "pooling": np_pooling, "pooling_grad": np_pooling_grad, "cumulative": np_cumulative,
}
# float32 results against float64 numpy: a few ulps per op (gelu's erf is JAX's own
# polynomial, so a little more).
TOLERANCE = {"gelu": dict(rtol=1e-5, atol=2e-6), "mlp_grad": dict(rtol=1e-4, atol=1e-6),
             "cumulative": dict(rtol=1e-5, atol=1e-5)}
DEFAULT_TOLERANCE = dict(rtol=2e-6, atol=1e-6)


# --- convolutions, by their definition (tests/conv_oracle.py) ------------------------------

_NHWC = ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))   # JAX's specs of NHWC, HWIO, NHWC


def np_conv_batch_group(x, y):
    """d/dw sum(conv(x, w, 2 feature groups) * y): each group's own kernel gradient."""
    w = np.zeros((3, 3, 2, 6))
    grads = []
    for g in range(2):
        xs, ws, ys = x[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], y[..., 3 * g:3 * g + 3]
        grads.append(conv_oracle.conv_vjp(xs, ws, ys, (1, 1), [(1, 1), (1, 1)],
                                          specs=_NHWC)[1])
    return [np.concatenate(grads, axis=-1)]


def np_cnn_forward(x, w1, b1, w2, b2, wd, bd, keep=False):
    z1 = conv_oracle.conv(x, w1, (1, 1), [(1, 1), (1, 1)], specs=_NHWC) + b1
    h1 = _relu(z1)
    z2 = conv_oracle.conv(h1, w2, (2, 2), [(0, 1), (0, 1)], specs=_NHWC) + b2
    h2 = _relu(z2)
    pooled = h2.mean(axis=(1, 2))
    out = pooled @ wd.astype(np.float64) + bd
    return (out, z1, h1, z2, h2, pooled) if keep else [out]


def np_cnn_grad(x, y, w1, b1, w2, b2, wd, bd):
    """Backprop by hand through np_cnn_forward for loss = mean((out - y)^2)."""
    out, z1, h1, z2, h2, pooled = np_cnn_forward(x, w1, b1, w2, b2, wd, bd, keep=True)
    d_out = 2.0 * (out - y) / out.size
    d_pooled = d_out @ wd.T.astype(np.float64)
    d_z2 = np.broadcast_to(d_pooled[:, None, None, :] / (h2.shape[1] * h2.shape[2]),
                           h2.shape) * (z2 > 0)
    d_h1, d_w2 = conv_oracle.conv_vjp(h1, w2, d_z2, (2, 2), [(0, 1), (0, 1)], specs=_NHWC)
    d_z1 = d_h1 * (z1 > 0)
    _, d_w1 = conv_oracle.conv_vjp(x, w1, d_z1, (1, 1), [(1, 1), (1, 1)], specs=_NHWC)
    return [d_w1, d_z1.sum(axis=(0, 1, 2)), d_w2, d_z2.sum(axis=(0, 1, 2)),
            pooled.T @ d_out, d_out.sum(axis=0)]


ORACLES.update({
    "conv_nhwc": lambda x, w: [conv_oracle.conv(x, w, (1, 1), [(1, 1), (1, 1)],
                                                specs=_NHWC)],
    "conv_nchw": lambda x, w: [conv_oracle.conv(x, w, (1, 2), [(0, 0), (0, 0)])],
    "conv_strided": lambda x, w: [conv_oracle.conv(x, w, (2, 2), [(1, 1), (0, 1)],
                                                   specs=_NHWC)],
    "conv_dilated": lambda x, w: [conv_oracle.conv(x, w, (1, 1), [(1, 1), (2, 0)], (2, 1),
                                                   (1, 2))],
    "conv_depthwise": lambda x, w: [conv_oracle.conv(x, w, (1, 1), [(1, 1), (1, 1)],
                                                     specs=_NHWC, feature_groups=4)],
    "conv_batch_group": np_conv_batch_group,
    # conv_transpose(x, w, 2, SAME) for a 3x3 kernel: lhs dilation 2, padding 2_1 (JAX's
    # _conv_transpose_padding: k + s - 2 = 3 split 2 before, 1 after).
    "conv_transpose": lambda x, w: [conv_oracle.conv(x, w, (1, 1), [(2, 1), (2, 1)], (2, 2),
                                                     specs=_NHWC)],
    "cnn_forward": np_cnn_forward,
    "cnn_grad": np_cnn_grad,
})
ORACLES.update(linalg_oracles.ORACLES)
TOLERANCE.update(linalg_oracles.TOLERANCE)
# f32 sums of 27 to 192 products against float64.
TOLERANCE.update({name: dict(rtol=2e-5, atol=2e-5) for name in (
    "conv_nhwc", "conv_nchw", "conv_strided", "conv_dilated", "conv_depthwise",
    "conv_batch_group", "conv_transpose", "cnn_forward", "cnn_grad")})

# Sorting programs (tests/ir/sort_oracles.py).
ORACLES.update(SORT_ORACLES)
TOLERANCE.update(SORT_TOLERANCE)


def assert_close(actual, expected, name):
    assert len(actual) == len(expected), name
    for k, (got, want) in enumerate(zip(actual, expected)):
        want = np.asarray(want)
        assert got.shape == want.shape, (name, k)
        if got.dtype.kind in "iub":
            np.testing.assert_array_equal(got, want, err_msg=f"{name} output {k}")
        else:
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       equal_nan=True, err_msg=f"{name} output {k}",
                                       **TOLERANCE.get(name, DEFAULT_TOLERANCE))


def test_every_fixture_has_an_oracle():
    assert NAMES == sorted(ORACLES), "add the numpy version of each new fixture to ORACLES"


@pytest.mark.parametrize("name", NAMES)
def test_parses_and_verifies(name):
    module = parse_module(load(name)[0])
    verify(module)


@pytest.mark.parametrize("name", NAMES)
def test_print_parse_print_is_identity(name):
    text = parse_module(load(name)[0]).to_text()
    reparsed = parse_module(text)
    verify(reparsed)
    assert reparsed.to_text() == text


@pytest.mark.parametrize("name", NAMES)
def test_reference_matches_numpy(name):
    _, args, outs = load(name)
    actual = run_fixture(name)
    assert [a.dtype for a in actual] == [o.dtype for o in outs], name
    assert_close(actual, ORACLES[name](*args), name)


@pytest.mark.parametrize("name", NAMES)
def test_reference_matches_recorded_jax_outputs(name):
    _, _, outs = load(name)
    assert_close(run_fixture(name), outs, name)


def test_reference_saturating_convert_agrees_with_recorded_jax_bit_for_bit():
    _, _, outs = load("convert_iota")
    actual = run_fixture("convert_iota")
    for k in (0, 1, 4):  # the integer results
        np.testing.assert_array_equal(actual[k], outs[k])


def test_debug_info_sections_are_skipped():
    """`as_text(debug_info=True)` prints stack-trace tables before the computations."""
    text = """HloModule jit_f, entry_computation_layout={(f32[2]{0})->f32[2]{0}}

FileNames
1 "/tmp/a \\"quoted\\".py"

FunctionNames
1 "<module>"

FileLocations
1 {file_name_id=1 function_name_id=1 line=7 end_line=7 column=6 end_column=38}

StackFrames
1 {file_location_id=1 parent_frame_id=1}


ENTRY main.3 {
  x.1 = f32[2]{0} parameter(0), metadata={op_name="x"}
  ROOT neg.1 = f32[2]{0} negate(x.1), metadata={op_name="jit(f)/neg" stack_frame_id=1}
}
"""
    module = parse_module(text)
    verify(module)
    assert module.entry.root.metadata == {"op_name": "jit(f)/neg", "stack_frame_id": 1}


# --- live JAX (skipped without it) --------------------------------------------------------

def _programs():
    pytest.importorskip("jax")
    spec = importlib.util.spec_from_file_location("make_jax_fixtures",
                                                  FIXTURES / "make_jax_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.programs()


@pytest.fixture(scope="module")
def programs():
    return _programs()


@pytest.mark.parametrize("name", NAMES)
def test_reference_matches_live_jax(name, programs):
    import jax
    fn, _ = programs[name]
    _, args, _ = load(name)
    expected = flat(jax.jit(fn)(*args))
    assert_close(run_fixture(name), [np.asarray(e) for e in expected], name)


@pytest.mark.parametrize("name", NAMES)
def test_todays_jax_text_parses_and_evaluates_the_same(name, programs):
    """The HLO this JAX prints now (it may differ from the fixture) still parses."""
    import jax
    fn, _ = programs[name]
    _, args, _ = load(name)
    lowered = jax.jit(fn).lower(*args)
    for debug_info in (False, True):
        module = parse_module(lowered.as_text(dialect="hlo", debug_info=debug_info))
        verify(module)
    assert_close(flat(evaluate(module, args)), run_fixture(name), name)
