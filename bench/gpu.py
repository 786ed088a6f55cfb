"""GPU benchmark: fused elementwise and softmax vs the device-to-device copy bandwidth
measured in the same run. Needs pycuda and a CUDA GPU; says so and exits otherwise.

    python -m bench.gpu
"""
import sys
import time

import numpy as np

import compiler
from bench.fusion import gelu_chain, softmax


def main() -> int:
    from runtime.cuda import CudaUnavailableError, _cuda
    try:
        driver = _cuda()
    except CudaUnavailableError as e:
        print(f"bench.gpu: {e}")
        return 0
    n = 1 << 24
    src = driver.mem_alloc(4 * n)
    dst = driver.mem_alloc(4 * n)
    driver.memcpy_dtod(dst, src, 4 * n)
    driver.Context.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        driver.memcpy_dtod(dst, src, 4 * n)
    driver.Context.synchronize()
    bandwidth = 2 * 4 * n * 20 / (time.perf_counter() - start)
    print(f"device-to-device copy: {bandwidth / 1e9:.0f} GB/s")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    m = rng.standard_normal((4096, 1024)).astype(np.float32)
    for name, fn, args, nbytes in [("gelu(x*a+b)", gelu_chain, (x, x, x), 16 * n),
                                   ("softmax", softmax, (m,), 2 * m.nbytes)]:
        f = compiler.jit(fn, device="cuda")
        f(*args)
        start = time.perf_counter()
        for _ in range(10):
            f(*args)
        seconds = (time.perf_counter() - start) / 10
        print(f"{name}: {seconds * 1e3:.2f} ms (includes host transfers), "
              f"{nbytes / seconds / bandwidth:.0%} of copy bandwidth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
