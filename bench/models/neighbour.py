"""A shared machine's other tenant, for `python -m bench.models --load`: multithreaded numpy
matmuls back to back. In a module of its own so a spawned process can import it (a function
of `__main__` cannot be found by a process started with `python -m`)."""


def busy(stop) -> None:
    import numpy as np
    a = np.random.default_rng(1).standard_normal((1024, 1024)).astype(np.float32)
    while not stop.is_set():
        a = (a @ a) * np.float32(1e-3)
