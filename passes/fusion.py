"""fusion: group producers with their consumers so each group runs as one kernel (XLA style).

Greedy, from the root upward: a consumer absorbs a producer when the result is still one
loop nest that computes every element of the producer at most about once:
- elementwise ops, broadcasts, reshapes, transposes, slices, pads, concatenations, iota,
  gathers and dynamic slices fuse freely; cheap ones are duplicated into several consumers,
  expensive ones (transcendentals, reductions, dots) never are, not even through a cheap
  op that is itself copied (so a dot + bias read by relu and by relu's gradient mask runs
  once, as XLA keeps one dot);
- a reduction fuses into its consumer only as a *row* reduction (its result broadcast along
  the consumer's leading dims), which codegen computes once per row before the row's loop
  (so softmax and layernorm are one kernel each);
- a dot fuses only with its elementwise epilogue (kOutput: bias, activation, scale);
- an expensive producer never fuses through an op that reads its elements many times
  (broadcast, pad, dot operand);
- a value another fusion reads stays materialized (it is copied, never owned), so every
  fusion's inputs are values computed before its root and fusion cannot create a cycle;
- a fusion grows past MAX_FUSED_INSTRUCTIONS instructions only where it cannot be cut
  cleanly (at an elementwise value of the output's shape): a long chain becomes several
  kernels, as LLVM's instruction selection and register allocation grow faster than
  linearly with the size of one loop body (see bench/compile_time.py).
The fused computations are printed as XLA prints them:
`fusion(...), kind=kLoop|kInput|kOutput, calls=%fused_computation.N`.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from flowjit.ir.builder import NameTable
from flowjit.ir.graph import clone_instructions
from flowjit.ir.module import Computation, Instruction, Module
from flowjit.ir.opcodes import Opcode
from flowjit.ir.ops import spec
from flowjit.ir.windows import runs_as_own_kernel

# Beyond about this many instructions in one loop body, LLVM's code generation time per
# instruction grows with the body; one extra write and read of an intermediate per this
# many ops costs little at run time.
MAX_FUSED_INSTRUCTIONS = 200


@dataclass
class Decision:
    producer: str
    consumer: str
    fused: bool
    reason: str


@dataclass
class Group:
    root: Instruction
    members: list[Instruction] = field(default_factory=list)  # root first
    duplicated: set = field(default_factory=set)  # ids of members also computed elsewhere

    def __post_init__(self):
        self._ids = {id(m) for m in self.members}

    def add(self, inst: Instruction) -> None:
        self.members.append(inst)
        self._ids.add(id(inst))

    def __contains__(self, inst: Instruction) -> bool:
        return id(inst) in self._ids


def _nonunit(dims) -> tuple:
    return tuple(d for d in dims if d != 1)


def _row_reduction(producer: Instruction, consumer: Instruction, root: Instruction) -> bool:
    """The reduction folds trailing dims, its result indexes the leading dims of the fusion's
    output, and `consumer` still works on one value per row (e.g. a keepdims reshape or a
    scale of the sum): codegen then computes it once per row."""
    (operand, *_) = producer.operands
    folded = tuple(producer.attrs["dimensions"])
    rank = producer.shape.rank
    trailing = folded == tuple(range(operand.shape.rank - len(folded), operand.shape.rank))
    return (trailing and not root.shape.is_tuple and root.shape.dims[:rank] ==
            producer.shape.dims and (
                _nonunit(consumer.shape.dims) == _nonunit(producer.shape.dims)
                or (consumer.opcode == "broadcast" and tuple(consumer.attrs["dimensions"])
                    == tuple(range(rank)))))


def _elementwise_path_to_root(inst: Instruction, group: Group, users: dict) -> bool:
    """Every use of `inst` inside the group is elementwise with inst's shape, up to root."""
    stack = [inst]
    while stack:
        node = stack.pop()
        for user in users.get(node, []):
            if user not in group:
                continue
            if not spec(user.opcode).elementwise or user.shape.dims != inst.shape.dims:
                return False
            stack.append(user)
    return True


