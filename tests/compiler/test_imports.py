"""Every public name of flowjit works as the first thing a program touches."""
import subprocess
import sys

_PROBE = """
import importlib, sys
import flowjit
names = sorted(flowjit._EXPORTS)
failed = []
for name in names:
    for module in [m for m in sys.modules if m == "flowjit" or m.startswith("flowjit.")]:
        del sys.modules[module]      # a fresh interpreter's view, without a new process
    fresh = importlib.import_module("flowjit")
    try:
        getattr(fresh, name)
    except Exception as error:   # an import cycle shows up as ImportError/AttributeError
        failed.append(f"{name}: {type(error).__name__}: {error}")
for module_name in ["flowjit.numpy", "flowjit.lax", "flowjit.nn", "flowjit.random",
                    "flowjit.scipy.linalg", "flowjit.numpy.linalg", "flowjit.tree_util"]:
    for module in [m for m in sys.modules if m == "flowjit" or m.startswith("flowjit.")]:
        del sys.modules[module]
    try:
        importlib.import_module(module_name)
    except Exception as error:
        failed.append(f"import {module_name}: {type(error).__name__}: {error}")
print("\\n".join(failed) or "ok")
"""


def test_each_public_name_imports_first_in_a_fresh_process():
    # `import flowjit; flowjit.grad` once met a half-initialized flowjit.ad (ad imports
    # flowjit.numpy, which reaches lax and windows, which imported ad at load time).
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
