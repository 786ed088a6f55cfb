"""flowjit's main demo: compile a small model, print its IR, time the first and second call.

    python examples/demo.py
"""
import statistics
import time
import timeit

import numpy as np

import flowjit
import flowjit.numpy as fnp


@flowjit.jit
def predict(w, b, x):
    return fnp.tanh(x @ w + b).sum(axis=-1)


def median_time(fn, repeats: int = 20) -> float:
    """Median seconds of one call of `fn`, after one untimed call."""
    fn()
    return statistics.median(timeit.repeat(fn, number=1, repeat=repeats))


def main() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((784, 128)).astype(np.float32) * 0.05
    b = rng.standard_normal(128).astype(np.float32)
    x = rng.standard_normal((256, 784)).astype(np.float32)

    print("== HLO of predict, as traced ==")
    print(predict.lower(w, b, x).as_text())

    start = time.perf_counter()
    y = predict(w, b, x)
    first = time.perf_counter() - start
    start = time.perf_counter()
    y = predict(w, b, x)
    second = time.perf_counter() - start

    expected = np.tanh(x.astype(np.float64) @ w + b).sum(axis=-1)
    error = float(np.max(np.abs(np.asarray(y) - expected)))
    compiled = predict.lower(w, b, x).compile()
    print("== after optimization ==")
    print(compiled.as_text())
    print(f"first call (trace + compile + run): {first * 1e3:8.1f} ms")
    print(f"second call (cached):               {second * 1e3:8.3f} ms")
    ours = median_time(lambda: predict(w, b, x))
    theirs = median_time(lambda: np.tanh(x @ w + b).sum(axis=-1))
    print(f"median of 20 more calls:            {ours * 1e3:8.3f} ms")
    print(f"numpy, same computation, median:    {theirs * 1e3:8.3f} ms")
    print(f"max abs error vs numpy float64:     {error:.2e}")
    print(f"traces: {predict.trace_count} (one per signature: lower() and calls share it)")
    print("eager (outside jit):", fnp.exp(np.arange(3.0)))


if __name__ == "__main__":
    main()
