"""Run one function every way flowjit can: eagerly, by the reference evaluator on its traced
module, and compiled at O0 and O2; every way must give the same leaves."""
import numpy as np

import flowjit
from flowjit import tree
from flowjit.ir.parser import parse_module
from flowjit.ir.reference import evaluate
from flowjit.ir.verifier import verify


def lowered_module(f, *args):
    return flowjit.jit(f).lower(*args).module


def by_reference(f, *args):
    """The traced module (verified, and round-tripped through its text) run by ir.reference."""
    traced = flowjit.jit(f).lower(*args).traced
    module = traced.module
    verify(module)
    text = module.to_text()
    assert parse_module(text).to_text() == text
    leaves = [a for a in tree.flatten(args)[0]]
    out = evaluate(module, leaves)
    flat = list(out) if isinstance(out, tuple) else [out]
    return tree.unflatten(traced.out_tree, flat)


def every_way(f, *args):
    """(how, result) for eager, reference-on-the-traced-module, jit O0 and jit O2."""
    yield "eager", f(*args)
    yield "reference", by_reference(f, *args)
    for level in (0, 2):
        yield f"jit O{level}", flowjit.jit(f, opt_level=level)(*args)


def assert_same(expected, actual, how, rtol=1e-6, atol=1e-6):
    e_leaves, e_tree = tree.flatten(expected)
    a_leaves, a_tree = tree.flatten(actual)
    assert e_tree == a_tree, f"{how}: structure {a_tree} != {e_tree}"
    for e, a in zip(e_leaves, a_leaves):
        e, a = np.asarray(e), np.asarray(a)
        assert e.shape == a.shape, f"{how}: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=how)


def check(f, expected, *args, rtol=1e-6, atol=1e-6):
    for how, result in every_way(f, *args):
        assert_same(expected, result, how, rtol, atol)
