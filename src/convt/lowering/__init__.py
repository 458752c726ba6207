"""Lowerings of the canonical spec to XLA.

Every function here computes exactly the same result, without bias:

* `lhs_dilated()` -- the reference (the canonical spec's definition): one lhs-dilated
  ``lax.conv_general_dilated`` with the kernel regrouped and flipped.
* `phase()` -- the sub-pixel decomposition: output positions with the same residue
  modulo the stride receive only the kernel taps of that residue. All phases share one
  stride-1 convolution (each with its own taps; phases whose inputs start at other
  offsets read shifted rows of its output), interleaved by depth-to-space. Its weight
  gradient is computed as a GEMM (see `phase()`).
* `phase_conv()` -- the same convolution, with the derivatives JAX gives it (convolutions).
* `phase_gemm()` -- the same decomposition as one group-batched matrix product
  over the taps' shifted windows (a small im2col; on channels-first inputs each window
  a contiguous slice of the flattened padded image).
* `matmul()` -- one matrix product and a depth-to-space. Where the dilated kernel is
  within the stride (``kernel == stride`` in most models) the stamps do not overlap:
  each input pixel's stamp is a column of the product. Where they overlap, the product
  of a few shifted copies of the input (`stamp_widths`: the strides a stamp spans)
  with the kernel cut into stride-long blocks gives the output block by block, however
  many taps.
* `col2im()` -- the same decomposition with the product first: one GEMM of the input
  with every tap, then each phase adds its taps' shifted products (a col2im).
* `tapsum()` -- depthwise layers (one input channel per group): the phase
  decomposition evaluated as a sum of shifted elementwise products, which XLA's CPU
  backend runs far faster than its grouped convolution.
* `tapsum_adjoint()` -- `tapsum`'s values, with derivatives as the adjoint of the
  depthwise strided correlation: strided windows of the cotangent times the weight
  (input gradient), and one reduction per tap (weight gradient).
* `adjoint()` -- the reference's values, with derivatives as the adjoint of a strided
  convolution: the input gradient that convolution, the weight gradient its own weight
  gradient (the three convolutions cuDNN runs for torch on a GPU).
* `split()` -- any two of them: values from one, derivatives from the other
  (``method="phase_gemm/col2im"``).

Each lowering is one module (``_phase.py``, ...) holding its function and one
`Lowering` record: its values, its tangent rules and the layers it applies to. `split`,
`convt.core` and `LOWERINGS` (the registry: name -> record) ask the record; a new
lowering is one module and one line of `LOWERINGS`. The helpers the lowerings share are
in ``_xla.py`` (XLA's convolution, reshapes, crops) and ``_plan.py`` (the phase
decomposition's plan).

Arrays: ``x`` is ``(N, C_in, *spatial)`` or ``(N, *spatial, C_in)`` as the spec's layout
says; ``w`` is canonical, ``(C_in, C_out // groups, *kernel)``. Inputs are validated by
`core`; nothing here checks them again.
"""

from __future__ import annotations

from convt.lowering._adjoint import ADJOINT, adjoint
from convt.lowering._col2im import COL2IM, col2im
from convt.lowering._lhs_dilated import LHS_DILATED, lhs_dilated
from convt.lowering._matmul import MATMUL, matmul, stamp_widths, stamps_apart
from convt.lowering._phase import PHASE, PHASE_CONV, phase, phase_conv
from convt.lowering._phase_gemm import PHASE_GEMM, phase_gemm
from convt.lowering._record import MAX_PHASES, Lowering, Tangent, Values
from convt.lowering._record import split as split_records
from convt.lowering._tapsum import TAPSUM, TAPSUM_ADJOINT, tapsum, tapsum_adjoint
from convt.lowering._xla import crop_axes, dimension_numbers, regroup_kernel

__all__ = [
    "LOWERINGS",
    "MAX_PHASES",
    "PHASE_LOWERINGS",
    "Lowering",
    "Tangent",
    "Values",
    "adjoint",
    "col2im",
    "crop_axes",
    "dimension_numbers",
    "lhs_dilated",
    "lower",
    "matmul",
    "phase",
    "phase_conv",
    "phase_gemm",
    "regroup_kernel",
    "split",
    "stamp_widths",
    "stamps_apart",
    "tapsum",
    "tapsum_adjoint",
]

# The registry, in the order of the docs and of ``convt.METHODS``.
LOWERINGS: dict[str, Lowering] = {
    record.name: record
    for record in (
        LHS_DILATED,
        PHASE,
        PHASE_CONV,
        PHASE_GEMM,
        COL2IM,
        MATMUL,
        TAPSUM,
        TAPSUM_ADJOINT,
        ADJOINT,
    )
}
# The lowerings that work stride phase by stride phase (at most MAX_PHASES phases).
PHASE_LOWERINGS = tuple(name for name, record in LOWERINGS.items() if record.phased)


def split(forward: str, backward: str) -> Values:
    """A lowering computing values with lowering ``forward`` and derivatives with
    ``backward``'s tangent rules (see `Lowering` and ``_record.split``): every lowering
    computes the same bilinear map, so any pair is exact."""
    return split_records(LOWERINGS[forward], LOWERINGS[backward])


def lower(method: str) -> Values:
    """The function for ``method``: a name from `LOWERINGS`, or ``"forward/backward"``
    (values from one lowering, derivatives from another; see `split`)."""
    forward, _, backward = method.partition("/")
    if not backward or backward == forward:
        return LOWERINGS[forward]
    return split(forward, backward)
