"""Long programs compile and match numpy: chains of thousands of elementwise or
data-movement ops, traced (opt_level 0 and 2) or written as one fusion, for the CPU and
the PTX emitters (which walk the graph with an explicit stack, not recursion)."""
import shutil

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.codegen.ptx import ptx_for_module
from flowjit.ir.parser import parse_module
from flowjit.runtime.executable import compile_module


def elementwise_chain(xp, x, steps: int):
    """x*a+b again and again, a sine every 8th step (keeps values bounded): ~1.9 ops a step."""
    for k in range(steps):
        x = xp.sin(x) if k % 8 == 0 else x * 1.0001 + 0.5
    return x


@pytest.mark.parametrize("opt_level", [0, 2])
def test_a_2000_op_elementwise_chain_matches_numpy(opt_level, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    steps = 1100   # 2,062 elementwise ops (and their constants)
    x = np.linspace(-2, 2, 257).astype(np.float32)
    jitted = flowjit.jit(lambda v: elementwise_chain(fnp, v, steps), opt_level=opt_level)
    expected = elementwise_chain(np, x.astype(np.float64), steps)
    np.testing.assert_allclose(np.asarray(jitted(x)), expected, rtol=2e-4, atol=2e-4)


def data_movement_chain(xp, x, steps: int):
    """Transpose, flatten, reverse, reshape back and add: five ops a step on an 8x8 array."""
    for _ in range(steps):
        x = xp.transpose(x).reshape(64)[::-1].reshape(8, 8) + 0.25
    return x


@pytest.mark.parametrize("opt_level", [0, 2])
def test_a_long_chain_of_data_movement_matches_numpy(opt_level, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    steps = 400
    x = np.arange(64, dtype=np.float32).reshape(8, 8)
    jitted = flowjit.jit(lambda v: data_movement_chain(fnp, v, steps), opt_level=opt_level)
    expected = data_movement_chain(np, x.astype(np.float64), steps)
    np.testing.assert_allclose(np.asarray(jitted(x)), expected, rtol=1e-6)


def deep_fusion_text(depth: int) -> str:
    """HLO of one fused computation `depth` ops deep (transpose, x*0.5, reverse, x+0.25, ...
    on a 16x16 array), as the fusion pass would not make it (it cuts long chains)."""
    body = ["  %x.0 = f32[16,16] parameter(0)",
            "  %half = f32[] constant(0.5)", "  %quarter = f32[] constant(0.25)",
            "  %halves = f32[16,16] broadcast(%half), dimensions={}",
            "  %quarters = f32[16,16] broadcast(%quarter), dimensions={}"]
    steps = ["transpose(%{}), dimensions={{1,0}}", "multiply(%{}, %halves)",
             "reverse(%{}), dimensions={{0}}", "add(%{}, %quarters)"]
    for k in range(1, depth + 1):
        op = steps[(k - 1) % 4].format(f"x.{k - 1}")
        root = "ROOT " if k == depth else ""
        body.append(f"  {root}%x.{k} = f32[16,16] {op}")
    return "\n".join(["HloModule deep", "%fused {", *body, "}", "ENTRY %main {",
                      "  %p = f32[16,16] parameter(0)",
                      "  ROOT %f = f32[16,16] fusion(%p), kind=kLoop, calls=%fused", "}"])


def deep_fusion_numpy(x: np.ndarray, depth: int) -> np.ndarray:
    steps = [np.transpose, lambda v: v * 0.5, lambda v: v[::-1], lambda v: v + 0.25]
    for k in range(depth):
        x = steps[k % 4](x)
    return x


DEPTH = 3000


def test_a_fusion_3000_ops_deep_compiles_for_the_cpu_and_matches_numpy(monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", "off")
    x = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    executable = compile_module(parse_module(deep_fusion_text(DEPTH)))
    (result,) = executable(x)
    np.testing.assert_allclose(result, deep_fusion_numpy(x.astype(np.float64), DEPTH),
                               rtol=1e-6, atol=1e-6)


def test_a_fusion_3000_ops_deep_lowers_to_ptx(tmp_path):
    ptx = ptx_for_module(parse_module(deep_fusion_text(DEPTH)))
    assert ptx.count(".entry") == 1
    if shutil.which("ptxas") is not None:
        from tests.cuda.test_ptx import assemble
        assemble(ptx, tmp_path)
