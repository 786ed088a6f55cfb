"""The `flowjit` command line, driven as a user would (through its main())."""
import os
import re

import numpy as np
import pytest

from flowjit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MLP = os.path.join(ROOT, "examples", "mlp.py")


def one_error_line(capsys) -> str:
    """The one line a usage error prints (and nothing else: no traceback, no usage text)."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and re.match(r"flowjit( \w+)?: error: ", lines[0]), captured.err
    assert "Traceback" not in captured.out
    return lines[0]


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


def test_run_names_a_missing_input(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", b0=np.ones(3))
    assert main(["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs",
                 str(tmp_path / "in.npz")]) == 2
    assert "no array 'a0'" in one_error_line(capsys)


def test_malformed_hlo_reports_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.hlo"
    bad.write_text("HloModule m\nENTRY e {\n  x = f32[3] parameter(0)\n  ROOT y = f32[3] nope(x)\n}\n")
    assert main(["run", str(bad)]) == 2
    assert "4:19" in one_error_line(capsys)


def test_help_is_there(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "a0, a1" in capsys.readouterr().out


# --- misuse: one line naming the problem, exit status 2 (issue 12, item 21) ---------------

@pytest.mark.parametrize("argv, piece", [
    (["dump", MLP + ":predict", "--arg", "..."], "bad --arg '...'"),      # README's elision
    (["dump", MLP + ":predict", "--arg", "f32[3,4]"], "takes 3 positional arguments (w, b, x)"),
    (["dump", MLP + ":predict", "--arg", "f99[3]"], "unknown element type 'f99'"),
    (["dump", MLP + ":predict", "--arg", "f32[-1]"], "dimensions are integers >= 0"),
    (["dump", MLP + ":predict", "--arg", "f32[99999999999999]"], "more than any machine"),
    (["dump", MLP + ":predict", "--arg", "__import__('os')"], "bad --arg"),
    (["dump", MLP + ":nothing", "--arg", "f32[2]"], "has no function 'nothing'"),
    (["dump", "/no/such/file.py:f"], "no such file"),
    (["dump", MLP], "expected FILE.py:FUNCTION"),
    (["dump", MLP + ":predict", "--arg", "f32[4,3]", "--arg", "f32[3]", "--arg", "f32[2,4]",
      "--after", "nope"], "no pass named 'nope' ran"),
    (["opt", os.path.join(FIXTURES, "softmax.hlo"), "--passes", "cse,fusoin"],
     "unknown pass 'fusoin'; did you mean 'fusion'?"),
    (["opt", os.path.join(FIXTURES, "softmax.hlo")], "give --passes"),
    (["opt"], "give an HLO file"),
    (["run", "/no/such/module.hlo"], "cannot read '/no/such/module.hlo'"),
    (["run", os.path.join(FIXTURES, "softmax.hlo")], "takes 1 parameters; pass --inputs"),
    (["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs", "/no/such.npz"],
     "cannot read '/no/such.npz'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["run", "m.hlo", "--opt-level", "7"], "invalid choice: 7"),
])
def test_misuse_is_one_line_and_exit_status_2(argv, piece, capsys):
    try:
        status = main(argv)
    except SystemExit as e:   # argparse's own errors leave through exit(2)
        status = e.code
    assert status == 2
    assert piece in one_error_line(capsys)


def test_run_rejects_an_input_of_the_wrong_shape(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", a0=np.ones((2, 2), np.float32))
    assert main(["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs",
                 str(tmp_path / "in.npz")]) == 2
    assert "a0 has shape (2, 2)" in one_error_line(capsys)


def test_run_refuses_an_unwritable_output(tmp_path, capsys):
    x = np.ones((4, 7), np.float32)
    np.savez(tmp_path / "in.npz", a0=x)
    assert main(["run", os.path.join(FIXTURES, "softmax.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "no" / "out.npz")]) == 2
    assert "cannot write" in one_error_line(capsys)


TWO_PARAMETERS_NUMBERED_0 = """HloModule m
ENTRY e {
  a = f32[3] parameter(0)
  b = f32[3] parameter(0)
  ROOT c = f32[3] add(a, b)
}
"""


def test_run_verifies_the_module_before_compiling(tmp_path, capsys):
    # Before: the duplicate parameter number reached the runtime (a segfault).
    path = tmp_path / "dup.hlo"
    path.write_text(TWO_PARAMETERS_NUMBERED_0)
    np.savez(tmp_path / "in.npz", a0=np.ones(3, np.float32), a1=np.ones(3, np.float32))
    assert main(["run", str(path), "--inputs", str(tmp_path / "in.npz")]) == 2
    assert "parameter numbers [0, 0]" in one_error_line(capsys)


@pytest.mark.parametrize("command", [["opt", "--passes", "cse"], ["run"]])
def test_opt_and_run_verify_the_module(tmp_path, capsys, command):
    path = tmp_path / "dup.hlo"
    path.write_text(TWO_PARAMETERS_NUMBERED_0)
    assert main(command[:1] + [str(path)] + command[1:]) == 2
    assert "parameter numbers" in one_error_line(capsys)


def test_run_rejects_a_tuple_entry_parameter(tmp_path, capsys):
    path = tmp_path / "t.hlo"
    path.write_text("HloModule m\nENTRY e {\n  t = (f32[2], f32[2]) parameter(0)\n"
                    "  ROOT x = f32[2] get-tuple-element(t), index=0\n}\n")
    assert main(["run", str(path)]) == 2
    assert "tuple shape" in one_error_line(capsys)


def test_opt_runs_the_named_passes(capsys):
    assert main(["opt", os.path.join(FIXTURES, "softmax.hlo"), "--passes", "fusion"]) == 0
    assert " fusion(" in capsys.readouterr().out


def test_dump_takes_pytree_arguments(capsys):
    # mlp(params, x) takes a list of (w, b) pairs: x @ w0 + b0 -> relu -> @ w1 + b1.
    assert main(["dump", MLP + ":mlp", "--arg", "[(f32[8,4], f32[4]), (f32[4,2], f32[2])]",
                 "--arg", "f32[3,8]"]) == 0
    out = capsys.readouterr().out
    assert "f32[8,4] parameter(" in out and "f32[4,2] parameter(" in out
    assert "f32[3,2]" in out   # the result's shape, as numpy would give it


def test_dump_takes_a_dict_and_an_args_file(tmp_path, capsys):
    source = tmp_path / "model.py"
    source.write_text("def f(p, x):\n    return x @ p['w'] + p['b']\n")
    args = tmp_path / "args.txt"
    args.write_text("({'w': f32[3,5], 'b': f32[5]},\n f32[2,3])\n")
    assert main(["dump", f"{source}:f", "--args-file", str(args)]) == 0
    by_arg = capsys.readouterr().out
    assert main(["dump", f"{source}:f", "--arg", "{'w': f32[3,5], 'b': f32[5]}",
                 "--arg", "f32[2,3]"]) == 0
    assert capsys.readouterr().out == by_arg
    assert "f32[2,5]" in by_arg and "f32[3,5] parameter(" in by_arg
