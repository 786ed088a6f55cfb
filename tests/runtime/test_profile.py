"""Profile mode: the compiled program times each kernel and loop-state copy, inside loops
and branches too. Counts are checked against the trip counts written in the programs, the
values against numpy, and the times against the caller's wall clock."""
import subprocess
import sys

import numpy as np
import pytest

import flowjit
import flowjit.numpy as jnp
from flowjit import lax

F32 = np.float32


def recurrence(x, w, big):
    def step(h, _):
        h = jnp.tanh(h @ w + 1.0)
        return h, h.sum()
    h, sums = lax.scan(step, x, None, length=16)
    return h, sums, big @ big


def numpy_recurrence(x, w, big):
    h, sums = x.astype(np.float64), []
    for _ in range(16):
        h = np.tanh(h @ w + 1.0)
        sums.append(h.sum())
    return h, np.array(sums), big.astype(np.float64) @ big


@pytest.fixture
def args():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 16), dtype=F32), 0.2 * rng.standard_normal((16, 16), dtype=F32),
            rng.standard_normal((256, 256), dtype=F32))


def test_steps_inside_a_loop_are_counted_once_per_iteration(args):
    profile = flowjit.jit(recurrence).profile(*args, runs=3)
    body = [r for r in profile.rows if r.site.where.endswith("body")]
    condition = [r for r in profile.rows if r.site.where.endswith("condition")]
    entry = [r for r in profile.rows if r.site.where == "entry"]
    assert body and condition and entry
    assert all(r.calls == 16 for r in body)           # 16 iterations
    assert all(r.calls == 17 for r in condition)      # and the test that ends the loop
    assert all(r.calls == 1 for r in entry)
    assert any(r.site.what == "copy of loop state" for r in body)
    # Each step's source line is the user's.
    assert any("test_profile.py" in line for r in body for line in r.site.source_lines)


def test_times_add_up_to_at_most_the_run_and_name_the_big_product(args):
    profile = flowjit.jit(recurrence).profile(*args, runs=5)
    timed = sum(r.seconds for r in profile.rows)
    assert 0 < timed <= profile.run_seconds * 1.05
    # The 256x256x256 product (33 MFLOP) outweighs every 8x16x16 step of the loop.
    biggest = max(profile.rows, key=lambda r: r.seconds)
    assert biggest.site.where == "entry" and biggest.calls == 1
    assert set(profile.by_where()) == {r.site.where for r in profile.rows}
    text = str(profile)
    assert "whole run" in text and "while" in text


def test_a_profiled_program_computes_the_same_values(args):
    jitted = flowjit.jit(recurrence)
    jitted.profile(*args, runs=1)
    compiled = jitted.lower(*args).compile()
    outputs = compiled._profiling(*args)
    for got, want in zip(outputs, numpy_recurrence(*args)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_branches_are_labelled():
    def f(x, p):
        return lax.cond(p, lambda v: jnp.sin(v), lambda v: jnp.cos(v), x)
    x = np.linspace(0, 1, 64, dtype=F32)
    profile = flowjit.jit(f).profile(x, np.bool_(True), runs=4)
    taken = [r for r in profile.rows if r.site.where.startswith("branch 0")]
    untaken = [r for r in profile.rows if r.site.where.startswith("branch 1")]
    assert taken and all(r.calls == 1 for r in taken)
    assert untaken and all(r.calls == 0 for r in untaken)


def test_a_long_program_split_into_parts_is_profiled_whole():
    def chain(x):
        for k in range(150):
            x = jnp.sin(x) if k % 2 else x * 1.0001
        return x
    x = np.linspace(0, 1, 8, dtype=F32)
    profile = flowjit.jit(chain, opt_level=0).profile(x, runs=2)
    assert len(profile.rows) >= 150 and all(r.calls == 1 for r in profile.rows)


def test_the_command_line_prints_a_profile(tmp_path):
    source = tmp_path / "model.py"
    source.write_text("import flowjit.numpy as jnp\nfrom flowjit import lax\n"
                      "def f(x):\n    return lax.fori_loop(0, 5, lambda i, v: jnp.tanh(v), x)\n")
    result = subprocess.run([sys.executable, "-m", "flowjit.cli", "dump", f"{source}:f",
                             "--arg", "f32[64]", "--profile", "3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "body]" in line]
    assert lines and all(line.split()[2] == "5" for line in lines)


@pytest.mark.parametrize("runs", [0, -3, 2.5])
def test_a_run_count_below_one_is_a_clear_error(runs):
    f = flowjit.jit(lambda x: jnp.tanh(x))
    with pytest.raises(ValueError, match="runs must be a whole number of at least 1"):
        f.profile(np.ones(4, F32), runs=runs)


@pytest.mark.parametrize("runs", ["0", "-2", "many"])
def test_the_command_line_rejects_a_bad_run_count(runs, tmp_path):
    module = tmp_path / "m.hlo"
    module.write_text("HloModule m\nENTRY %main {\n  ROOT %x = f32[4] parameter(0)\n}\n")
    result = subprocess.run([sys.executable, "-m", "flowjit.cli", "run", str(module),
                             "--profile", runs], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "RUNS must be a whole number of at least 1" in result.stderr
    assert "Traceback" not in result.stderr
