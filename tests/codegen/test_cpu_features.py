"""Building for a chosen CPU feature set (`cpu_features`): AVX2 code on an AVX-512 machine,
never reused from a cache for the other set."""
import os
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit.codegen import compile_workers, llvm_target
from flowjit.codegen.cpu import host_target_description

HOST_HAS_AVX512 = bool(llvm.get_host_cpu_features().get("avx512f", False))


@pytest.fixture(autouse=True)
def _restore_feature_set():
    previous = flowjit.config.read("cpu_features")
    yield
    flowjit.config.update("cpu_features", previous)


def _vector_loop(x):
    return x * 3.0 + 1.0


X = np.linspace(-4, 4, 1 << 14).astype(np.float32)


def _assembly_under(feature_set: str) -> str:
    with flowjit.config.override("cpu_features", feature_set):
        return flowjit.jit(_vector_loop).lower(X).compile().executable.assembly


def test_avx2_code_has_no_512_bit_registers():
    assembly = _assembly_under("avx2")
    assert "zmm" not in assembly
    assert "ymm" in assembly       # still vectorized, 8 lanes


@pytest.mark.skipif(not HOST_HAS_AVX512, reason="the host has no AVX-512")
def test_host_code_uses_512_bit_registers_where_the_cpu_has_them():
    assert "zmm" in _assembly_under("host")


def test_the_avx2_feature_string_turns_off_every_avx512_feature():
    features = llvm_target.target_features("avx2").split(",")
    assert not [f for f in features if f.startswith("+avx512")]
    assert "+avx2" in features or not llvm.get_host_cpu_features().get("avx2", False)


def test_each_feature_set_gets_its_own_executable_and_the_same_results():
    f = flowjit.jit(lambda x: fnp.tanh(x) * fnp.exp(-x * x))
    want = np.tanh(X.astype(np.float64)) * np.exp(-X.astype(np.float64) ** 2)
    results, executables = {}, {}
    for feature_set in ("host", "avx2", "host"):
        flowjit.config.update("cpu_features", feature_set)
        results[feature_set] = np.asarray(f(X))
        executables.setdefault(feature_set, []).append(
            f.lower(X).compile().executable)
    host, avx2 = executables["host"], executables["avx2"]
    assert host[0] is host[1]                          # back to host: the cached one
    assert avx2[0] is not host[0]
    assert "zmm" not in avx2[0].assembly
    for got in results.values():
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_disk_cache_keys_each_feature_set_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWJIT_CACHE_DIR", str(tmp_path))
    descriptions = set()

    def compile_fresh(feature_set):
        flowjit.config.update("cpu_features", feature_set)
        descriptions.add(host_target_description())
        return flowjit.jit(_vector_loop).lower(X).compile().executable
    assert not compile_fresh("avx2").from_disk_cache
    host = compile_fresh("host")
    assert not host.from_disk_cache                    # not the avx2 entry
    again = compile_fresh("avx2")
    assert again.from_disk_cache and "zmm" not in again.assembly
    assert len(descriptions) == 2
    np.testing.assert_allclose(again(X)[0], X * 3 + 1)


def test_compile_workers_build_for_the_features_they_are_sent():
    compile_workers.start(1)
    text = str(flowjit.jit(_vector_loop).lower(X).compile().executable.llvm_ir)
    for feature_set in ("host", "avx2"):
        features = llvm_target.target_features(feature_set)
        (from_worker,) = compile_workers.compile_texts([text], 2, features)()
        if from_worker is None:
            pytest.skip("no compile worker could start here")
        assert from_worker == llvm_target.object_code(text, 2, features=features)


def test_the_option_is_read_as_jax_config_reads_its_own():
    flowjit.config.update("jax_cpu_features", " AVX2 ")
    assert flowjit.config.cpu_features == "avx2" == flowjit.config.read("cpu_features")


def test_an_unknown_feature_set_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"'avx9'.*host, avx2"):
        flowjit.config.update("cpu_features", "avx9")
    assert flowjit.config.read("cpu_features") in llvm_target.CPU_FEATURE_SETS


@pytest.mark.parametrize("value, ok", [("avx2", True), ("AVX2", True), ("avx9", False)])
def test_the_environment_variable_selects_the_set(value, ok):
    code = "import flowjit; print(flowjit.config.cpu_features)"
    env = dict(os.environ, FLOWJIT_CPU_FEATURES=value)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if ok:
        assert out.stdout.strip() == value.lower(), out.stderr
    else:
        assert out.returncode != 0
        assert "FLOWJIT_CPU_FEATURES='avx9'" in out.stderr and "host, avx2" in out.stderr
