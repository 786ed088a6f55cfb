"""The `flowjit` command line, driven as a user would (through its main())."""
import os

import numpy as np
import pytest

from flowjit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def test_dump_prints_traced_hlo(capsys):
    target = os.path.join(ROOT, "examples", "mlp.py") + ":predict"
    assert main(["dump", target, "--arg", "f32[16,8]", "--arg", "f32[8]",
                 "--arg", "f32[4,16]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("HloModule jit_predict")
    assert "dot(" in out and "maximum(" in out and "tanh(" in out
    assert "f32[4,8]" in out  # x @ w has the shape the arguments imply


def test_run_matches_numpy_softmax(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    np.savez(tmp_path / "in.npz", a0=x)
    assert main(["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz"), "--check"]) == 0
    got = np.load(tmp_path / "out.npz")["r0"]
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(got, e / e.sum(axis=-1, keepdims=True), rtol=1e-6)
    assert "max abs error vs reference" in capsys.readouterr().out


def test_run_names_a_missing_input(tmp_path):
    np.savez(tmp_path / "in.npz", b0=np.ones(3))
    with pytest.raises(SystemExit, match="a0"):
        main(["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs",
              str(tmp_path / "in.npz")])


def test_malformed_hlo_reports_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.hlo"
    bad.write_text("HloModule m\nENTRY e {\n  x = f32[3] parameter(0)\n  ROOT y = f32[3] nope(x)\n}\n")
    assert main(["run", str(bad)]) == 1
    assert "4:19" in capsys.readouterr().err


def test_help_is_there(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "a0, a1" in capsys.readouterr().out
