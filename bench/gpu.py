"""GPU benchmark, side by side in one run: fused elementwise (gelu) and softmax against the
device-to-device copy bandwidth measured now, fused (O2) against unfused (O0), and the MLP
training step against PyTorch eager when it is installed. Inputs stay on the device; every
call ends with a synchronize, so times are wall-clock medians.

    python -m bench.gpu            # full sizes
    python -m bench.gpu --small    # quick smoke run

Needs pycuda and a CUDA GPU; without them it says which is missing and exits.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import flowjit
from bench.fusion import gelu_chain, kernel_count, softmax
from bench.timing import format_table, median_time
from bench.train_mlp import BATCH, LR, SIZES, flowjit_step, make
from flowjit import tree
from flowjit.ir.parser import parse_module
from flowjit.passes import optimize


def gpu_executable(fn, args, opt_level: int = 2):
    """(CudaExecutable, device arguments, module) for `fn` traced at `args`."""
    from flowjit.runtime.cuda import CudaExecutable, device_put
    traced = flowjit.jit(fn).lower(*args).module
    module, _ = optimize(parse_module(traced.to_text()), opt_level=opt_level)
    executable = CudaExecutable(module, "cuda:0")
    plan = executable.program.plan
    leaves, _ = tree.flatten(args)
    on_device = [device_put(np.asarray(leaf, plan.shapes[slot].dtype.to_numpy()))
                 for leaf, slot in zip(leaves, plan.inputs)]
    return executable, on_device, module


def copy_bandwidth(device, nbytes: int) -> float:
    """Bytes per second (read + write) of a device-to-device copy, measured now."""
    driver = device.driver
    with device.active():
        source, target = driver.mem_alloc(nbytes), driver.mem_alloc(nbytes)

        def copy():
            driver.memcpy_dtod(target, source, nbytes)
            driver.Context.synchronize()
        seconds = median_time(copy, repeats=10)
    return 2 * nbytes / seconds


def bandwidth_rows(n: int, rows: int, cols: int, copy: float) -> list[list[str]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    m = rng.standard_normal((rows, cols)).astype(np.float32)
    table = []
    for name, fn, args, nbytes in [("gelu(x*a+b)", gelu_chain, (x, x * 0.5, x * 0.1), 16 * n),
                                   ("softmax", softmax, (m,), 2 * m.nbytes)]:
        times = {}
        for level in (0, 2):
            executable, on_device, module = gpu_executable(fn, args, level)
            times[level] = median_time(lambda: executable.run(*on_device), repeats=10)
            kernels = kernel_count(module)
            table.append([name, f"O{level}", str(kernels), f"{times[level] * 1e3:.3f}",
                          f"{nbytes / times[level] / 1e9:.0f}",
                          f"{nbytes / times[level] / copy:.0%}"])
        table[-1].append(f"{times[0] / times[2]:.2f}x")
        table[-2].append("")
    return table


def mlp_rows() -> list[list[str]]:
    params, x, y = make()
    executable, on_device, _ = gpu_executable(flowjit_step, (params, x, y))
    flowjit = median_time(lambda: executable.run(*on_device), repeats=20)
    rows = [["flowjit (cuda)", f"{flowjit * 1e3:.3f}", "1.00"]]
    try:
        import torch
    except ImportError:
        rows.append(["PyTorch eager", "not installed", "-"])
        return rows
    if not torch.cuda.is_available():
        rows.append(["PyTorch eager", "no CUDA in this torch", "-"])
        return rows
    tparams = [(torch.tensor(w, device="cuda", requires_grad=True),
                torch.tensor(b, device="cuda", requires_grad=True)) for w, b in params]
    tx = torch.tensor(x, device="cuda")
    ty = torch.tensor(y, device="cuda", dtype=torch.long)

    def torch_step():
        h = tx
        for w, b in tparams[:-1]:
            h = torch.relu(h @ w + b)
        w, b = tparams[-1]
        loss = torch.nn.functional.cross_entropy(h @ w + b, ty)
        grads = torch.autograd.grad(loss, [t for pair in tparams for t in pair])
        with torch.no_grad():
            new = [p - LR * g for p, g in zip([t for pair in tparams for t in pair], grads)]
        torch.cuda.synchronize()
        return new
    seconds = median_time(torch_step, repeats=20)
    rows.append(["PyTorch eager", f"{seconds * 1e3:.3f}", f"{seconds / flowjit:.2f}"])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="flowjit on a CUDA GPU: fused kernels "
                                     "vs copy bandwidth, MLP step vs PyTorch")
    parser.add_argument("--small", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args(argv)
    from flowjit.runtime.cuda import CudaUnavailableError, get_device
    try:
        device = get_device("cuda:0")
    except CudaUnavailableError as e:
        print(f"bench.gpu needs a CUDA GPU: {e}", file=sys.stderr)
        return 1
    n, rows, cols, copy_bytes = ((1 << 16, 256, 512, 1 << 22) if args.small
                                 else (1 << 24, 8192, 1024, 1 << 28))
    copy = copy_bandwidth(device, copy_bytes)
    name = device.device.name()
    print(f"{name} ({device.arch}): device-to-device copy {copy / 1e9:.0f} GB/s")
    print(format_table(["workload", "opt", "kernels", "ms", "GB/s", "of copy", "O0/O2"],
                       bandwidth_rows(n, rows, cols, copy)))
    print(f"\nMLP training step, batch {BATCH}, {'-'.join(map(str, SIZES))}, SGD:")
    print(format_table(["", "ms", "ratio"], mlp_rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
