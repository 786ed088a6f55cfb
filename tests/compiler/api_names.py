"""Which commonly used jax.numpy / jax.lax / jax.nn / jax.random names flowjit has, and
whether their signatures are compatible with the installed JAX's.

    python -m tests.compiler.api_names          # rewrite docs/api_coverage.md

tests/compiler/test_api_coverage.py checks that the committed table is current.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib
from dataclasses import dataclass

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api_coverage.md"

# The names a user of each module is most likely to reach for (issue 15's survey).
COMMON = {
    "numpy": """abs absolute add all allclose amax amin any arange arccos arccosh arcsin
        arcsinh arctan arctan2 arctanh argmax argmin argsort around array array_split asarray
        astype atleast_1d atleast_2d average bincount broadcast_arrays broadcast_to cbrt ceil
        clip concatenate copysign corrcoef cos cosh count_nonzero cov cross cumprod cumsum
        deg2rad degrees diag diagonal diff divide dot dstack einsum empty equal exp exp2
        expand_dims expm1 eye flip fliplr flipud floor floor_divide fmax fmin fmod full
        full_like greater greater_equal histogram hsplit hstack hypot identity inner interp
        isclose isfinite isin isinf isnan kron less less_equal linspace log log10 log1p log2
        logaddexp logical_and logical_not logical_or logical_xor logspace matmul max maximum
        mean median meshgrid min minimum mod moveaxis multiply nan_to_num nanargmax nanargmin
        nancumsum nanmax nanmean nanmin nanprod nanstd nansum nanvar negative nonzero
        not_equal ones ones_like outer pad percentile power prod ptp put_along_axis quantile
        rad2deg radians ravel reciprocal remainder repeat reshape roll rot90 round searchsorted
        sign signbit sin sinc sinh sort split sqrt square squeeze stack std subtract sum
        swapaxes take take_along_axis tan tanh tensordot tile trace transpose trapezoid tril
        triu true_divide unique var vdot vsplit vstack where zeros zeros_like linalg.cholesky
        linalg.det linalg.eigh linalg.eigvalsh linalg.inv linalg.lstsq linalg.matrix_power
        linalg.multi_dot linalg.norm linalg.pinv linalg.qr linalg.slogdet linalg.solve
        linalg.svd""",
    "lax": """abs acos acosh add argmax argmin asin asinh associative_scan atan atan2 atanh
        batch_matmul bitcast_convert_type broadcast_in_dim cbrt clamp concatenate cond
        conv_general_dilated conv_transpose convert_element_type cos cosh cummax cumsum digamma
        div dot_general dynamic_index_in_dim dynamic_slice dynamic_slice_in_dim
        dynamic_update_slice dynamic_update_slice_in_dim erf erf_inv erfc exp expand_dims
        fori_loop gather index_in_dim integer_pow iota lgamma log logistic map max min mul neg
        pad pow reduce reduce_and reduce_max reduce_min reduce_or reduce_prod reduce_sum
        reduce_window rem reshape rev rsqrt scan scatter scatter_add select sin sinh slice
        slice_in_dim sort sqrt square squeeze stop_gradient sub switch tan tanh top_k
        transpose while_loop""",
    "nn": """celu dot_product_attention elu gelu glu hard_sigmoid hard_silu hard_swish
        hard_tanh leaky_relu log_sigmoid log_softmax logsumexp mish one_hot relu relu6 selu
        sigmoid silu soft_sign softmax softplus standardize swish""",
    "random": """PRNGKey bernoulli beta bits categorical choice dirichlet exponential fold_in
        gamma gumbel key laplace logistic multivariate_normal normal permutation poisson
        randint split truncated_normal uniform""",
    "tree_util": """register_dataclass register_pytree_node register_pytree_node_class
        tree_flatten tree_leaves tree_map tree_structure tree_unflatten""",
}

# Parameters JAX has that a flowjit function may leave out: sharding and placement (one
# device per executable here), `out=` (which JAX itself only accepts as None).
IGNORED_PARAMETERS = {"out", "out_sharding", "sharding", "device"}


@dataclass(frozen=True)
class Row:
    module: str
    name: str
    exists: bool
    signature: str   # "same", "compatible", "differs: ...", or "" when it does not exist


def _lookup(root, dotted: str):
    obj = root
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _parameters(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None


def compare_signatures(ours, theirs) -> str:
    """"same" when the parameters' names and kinds agree; "compatible" when flowjit takes
    every argument JAX takes the same way (leaving out only IGNORED_PARAMETERS, or taking
    *args / **kwargs for them); otherwise "differs: " and what is missing or misplaced."""
    p_ours, p_theirs = _parameters(ours), _parameters(theirs)
    if p_ours is None or p_theirs is None:
        return "compatible"   # a class or builtin on one side: nothing to compare
    if [(p.name, p.kind) for p in p_ours.values()] == \
            [(p.name, p.kind) for p in p_theirs.values()]:
        return "same"
    kinds = {p.kind for p in p_ours.values()}
    takes_any_keyword = inspect.Parameter.VAR_KEYWORD in kinds
    takes_any_positional = inspect.Parameter.VAR_POSITIONAL in kinds
    ours_positional = [p.name for p in p_ours.values()
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    problems = []
    position = 0
    for p in p_theirs.values():
        if p.name in IGNORED_PARAMETERS or p.name.startswith("_"):
            continue
        if p.kind is p.VAR_POSITIONAL:
            if not takes_any_positional:
                problems.append(f"*{p.name}")
            continue
        if p.kind is p.VAR_KEYWORD:
            if not takes_any_keyword:
                problems.append(f"**{p.name}")
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if position < len(ours_positional) and (ours_positional[position] == p.name
                                                    or p.kind is p.POSITIONAL_ONLY):
                position += 1
                continue
            if takes_any_positional:
                continue
            problems.append(p.name if p.name not in p_ours else f"{p.name} (position)")
            continue
        if p.name not in p_ours and not takes_any_keyword:   # keyword-only
            problems.append(p.name)
    return "compatible" if not problems else "differs: " + ", ".join(problems)


def rows() -> list[Row]:
    """One row per name of COMMON, against the installed JAX (needed) and flowjit."""
    out = []
    for module, names in COMMON.items():
        jax_module = importlib.import_module(f"jax.{module}")
        ours_module = importlib.import_module(f"flowjit.{module}")
        for name in sorted(names.split()):
            theirs = _lookup(jax_module, name)
            ours = _lookup(ours_module, name)
            if theirs is None:
                continue   # not in this JAX: not counted
            signature = "" if ours is None else compare_signatures(ours, theirs)
            out.append(Row(module, name, ours is not None, signature))
    return out


def render(table: list[Row]) -> str:
    import jax
    lines = ["# API coverage: flowjit against JAX's commonly used names", "",
             f"Generated by `python -m tests.compiler.api_names` against jax {jax.__version__}; "
             "`tests/compiler/test_api_coverage.py` checks it is current. *same*: the "
             "parameters' names and kinds agree; *compatible*: flowjit takes every argument "
             "JAX takes (sharding and `out=` aside); *differs*: what flowjit lacks.", ""]
    total = len(table)
    present = sum(r.exists for r in table)
    lines.append(f"**{present} of {total}** names exist ({100 * present / total:.0f}%).")
    lines.append("")
    lines.append("| module | exist | of | signatures same or compatible |")
    lines.append("| --- | --- | --- | --- |")
    for module in COMMON:
        mine = [r for r in table if r.module == module]
        good = sum(r.signature in ("same", "compatible") for r in mine)
        lines.append(f"| jax.{module} | {sum(r.exists for r in mine)} | {len(mine)} | {good} |")
    for module in COMMON:
        lines += ["", f"## jax.{module}", "", "| name | in flowjit | signature |",
                  "| --- | --- | --- |"]
        for r in table:
            if r.module == module:
                lines.append(f"| `{r.name}` | {'yes' if r.exists else '**no**'} | "
                             f"{r.signature} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render(rows()))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
