"""A candidate's simulator arguments assembled from uniform exports instead of its own export.

Why: the fast oracle reads every candidate's grids, int8 weights and biases from the model the
quantizer exports for it, and on EDSR-baseline that export and its read-back cost more than the
simulation (about 2 of every 3 seconds per sensitivity drop, py-spy). But an op's grids and
constants follow from its own precision alone: activation ranges are calibrated once and do not
depend on bit width, each consumer reads its inputs on its own grid (the quantizer inserts the
requantize), and a bias's scale is its input's times its weights'. So the arguments of op i in
any policy are those of op i in the uniform model of op i's precision.

That is checked, not assumed: on mixed policies (layers alternately a8w8 and a16w8, the
complement, and alternate pairs) the assembled per-op signatures must equal those of the real
exports, op for op.
Where they do not (a graph where the quantizer ties ops across a precision boundary), every
candidate is exported as before and `reason` says why. Equal signatures mean the simulator runs
the very same computation, so assembled and exported candidates give bit-identical results.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from deploy.convert.fake_quant import OpArgs, Simulator
from deploy.convert.layer_map import MappedOp
from deploy.convert.policy import Policy


class ComposedArgs:
    """`op_args(policy)`: the simulator's per-op arguments of `policy`, assembled when `usable`."""

    def __init__(self, sim: Simulator, ops: Sequence[MappedOp], export: Callable[[Policy], bytes]):
        self.sim, self._export = sim, export
        layer_at = {o.index: o.layer for o in ops}
        #: per simulated op, the policy layer that owns it (None: the policy default's)
        self.layer_of_op = tuple(layer_at.get(i) for i in sim.op_index)
        self._uniform: dict[str, OpArgs] = {}
        self.usable: Optional[bool] = None  # None until checked
        self.reason = ""

    def _precisions(self, policy: Policy) -> list[str]:
        """Each simulated op's precision, as quantizer.build_recipe assigns it."""
        return [policy.precision_of(layer) if layer else policy.default for layer in self.layer_of_op]

    def _uniform_args(self, precision: str, policy: Policy) -> OpArgs:
        if precision not in self._uniform:
            uniform = Policy(policy.model, policy.scale, precision, (), policy.io_type)
            self._uniform[precision] = self.sim.op_args(self._export(uniform))
        return self._uniform[precision]

    def assemble(self, policy: Policy) -> OpArgs:
        args, sigs = [], []
        for i, p in enumerate(self._precisions(policy)):
            a, s = self._uniform_args(p, policy)
            args.append(a[i])
            sigs.append(s[i])
        return args, sigs

    def check(self, mixed: Sequence[Policy]) -> bool:
        """Assembled == exported, op for op, on each of `mixed` (see the module docstring)."""
        for policy in mixed:
            want = self.sim.op_args(self._export(policy))[1]
            got = self.assemble(policy)[1]
            bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
            if bad:
                op = self.sim.ops[bad[0]]
                self.reason = (f"{len(bad)} ops differ from the exported model's (first: op {bad[0]} "
                               f"{op.kind}, layer {self.layer_of_op[bad[0]]}); every candidate is exported")
                self.usable = False
                return False
        self.usable = True
        return True

    def op_args(self, policy: Policy, mixed: Callable[[], Sequence[Policy]]) -> Optional[OpArgs]:
        """The assembled arguments, or None where assembling is not exact for this graph (the
        caller exports). `mixed()` gives the check's policies, on first use only."""
        if self.usable is None:
            self.check(mixed())
        return self.assemble(policy) if self.usable else None