def plan(comp: Computation) -> tuple[list[Group], list[Decision]]:
    """Fusion groups for one computation, and why each producer/consumer pair was (not)
    fused.

    Producers are considered latest first (a heap on program order), so when one comes up
    every one of its users has already joined the group or not: whether it would only be a
    copy (it has users elsewhere) is then known, not guessed from the order of discovery."""
    users = comp.users()
    position = {id(inst): n for n, inst in enumerate(comp.instructions)}
    grouped: dict[int, Group] = {}
    groups: list[Group] = []
    decisions: list[Decision] = []
    # Instructions that an already planned group reads as an input: they must stay
    # materialized, so another group may only copy (not own) them.
    read_by_groups: set[int] = set()
    for inst in reversed(comp.instructions):
        if (id(inst) in grouped or not spec(inst.opcode).fusible
                or inst.opcode is Opcode.CONSTANT):
            continue
        group = Group(inst, [inst])
        grouped[id(inst)] = group
        candidates: list = []
        queued: set[int] = set()

        def consider_operands(member: Instruction) -> None:
            for operand in member.operands:
                if operand not in group and id(operand) not in queued:
                    queued.add(id(operand))
                    heapq.heappush(candidates, (-position[id(operand)], id(operand), operand))
        consider_operands(inst)
        while candidates:
            _, _, producer = heapq.heappop(candidates)
            # Owned by this fusion only if every user is here and owned here too, and
            # no other group reads it; otherwise fusing makes a copy, and the original
            # stays available to the others.
            inside, outside = _split_users(producer, group, users)
            if len(group.members) >= MAX_FUSED_INSTRUCTIONS and _clean_cut(producer, inside,
                                                                          group):
                decisions.append(Decision(producer.name, inside[0].name, False,
                                          f"the fusion already holds {len(group.members)} "
                                          "instructions (MAX_FUSED_INSTRUCTIONS)"))
                continue
            shared = _shared(producer, group, inside, outside, read_by_groups)
            ok = True
            for consumer in inside:
                ok, reason = _can_fuse(producer, consumer, group, users, grouped, shared,
                                       outside)
                decisions.append(Decision(producer.name, consumer.name, ok, reason))
                if not ok:
                    break
            if ok:
                group.add(producer)
                if shared:
                    group.duplicated.add(id(producer))
                else:
                    grouped[id(producer)] = group
                consider_operands(producer)
        groups.append(group)
        read_by_groups.update(id(o) for m in group.members for o in m.operands
                              if o not in group)
    return [g for g in groups if len(g.members) > 1 or g.root.opcode == "dot"], decisions


def _clean_cut(producer: Instruction, inside: list, group: Group) -> bool:
    """Whether a full fusion may leave `producer` out: it is read only elementwise, at the
    output's shape, so its own kernel is a plain loop over the same index. (Cutting where
    concatenations or slices move indices made LLVM spend minutes on branchy kernels.)"""
    dims = group.root.shape.dims if not group.root.shape.is_tuple else None
    return (producer.shape.dims == dims and spec(producer.opcode).elementwise
            and all(spec(u.opcode).elementwise and u.shape.dims == dims for u in inside))


def _split_users(producer: Instruction, group: Group, users: dict) -> tuple[list, list]:
    """`producer`'s users in `group` and those outside it (computed once per producer: a
    broadcast constant may have thousands of users)."""
    inside, outside = [], []
    for user in users.get(producer, []):
        (inside if user in group else outside).append(user)
    return inside, outside


def _shared(producer: Instruction, group: Group, inside: list, outside: list,
            read_by_groups: set) -> str:
    """Why `producer` must stay available outside `group` ('' if the group may own it);
    `inside` and `outside` are its users in the group and not."""
    if outside:
        return f"{len(outside)} user(s) outside this fusion"
    if id(producer) in read_by_groups:
        return "its value read by another fusion"
    if any(id(u) in group.duplicated for u in inside):
        return "a user that is only a copy in this fusion"
    return ""


def _can_fuse(producer, consumer, group, users, grouped, shared,
              outside) -> tuple[bool, str]:
    op = producer.opcode
    if not spec(op).fusible:
        return False, f"{op} is not fusible (it runs as its own step)"
    if id(producer) in grouped:
        return False, "already the root or member of another fusion"
    expensive = spec(op).costly
    if expensive and shared:
        return False, f"{op} is expensive and has {shared} (it would be computed twice)"
    if op == "constant" and producer.shape.size > 1 and outside:
        return False, f"array constant of {producer.shape.size} elements shared elsewhere"
    if runs_as_own_kernel(producer):
        return False, ("a prefix scan or pooling reduce-window runs as its own kernel "
                       "(producers fuse into it, it does not fuse into consumers)")
    if op == "reduce":
        if not _row_reduction(producer, consumer, group.root):
            return False, ("reduction is not consumed as a row reduction along the leading "
                           f"dims of {group.root.shape}")
        return True, "row reduction computed once per row before the row's loop"
    if op == "dot":
        if group.root.shape.is_tuple or not _elementwise_path_to_root(producer, group, users):
            return False, ("dot fuses only with an elementwise epilogue of its own shape; "
                           f"this consumer is in a fusion rooted at {group.root.opcode} "
                           f"{group.root.shape}")
        if any(m.opcode in ("dot", "reduce") for m in group.members):
            return False, "the fusion already has a dot or reduction as its hero"
        return True, "elementwise epilogue fused into the dot's output (kOutput)"
    if (expensive and spec(consumer.opcode).rereads_operands
            and producer.shape.size < consumer.shape.size):
        factor = consumer.shape.size // max(producer.shape.size, 1)
        return False, (f"{consumer.opcode} reads each {op} result ~{factor}x: recomputing "
                       "it costs more than a buffer")
    if consumer.opcode == "dot" and producer.shape.size > 1:
        return False, "dot operands are read many times: kept in memory"
    if outside:
        keeper = next((u for u in outside if _never_fuses(producer, u)), None)
        if keeper is not None and producer.shape.size > 1:
            return False, (f"materialized anyway for {keeper.opcode} %{keeper.name}: read "
                           "from memory, not computed twice")
        return True, f"cheap {op}: duplicated into this fusion ({len(outside)} other user(s))"
    return True, f"{op} has no other users"


