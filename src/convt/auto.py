"""``method="auto"``: the rules, as one table.

The layer's features are computed once (`features`); each platform (``"cpu"``,
``"gpu"``, ``"tpu"``) has one tuple of `Rule` per direction (``"forward"``: the values;
``"backward"``: the derivatives), and the first rule whose condition holds names the
lowering. When the two directions name different lowerings, ``auto`` runs the pair
``"forward/backward"`` (`convt.lowering.split`). Each rule says why, and where the
measurement behind it is. docs/lowerings.md prints `RULES` (`rules_markdown`,
written there by ``tools/docs_tables.py``; a test checks they agree).

Thresholds are sized in float32 elements (`SIZING_BYTES`): the limits are on what the
im2cols move, measured on the CPU (``benchmarks/bench.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

from convt.lowering import MAX_PHASES, stamp_widths, stamps_apart
from convt.spec import ConvTransposeSpec

__all__ = [
    "COL2IM_LIMIT_BYTES",
    "COL2IM_RATIO",
    "COL2IM_RATIO_FEW_CHANNELS",
    "COL2IM_WINDOWS_RATIO_BACKWARD",
    "CPU_MANY_TAPS",
    "FEW_CHANNELS",
    "GPU_BACKENDS",
    "MAX_TAPS",
    "MAX_STAMP_STRIDES",
    "PHASE_GEMM_LIMIT_BYTES",
    "PLATFORM_RULES",
    "RULES",
    "Features",
    "Rule",
    "choose",
    "features",
    "rules_markdown",
]

Platform = Literal["cpu", "gpu", "tpu"]
Direction = Literal["forward", "backward"]

# The platforms `jax.lax.platform_dependent` names, and the rules each gets (any other
# platform gets the CPU's).
PLATFORM_RULES: dict[str, Platform] = {"cpu": "cpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}
GPU_BACKENDS = ("gpu", "cuda", "rocm")

SIZING_BYTES = 4  # the byte limits below count float32 elements
COL2IM_LIMIT_BYTES = 48e6  # the largest col2im product tensor
PHASE_GEMM_LIMIT_BYTES = 24e6  # the largest channels-last windows phase_gemm's forward builds
FEW_CHANNELS = 8  # output channels per group below which col2im's adds are short
COL2IM_RATIO = 0.9  # col2im when its products are at most this times the phase windows
COL2IM_RATIO_FEW_CHANNELS = 0.25  # the same, with fewer than FEW_CHANNELS output channels
COL2IM_WINDOWS_RATIO_BACKWARD = 1.5  # channels-last 1-D/2-D: col2im's backward up to this
MAX_TAPS = 128  # above, the forms that trace every tap compile for seconds (CPU)
MAX_STAMP_STRIDES = 4  # the most shifted input copies (strides a stamp spans) matmul takes


class Features(NamedTuple):
    """What the rules read of a layer (`features`)."""

    ndim: int
    nonoverlapping: bool  # kernel == stride, no dilation: stamps side by side
    gaps: bool  # the dilated kernel shorter than the stride somewhere, stamps apart
    too_many_phases: bool  # prod(stride) > lowering.MAX_PHASES
    many_taps: bool  # prod(kernel) > MAX_TAPS
    stamp_strides: int  # prod(stamp_widths): the strides a stamp spans, all axes
    grouped: bool
    depthwise: bool  # C_in == groups > 1
    dilated: bool
    channels_first: bool
    unstrided: bool
    single: bool  # a batch of one (also when the input's shape is not given)
    stride_2_in_2d: bool
    small: bool  # col2im's products within COL2IM_LIMIT_BYTES
    col2im_smaller: bool  # ... and the smaller im2col (COL2IM_RATIO, ..._FEW_CHANNELS)
    large_windows: bool  # the phase windows above PHASE_GEMM_LIMIT_BYTES
    products_over_windows: bool  # products > COL2IM_WINDOWS_RATIO_BACKWARD x windows


def im2col_elements(
    spec: ConvTransposeSpec, weight_shape: Sequence[int], input_shape: Sequence[int] | None
) -> tuple[float, float]:
    """Elements the two im2col forms move: ``col2im``'s products ``N X C_out prod(k)``,
    against the phase forms' input windows ``N Z C_in prod(width)`` (scaled by the
    zero taps they multiply when the stride's period does not divide the kernel) plus
    their re-laid-out weight, twice. Without ``input_shape`` a 16-wide image of batch 1
    is assumed."""
    kernel = weight_shape[2:]
    c_in, c_out = weight_shape[0], weight_shape[1] * spec.groups
    if input_shape is None:
        batch, spatial = 1, (16,) * spec.ndim
    else:
        batch = input_shape[0]
        spatial = tuple(input_shape[a] for a in spec.spatial_axes)
    width, padded = [], []
    for k, s, d in zip(kernel, spec.stride, spec.dilation):
        period = s // math.gcd(s, d)
        width.append(-(-k // period))
        padded.append(width[-1] * s)
    windows = batch * math.prod(n + w - 1 for n, w in zip(spatial, width)) * c_in
    waste = math.prod(padded) / math.prod(kernel)
    products = batch * math.prod(spatial) * c_out * math.prod(kernel)
    relaid = c_in * weight_shape[1] * math.prod(padded)
    return products, windows * math.prod(width) * waste + 2 * relaid


def features(
    spec: ConvTransposeSpec,
    weight_shape: Sequence[int],
    input_shape: Sequence[int] | None = None,
) -> Features:
    """The layer's `Features` (``input_shape``: the input's, as laid out)."""
    kernel = tuple(weight_shape[2:])
    undilated = all(d == 1 for d in spec.dilation)
    nonoverlapping = undilated and all(k == s for k, s in zip(kernel, spec.stride))
    products, windows = im2col_elements(spec, weight_shape, input_shape)
    small = products * SIZING_BYTES <= COL2IM_LIMIT_BYTES
    ratio = COL2IM_RATIO_FEW_CHANNELS if weight_shape[1] < FEW_CHANNELS else COL2IM_RATIO
    return Features(
        ndim=spec.ndim,
        nonoverlapping=nonoverlapping,
        gaps=not nonoverlapping and stamps_apart(kernel, spec),
        too_many_phases=math.prod(spec.stride) > MAX_PHASES,
        many_taps=math.prod(kernel) > MAX_TAPS,
        stamp_strides=math.prod(stamp_widths(kernel, spec)),
        grouped=spec.groups > 1,
        depthwise=spec.groups > 1 and weight_shape[0] == spec.groups,
        dilated=not undilated,
        channels_first=spec.layout == "channels_first",
        unstrided=all(s == 1 for s in spec.stride),
        single=input_shape is None or input_shape[0] == 1,
        stride_2_in_2d=spec.ndim == 2 and all(s == 2 for s in spec.stride),
        small=small,
        col2im_smaller=small and products <= ratio * windows,
        large_windows=windows * SIZING_BYTES > PHASE_GEMM_LIMIT_BYTES,
        products_over_windows=products > COL2IM_WINDOWS_RATIO_BACKWARD * windows,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    """``method`` when ``when(features)`` holds (``condition``: the same, in words)."""

    condition: str
    method: str
    when: Callable[[Features], bool]
    reason: str
    source: str


def _always(f: Features) -> bool:
    return True


CPU_SOURCE = "CPU timings: benchmarks/bench.py, docs/benchmarks.md"
GPU_SOURCE = (
    "XLA:GPU's HLO for an H100 target: benchmarks/accelerators.py gpu, docs/accelerators.md"
)
TPU_SOURCE = "libtpu's estimates, v5e and v6e: benchmarks/accelerators.py tpu, docs/accelerators.md"
TRACE_SOURCE = "trace size: tests/test_lowering.py::test_large_strides_trace_in_bounded_work"

_GAPS = Rule(
    condition="stamps apart, with gaps (dilated kernel < stride on some axis)",
    method="matmul",
    when=lambda f: f.gaps,
    reason="the phase forms would compute the zeros, and trace once per phase",
    source=TRACE_SOURCE,
)


def _too_many_phases(method: str) -> Rule:
    return Rule(
        condition=f"more than {MAX_PHASES} stride phases",
        method=method,
        when=lambda f: f.too_many_phases,
        reason="the phase forms' programs grow with the phases (refused beyond)",
        source=TRACE_SOURCE,
    )


TAPS_SOURCE = "CPU timings and compile times: benchmarks/many_taps.py, docs/benchmarks.md"
# first in both CPU directions after the phase count; benchmarks/many_taps.py times them
# against what the rules after them would pick
CPU_MANY_TAPS = (
    Rule(
        condition=f"more than {MAX_TAPS} taps, unstrided",
        method="lhs_dilated",
        when=lambda f: f.many_taps and f.unstrided,
        reason="one convolution, where the other forms trace every tap (2-D depthwise k31: "
        "compile 0.22 s against tapsum's 46, 311 ms against 224; 2-D 16->16 k15: 0.21 s "
        "against 4.2, 38 ms against 94)",
        source=TAPS_SOURCE,
    ),
    Rule(
        condition=f"1-D, more than {MAX_TAPS} taps, a stamp within {MAX_STAMP_STRIDES} strides",
        method="matmul",
        when=lambda f: f.ndim == 1 and f.many_taps and f.stamp_strides <= MAX_STAMP_STRIDES,
        reason="one GEMM of 2-4 shifted copies of the input, where the phase forms trace "
        "every tap (64->32 k512 s256: compile 0.18 s against 8.7, 91 ms against 280; "
        "depthwise k256 s128: 0.23 s against 9.3; iSTFT 514->1 k512 s128: 0.18 s against "
        "col2im's 10, but 16-25 ms against 10)",
        source=TAPS_SOURCE,
    ),
)

_CPU_FORWARD = (
    _GAPS,
    _too_many_phases("lhs_dilated"),
    *CPU_MANY_TAPS,
    Rule(
        condition="kernel == stride",
        method="matmul",
        when=lambda f: f.nonoverlapping,
        reason="one GEMM",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="depthwise",
        method="tapsum",
        when=lambda f: f.depthwise,
        reason="XLA's CPU grouped convolution is slow; shifted products are not (channels "
        "first: contiguous windows, no re-layout; Mimi 0.33 ms against phase_gemm's 1.66)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="grouped",
        method="phase_gemm",
        when=lambda f: f.grouped,
        reason="a group-batched GEMM beats XLA's CPU grouped convolution",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="col2im's products the smaller im2col, and small",
        method="col2im",
        when=lambda f: f.col2im_smaller,
        reason="many channels over a small image: the GEMM dominates",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="unstrided",
        method="lhs_dilated",
        when=lambda f: f.unstrided,
        reason="a plain convolution",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="2-D, or channels last with large windows",
        method="phase",
        when=lambda f: f.ndim == 2 or (not f.channels_first and f.large_windows),
        reason="XLA's stride-1 convolution needs no windows",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="otherwise",
        method="phase_gemm",
        when=_always,
        reason="one GEMM over small windows",
        source=CPU_SOURCE,
    ),
)

_CPU_BACKWARD = (
    _GAPS,
    _too_many_phases("lhs_dilated"),
    *CPU_MANY_TAPS,
    Rule(
        condition="depthwise, channels first, 1-D or unstrided",
        method="tapsum_adjoint",
        when=lambda f: f.depthwise and f.channels_first and (f.ndim == 1 or f.unstrided),
        reason="the cotangent's strided windows times the weight, and one reduction per tap "
        "(Mimi 0.62 ms against tapsum/phase_gemm's 1.06, Kokoro 0.78 against 1.47, 2-D "
        "unstrided 2.05 against tapsum's 7.3; 2-D strided, phase_gemm's weight gradient "
        "won: 9.9 ms against 24)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="depthwise, 1-D, channels last, a batch of one",
        method="tapsum_adjoint",
        when=lambda f: f.depthwise and f.ndim == 1 and not f.channels_first and f.single,
        reason="tapsum's transposes compile slowly for one 1-D sequence (15 layers: "
        "2.0-5.5x faster, Kokoro channels last 2.09 ms against 7.36; from a batch of 2, "
        "13 layers: tapsum's 1.3-3.4x the faster; 2-D, tapsum's won at batch 1 too)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="depthwise, channels last or unstrided",
        method="tapsum",
        when=lambda f: f.depthwise and (not f.channels_first or f.unstrided),
        reason="its transposes are products too (channels first and strided, phase_gemm's "
        "input gradient won: Mimi 0.47 ms against 8.5)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="kernel == stride, grouped or col2im's products not small",
        method="matmul",
        when=lambda f: f.nonoverlapping and (f.grouped or not f.small),
        reason="GEMMs",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="kernel == stride",
        method="phase_gemm",
        when=lambda f: f.nonoverlapping,
        reason="one tap per phase: its GEMMs over the windows beat the cotangent's im2col "
        "(SAM 256->64 k2 s2 12.3 ms against col2im's 16.6, three runs)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="grouped, or col2im's products not small",
        method="phase_gemm",
        when=lambda f: f.grouped or not f.small,
        reason="grouped: the group-batched GEMM; large products fell off the caches (a 3-D "
        "head's input gradient 20x slower with col2im)",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="col2im's products the smaller im2col",
        method="col2im",
        when=lambda f: f.col2im_smaller,
        reason="the cotangent's im2col and two GEMMs move the least",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="unstrided",
        method="lhs_dilated",
        when=lambda f: f.unstrided,
        reason="XLA's plain convolution transposes well",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="channels first, or 1-D/2-D with products above 1.5x the windows",
        method="phase_gemm",
        when=lambda f: f.channels_first or (f.ndim < 3 and f.products_over_windows),
        reason="on channels-first inputs the windows are contiguous slices",
        source=CPU_SOURCE,
    ),
    Rule(
        condition="otherwise",
        method="col2im",
        when=_always,
        reason="channels last: col2im kept winning",
        source=CPU_SOURCE,
    ),
)

_GPU_KERNEL_IS_STRIDE = Rule(
    condition="kernel == stride",
    method="matmul",
    when=lambda f: f.nonoverlapping,
    reason="GEMMs",
    source=GPU_SOURCE,
)
_GPU_FORWARD = (
    _GAPS,
    _too_many_phases("adjoint"),
    _GPU_KERNEL_IS_STRIDE,
    Rule(
        condition="ungrouped, undilated",
        method="adjoint",
        when=lambda f: not f.grouped and not f.dilated,
        reason="cuDNN's backward-data convolution",
        source=GPU_SOURCE,
    ),
    Rule(
        condition="otherwise (grouped or dilated)",
        method="phase_conv",
        when=_always,
        reason="XLA:GPU zero-stuffs these layers' lhs-dilated form; the phase "
        "convolution is cuDNN's",
        source=GPU_SOURCE,
    ),
)
_GPU_BACKWARD = (
    _GAPS,
    _too_many_phases("adjoint"),
    _GPU_KERNEL_IS_STRIDE,
    Rule(
        condition="otherwise",
        method="adjoint",
        when=_always,
        reason="cuDNN forward (input gradient) and backward-filter (weight gradient) convolutions",
        source=GPU_SOURCE,
    ),
)

_TPU_FORWARD = (
    _GAPS,
    _too_many_phases("lhs_dilated"),
    Rule(
        condition="kernel == stride, 2-D, stride 2",
        method="lhs_dilated",
        when=lambda f: f.nonoverlapping and f.stride_2_in_2d,
        reason="estimated up to 2.7x faster than matmul's GEMMs (Mask R-CNN's head)",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="kernel == stride",
        method="matmul",
        when=lambda f: f.nonoverlapping,
        reason="GEMMs",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="grouped, dilated or 3-D",
        method="lhs_dilated",
        when=lambda f: f.grouped or f.dilated or f.ndim == 3,
        reason="XLA:TPU's lhs-dilated convolution does not zero-stuff: the fastest forward",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="otherwise",
        method="adjoint",
        when=_always,
        reason="adjoint's values are the lhs-dilated convolution",
        source=TPU_SOURCE,
    ),
)
_TPU_BACKWARD = (
    _GAPS,
    _too_many_phases("lhs_dilated"),
    Rule(
        condition="kernel == stride",
        method="matmul",
        when=lambda f: f.nonoverlapping,
        reason="GEMMs",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="depthwise",
        method="tapsum",
        when=lambda f: f.depthwise,
        reason="the grouped weight gradient of phase_conv/adjoint estimated 11-30x slower",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="grouped, dilated or 3-D",
        method="lhs_dilated",
        when=lambda f: f.grouped or f.dilated or f.ndim == 3,
        reason="adjoint's weight gradient 1.4x slower on MONAI's 3-D layer (grouped, dilated: "
        "reasoned, none in the zoo)",
        source=TPU_SOURCE,
    ),
    Rule(
        condition="otherwise",
        method="adjoint",
        when=_always,
        reason="the weight gradient estimated up to 1.6x faster than the lhs-dilated form's",
        source=TPU_SOURCE,
    ),
)

RULES: dict[Platform, dict[Direction, tuple[Rule, ...]]] = {
    "cpu": {"forward": _CPU_FORWARD, "backward": _CPU_BACKWARD},
    "gpu": {"forward": _GPU_FORWARD, "backward": _GPU_BACKWARD},
    "tpu": {"forward": _TPU_FORWARD, "backward": _TPU_BACKWARD},
}


def _platform(backend: str) -> Platform:
    if backend in GPU_BACKENDS:
        return "gpu"
    return "tpu" if backend == "tpu" else "cpu"


def first_rule(rules: Sequence[Rule], layer: Features) -> Rule:
    """The first of ``rules`` whose condition holds (every table ends in one that always
    does)."""
    return next(rule for rule in rules if rule.when(layer))


def choose(
    spec: ConvTransposeSpec,
    weight_shape: Sequence[int],
    backend: str,
    input_shape: Sequence[int] | None = None,
) -> str:
    """The lowering ``method="auto"`` runs on ``backend`` (see `RULES`)."""
    layer = features(spec, weight_shape, input_shape)
    rules = RULES[_platform(backend)]
    forward = first_rule(rules["forward"], layer).method
    backward = first_rule(rules["backward"], layer).method
    return forward if forward == backward else f"{forward}/{backward}"


def rules_markdown() -> str:
    """`RULES` as the markdown tables of docs/lowerings.md."""
    lines = []
    for platform, directions in RULES.items():
        for direction, rules in directions.items():
            lines += [
                f"**{platform.upper()}, {direction}** (first match)",
                "",
                "| condition | lowering | why | measured by |",
                "| --- | --- | --- | --- |",
                *(f"| {r.condition} | `{r.method}` | {r.reason} | {r.source} |" for r in rules),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
