"""PTX for every kernel kind, assembled by `ptxas -arch=sm_90` (skipped, not passed, without
ptxas): hand-written cases, the JAX fixtures at O0 and O2, and traced functions."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.codegen.ptx import compile_ptx, ptx_for_module
from flowjit.codegen.ptx_target import arch_for
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize
from tests.cuda.cases import CASES, fixture_texts

needs_ptxas = pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas not on PATH")


# PTX system calls the driver provides (the device-side heap): external by design.
PTX_SYSTEM_CALLS = {"malloc", "free"}


def assemble(ptx: str, tmp_path, arch: str = "sm_90") -> None:
    """ptxas accepts the PTX; no call is left unresolved (libdevice was linked in) but the
    driver's system calls (the sort kernels' scratch comes from malloc)."""
    external = set(re.findall(r"\.extern \.func\s+(?:\([^)]*\)\s*)?(\w+)", ptx))
    assert external <= PTX_SYSTEM_CALLS, f"a libdevice call was not linked: {external}"
    path = tmp_path / "module.ptx"
    path.write_text(ptx)
    result = subprocess.run(["ptxas", f"-arch={arch}", str(path), "-o",
                             str(tmp_path / "module.cubin")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_ptxas
@pytest.mark.parametrize("name", sorted(CASES))
def test_case_assembles_with_its_kernel_kind(name, tmp_path):
    kind, text = CASES[name]
    program = compile_ptx(parse_module(text))
    assert kind in [k.kind for k in program.kernels]
    assemble(program.ptx, tmp_path)


@needs_ptxas
@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("name", sorted(fixture_texts()))
def test_fixture_assembles(name, opt_level, tmp_path):
    module, _ = optimize(parse_module(fixture_texts()[name]), opt_level=opt_level)
    assemble(ptx_for_module(module), tmp_path)


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_target_architecture(arch, tmp_path):
    ptx = ptx_for_module(parse_module(CASES["softmax"][1]), arch)
    assert f".target {arch}" in ptx
    assemble(ptx, tmp_path, arch)


def test_row_reduction_uses_shuffles_and_shared_memory():
    ptx = ptx_for_module(parse_module(CASES["softmax"][1]))
    assert "shfl.sync.down" in ptx and "shfl.sync.bfly" in ptx
    assert "bar.sync" in ptx and ".shared" in ptx
    assert ptx.count(".entry") == 1


def test_dot_is_tiled_in_shared_memory_with_its_epilogue():
    program = compile_ptx(parse_module(CASES["dot_epilogue"][1]))
    assert [k.kind for k in program.kernels] == ["dot"]
    assert program.kernels[0].block == (256, 1, 1)
    assert re.search(r"ld\.shared\.(f32|b32)", program.ptx)
    assert "max" in program.ptx  # the relu of the epilogue is in the same kernel


def test_transcendentals_call_libdevice():
    program = compile_ptx(parse_module(CASES["elementwise_transcendentals"][1]))
    calls = set(re.findall(r"@\"?(__nv_\w+)", program.llvm_ir))
    assert {"__nv_tanhf", "__nv_erff", "__nv_expf", "__nv_log1pf", "__nv_fmodf"} <= calls
    assert ".extern" not in program.ptx


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="sm_12"):
        compile_ptx(parse_module(CASES["softmax"][1]), "sm_12")


def test_arch_for_a_compute_capability():
    assert arch_for(8, 6) == "sm_86" and arch_for(8, 8) == "sm_87"
    assert arch_for(12, 0) == "sm_90"   # newer GPUs JIT-compile sm_90 PTX
    with pytest.raises(ValueError, match="older than sm_70"):
        arch_for(6, 1)


def test_while_and_conditional_are_host_steps():
    module, _ = optimize(parse_module(fixture_texts()["control_flow"]), opt_level=2)
    program = compile_ptx(module)
    kinds = [type(s).__name__ for s in program.steps]
    assert "Loop" in kinds and "Branch" in kinds


# --- traced functions -----------------------------------------------------------------------

def elementwise(x):
    return fnp.tanh(x * 2.0 + 1.0) + fnp.exp(-x) + flowjit.lax.erf(x)


def softmax(x):
    e = fnp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense(x, w):
    return fnp.maximum(x @ w + 1.0, 0.0)


def shapes_and_ints(x, i):
    return (x[i], fnp.pad(x, ((1, 0), (0, 2))), fnp.concatenate([x, x[::-1]]),
            (i * 7) // 3 % 5, x.astype(np.float16) * 2, fnp.sin(x.astype(np.float64)))


IDX = np.array([3, 0, 1])
TRACED = {
    "elementwise": (elementwise, [np.ones((8, 16), np.float32)]),
    "softmax": (softmax, [np.ones((8, 64), np.float32)]),
    "dot-epilogue": (dense, [np.ones((4, 8), np.float32), np.ones((8, 16), np.float32)]),
    "gather-pad-concat-int-f16-f64": (shapes_and_ints, [np.ones((4, 5), np.float32), IDX]),
}


@needs_ptxas
@pytest.mark.parametrize("name", sorted(TRACED))
def test_traced_function_assembles(name, tmp_path):
    fn, args = TRACED[name]
    module = flowjit.jit(fn).lower(*args).compile().module
    ptx = compile_ptx(module).ptx
    assert ".entry kernel_0" in ptx
    assemble(ptx, tmp_path)
