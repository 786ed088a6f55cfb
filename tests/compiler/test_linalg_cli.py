"""JAX-printed decompositions through `flowjit run`, as a user runs them: outputs match the
ones JAX recorded (tests/fixtures/NAME.npz); a custom call flowjit cannot run is a one-line
error."""
import os

import numpy as np
import pytest

from flowjit.cli import main
from tests.compiler.test_cli import FIXTURES, one_error_line

NAMES = ["linalg_cholesky", "linalg_solve", "linalg_inv", "linalg_det", "linalg_qr",
         "linalg_eigh", "linalg_svd", "linalg_triangular_solve", "linalg_lstsq",
         "gaussian_loglik_grad"]


@pytest.mark.parametrize("name", NAMES)
def test_flowjit_run_matches_jax(name, tmp_path):
    with np.load(os.path.join(FIXTURES, f"{name}.npz")) as data:
        args = [data[k] for k in sorted(data.files) if k.startswith("arg")]
        outs = [data[f"out{k}"] for k in range(sum(f.startswith("out") for f in data.files))]
    np.savez(tmp_path / "in.npz", **{f"a{k}": a for k, a in enumerate(args)})
    assert main(["run", os.path.join(FIXTURES, f"{name}.hlo"), "--inputs",
                 str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as got:
        for k, want in enumerate(outs):
            np.testing.assert_allclose(got[f"r{k}"], want, rtol=2e-5, atol=2e-6,
                                       err_msg=f"{name} output {k}")


def test_an_unknown_custom_call_is_a_one_line_error(tmp_path, capsys):
    module = tmp_path / "m.hlo"
    module.write_text('HloModule m\n\nENTRY %main {\n  %x = f32[2] parameter(0)\n'
                      '  ROOT %y = f32[2] custom-call(%x), custom_call_target="my_kernel"\n}\n')
    np.savez(tmp_path / "in.npz", a0=np.ones(2, np.float32))
    assert main(["run", str(module), "--inputs", str(tmp_path / "in.npz")]) == 2
    assert "'my_kernel' is not one flowjit runs" in one_error_line(capsys)