def _never_fuses(producer: Instruction, user: Instruction) -> bool:
    """Whether `user` needs `producer` in memory whatever the fusion pass decides: a dot
    reads its operands many times; ops that run as their own step read buffers."""
    if user.opcode == "dot":
        return True
    return not spec(user.opcode).fusible and user.opcode not in ("tuple", "get-tuple-element")


def _materialize(group: Group, position: dict, module: Module,
                 names: NameTable) -> Instruction:
    """The fusion instruction for `group` (its fused computation added to `module`); the
    caller puts it in place of the group's root. `position`: program order by id."""
    members = sorted(group.members, key=lambda m: position[id(m)])  # program order
    member_ids = {id(m) for m in members}
    params: list[Instruction] = list({id(o): o for m in members for o in m.operands
                                      if id(o) not in member_ids}.values())
    fused = Computation(names.fresh("fused_computation"))
    mapping: dict[int, Instruction] = {}
    for n, p in enumerate(params):
        param = Instruction(names.fresh("param"), "parameter", p.shape, attrs={"number": n})
        fused.instructions.append(param)
        mapping[id(p)] = param
    copies, mapping = clone_instructions(members, names, mapping)
    fused.instructions.extend(copies)
    fused.root = mapping[id(group.root)]
    module.add_computation(fused)
    opcodes = {m.opcode for m in members}
    kind = "kOutput" if "dot" in opcodes else "kInput" if "reduce" in opcodes else "kLoop"
    root = group.root
    return Instruction(names.fresh("fusion"), "fusion", root.shape, params,
                       {"kind": kind}, {"calls": fused}, metadata=root.metadata)


def _programs(module: Module) -> list[Computation]:
    """The entry and the bodies of loops and branches: what runs as kernels."""
    out = [module.entry]
    for comp in module.reachable_computations():
        for inst in comp.instructions:
            if inst.opcode == "while":
                out += [inst.calls["body"], inst.calls["condition"]]
            elif inst.opcode == "conditional":
                out += inst.called_computations()
    return list(dict.fromkeys(out))


def run(module: Module) -> bool:
    """Fuse producers into consumers: one kernel per group (kLoop/kInput/kOutput)."""
    names = NameTable.for_module(module)
    changed = False
    for comp in _programs(module):
        groups, _ = plan(comp)
        if not groups:
            continue
        # Each fusion takes its root's place and its uses, all in one sweep.
        position = {id(inst): n for n, inst in enumerate(comp.instructions)}
        fusions = {id(g.root): _materialize(g, position, module, names) for g in groups}
        comp.instructions = [fusions.get(id(i), i) for i in comp.instructions]
        for inst in comp.instructions:
            inst.operands = [fusions.get(id(o), o) for o in inst.operands]
        comp.root = fusions.get(id(comp.root), comp.root)
        comp.remove_unreachable()
        changed = True
    return changed


def explain_fusion(module: Module, fused_module: Module = None) -> str:
    """For each producer/consumer pair of `module` (before fusion) not fused, why; for each
    fusion of `fused_module` (default: `module`), its kind and the user source lines it
    holds."""
    lines = []
    for comp in _programs(fused_module or module):
        fusions = [i for i in comp.instructions if i.opcode == "fusion"]
        for f in fusions:
            fused = f.calls["calls"]
            where = sorted({i.source_line for i in fused.instructions if i.source_line})
            lines.append(f"%{f.name} ({f.attrs['kind']}, {len(fused.instructions)} "
                         f"instructions in %{fused.name}) holds: {', '.join(where) or '?'}")
    for comp in _programs(module):
        _, decisions = plan(comp)
        for d in decisions:
            if not d.fused:
                lines.append(f"not fused: %{d.producer} into %{d.consumer}: {d.reason}")
    return "\n".join(lines)
