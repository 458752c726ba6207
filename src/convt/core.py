"""The canonical transposed convolution: validation, lowering choice, bias."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from convt import lowering
from convt.spec import ConvTransposeSpec

Method = str  # "auto", a name from lowering.LOWERINGS, or "forward/backward"
METHODS: tuple[str, ...] = ("auto", *lowering.LOWERINGS)


# The platforms `jax.lax.platform_dependent` names, and the rules `choose_method` applies
# to each (any other platform gets the CPU's).
PLATFORM_RULES = {"cpu": "cpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}
GPU_BACKENDS = ("gpu", "cuda", "rocm")

# The largest output convt computes: a bigger one is refused before any work.
MAX_OUTPUT_BYTES = 2**40

COL2IM_LIMIT_BYTES = 48e6  # the largest col2im product tensor auto allows (see below)
PHASE_GEMM_LIMIT_BYTES = 24e6  # the largest channels-last windows auto's forward builds


def choose_method(
    spec: ConvTransposeSpec,
    weight_shape: tuple[int, ...],
    backend: str,
    input_shape: tuple[int, ...] | None = None,
) -> str:
    """The lowering ``method="auto"`` picks, by backend and shape: one name, or
    ``"forward/backward"`` when values and derivatives are fastest in different
    lowerings (`lowering.split`).

    On the CPU, by measurement (``benchmarks/bench.py``, results in
    docs/benchmarks.md). ``col2im`` wherever its products are the smaller im2col
    (`_im2col_elements`: at most 0.9x the phase windows, 0.25x with fewer than 8 output
    channels per group, whose adds are short), forward and backward, except for the
    stamps and groups below. Otherwise, for the forward: non-overlapping stamps
    (``kernel == stride``, ``dilation == 1``) are one matrix product (``matmul``);
    grouped layers a group-batched GEMM over tap windows (``phase_gemm``), depthwise
    channels-last ones a sum of shifted products (``tapsum``); unstrided layers
    ``lhs_dilated`` (a plain convolution); 2-D layers ``phase`` (XLA's stride-1
    convolution, which needs no windows); the others ``phase_gemm``, except
    channels-last ones with windows above ``PHASE_GEMM_LIMIT_BYTES`` (``phase``). For
    the derivatives: grouped layers and products above ``COL2IM_LIMIT_BYTES``
    (float32; the phase windows keep peak memory within 2x torch's on a large-spatial
    layer) ``phase_gemm`` (``matmul`` if that is the forward); unstrided layers
    ``lhs_dilated`` (XLA's convolution transposes well). On channels-first inputs
    the rest take ``phase_gemm``, whose windows there are contiguous slices of the
    input (depthwise layers too: 3x faster than ``tapsum``). On channels-last inputs
    depthwise layers take ``tapsum``, and the others ``col2im`` up to 1.5x the
    windows (3-D always), then ``phase_gemm``. The derivatives were timed with the
    values (as training computes them) and a cotangent that is an argument: a
    constant one let XLA fold the cotangent's im2col at compile time.
    ``input_shape`` (the input's, as laid out) sizes the im2cols; without it a
    16-wide image of batch 1 is assumed.

    On a GPU (``backend`` ``"gpu"``, ``"cuda"`` or ``"rocm"``) the layer runs the three
    convolutions torch's CUDA path runs (read from XLA:GPU's optimised HLO for an H100
    target, `benchmarks/accelerators.py`; not timed): non-overlapping stamps
    ``matmul`` (GEMMs); ungrouped, undilated layers ``adjoint`` (cuDNN backward-data
    forward, forward-convolution input gradient, backward-filter weight gradient); the
    others ``phase_conv/adjoint`` (the phase decomposition's stride-1 convolution
    forward, grouped and dilated as the layer is: XLA:GPU zero-stuffs the lhs-dilated
    form of these layers; ``adjoint``'s derivatives). The TPU's rules are in
    `_tpu_method`.

    On every platform, stamps with gaps between them (the dilated kernel shorter than
    the stride) take ``matmul``, whose program does not grow with the stride, and
    overlapping layers with more than `lowering.MAX_PHASES` stride phases skip the
    phase forms (``lhs_dilated``; ``adjoint`` on a GPU).
    """
    kernel = tuple(weight_shape[2:])
    nonoverlapping = all(k == s for k, s in zip(kernel, spec.stride)) and all(
        d == 1 for d in spec.dilation
    )
    if not nonoverlapping and lowering.stamps_apart(kernel, spec):
        return "matmul"  # gaps between the stamps: the phase forms would compute zeros
    if math.prod(spec.stride) > lowering.MAX_PHASES:  # too many for the phase forms
        return "adjoint" if backend in GPU_BACKENDS else "lhs_dilated"
    if backend in GPU_BACKENDS:
        if nonoverlapping:
            return "matmul"
        if spec.groups == 1 and all(d == 1 for d in spec.dilation):
            return "adjoint"
        return "phase_conv/adjoint"
    if backend == "tpu":
        return _tpu_method(spec, weight_shape, nonoverlapping)
    depthwise = spec.groups > 1 and weight_shape[0] == spec.groups
    channels_first = spec.layout == "channels_first"
    products, windows = _im2col_elements(spec, weight_shape, input_shape)
    # col2im's products are an im2col of the output: above ~48 MB (float32) they fell
    # off the caches (a 3-D decoder head's input gradient ran 20x slower)
    small = products * 4 <= COL2IM_LIMIT_BYTES
    # col2im's adds run along the output channels: with few of them (FSRCNN's 3) each
    # add is short, and the phase forms won unless col2im moved 4x fewer elements
    few_channels = weight_shape[1] < 8
    col2im_smaller = small and products <= (0.25 if few_channels else 0.9) * windows
    unstrided = all(s == 1 for s in spec.stride)
    if nonoverlapping:
        forward = "matmul"
    elif depthwise and not channels_first:
        forward = "tapsum"
    elif spec.groups > 1:
        forward = "phase_gemm"
    elif col2im_smaller:
        forward = "col2im"
    elif unstrided:
        forward = "lhs_dilated"
    elif spec.ndim == 2 or (not channels_first and windows * 4 > PHASE_GEMM_LIMIT_BYTES):
        forward = "phase"  # XLA's stride-1 convolution, which needs no windows
    else:
        forward = "phase_gemm"
    if depthwise and not channels_first:
        backward = "tapsum"
    elif spec.groups > 1 or not small:
        backward = "matmul" if forward == "matmul" else "phase_gemm"
    elif col2im_smaller:
        backward = "col2im"
    elif unstrided:  # XLA's plain convolution transposes well
        backward = "lhs_dilated"
    elif channels_first or (spec.ndim < 3 and products > 1.5 * windows):
        backward = "phase_gemm"
    else:
        backward = "col2im"
    return forward if forward == backward else f"{forward}/{backward}"


def _tpu_method(spec: ConvTransposeSpec, weight_shape, nonoverlapping: bool) -> str:
    """TPU: by the TPU compiler's own estimates (libtpu's ``optimal_seconds`` for the
    forward, input gradient and weight gradient apart, TPU v6e and v5e targets;
    ``benchmarks/accelerators.py``, tables in docs/accelerators.md). XLA:TPU's
    lhs-dilated convolution is the fastest forward on most layers. Non-overlapping
    stamps take ``matmul``'s GEMMs for the derivatives, and for the forward too unless
    they are 2-D with stride 2 (there the lhs-dilated forward was estimated up to 2.7x
    faster: Mask R-CNN's head). Ungrouped, undilated 1-D and 2-D layers take
    ``adjoint``'s derivatives (the weight gradient estimated up to 1.6x faster than
    the lhs-dilated form's, never slower); 3-D ones keep the lhs-dilated derivatives
    (adjoint's 1.4x slower on MONAI's layer). Depthwise layers take ``tapsum``'s
    products for the derivatives (``phase_conv``'s grouped weight gradient,
    ``adjoint``'s there, was estimated 11-30x slower); other grouped and dilated layers,
    none of them in the zoo, keep the lhs-dilated form (reasoned, not estimated)."""
    depthwise = spec.groups > 1 and weight_shape[0] == spec.groups
    if nonoverlapping:
        if spec.ndim == 2 and all(s == 2 for s in spec.stride):
            return "lhs_dilated/matmul"
        return "matmul"
    if depthwise:
        return "lhs_dilated/tapsum"
    if spec.groups > 1 or any(d > 1 for d in spec.dilation) or spec.ndim == 3:
        return "lhs_dilated"
    return "adjoint"


def _im2col_elements(spec, weight_shape, input_shape) -> tuple[float, float]:
    """Elements the two im2col forms move: ``col2im``'s products ``N X C_out prod(k)``,
    against the phase forms' input windows ``N Z C_in prod(width)`` (scaled by the
    zero taps they multiply when the stride's period does not divide the kernel) plus
    their re-laid-out weight, twice."""
    kernel = weight_shape[2:]
    c_in, c_out = weight_shape[0], weight_shape[1] * spec.groups
    if input_shape is None:
        batch, spatial = 1, (16,) * spec.ndim
    else:
        batch = input_shape[0]
        spatial = [input_shape[a] for a in spec.spatial_axes]
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


def _check_method(method: str, spec: ConvTransposeSpec, weight_shape) -> None:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    parts = method.split("/")
    if method != "auto" and (
        len(parts) > 2 or not all(part in lowering.LOWERINGS for part in parts)
    ):
        raise ValueError(
            f"method must be one of {METHODS} or 'forward/backward' (two lowering names: "
            f"values from the first, derivatives from the second), got {method!r}"
        )
    if method == "auto":
        return
    for part in parts:
        reason = lowering.LOWERINGS[part].refusal(spec, tuple(weight_shape))
        if reason is not None:
            raise ValueError(reason)


def validate(
    x_shape,
    w_shape,
    b_shape,
    spec: ConvTransposeSpec,
    *,
    framework: str | None = None,
    names: tuple[str, str, str, str] = ("input", "weight", "bias", "the crop"),
) -> None:
    """Raises ``ValueError`` unless the arrays fit the spec.

    Front-ends pass their ``framework`` and its parameter names for the input, weight,
    bias and padding, so the message speaks the user's convention.
    """
    xn, wn, bn, pn = names
    prefix = f"{framework}: " if framework else ""
    n = spec.ndim
    if len(x_shape) != n + 2:
        raise ValueError(
            f"{prefix}{xn} must have {n + 2} dimensions (batch, channels and {n} spatial) for "
            f"a {n}-D layer, got shape {tuple(x_shape)}"
        )
    if len(w_shape) != n + 2:
        raise ValueError(
            f"{prefix}{wn} must be {n + 2}-D (in_channels, out_channels // groups, "
            f"*kernel_size), got shape {tuple(w_shape)}"
        )
    c_in = x_shape[spec.channel_axis]
    if c_in % spec.groups:
        raise ValueError(f"{prefix}groups={spec.groups} must divide the {xn} channels ({c_in})")
    if w_shape[0] != c_in:
        raise ValueError(
            f"{prefix}{wn}.shape[0] ({w_shape[0]}) must equal the {xn} channels ({c_in})"
        )
    if any(k < 1 for k in w_shape[2:]) or w_shape[1] < 1:
        raise ValueError(f"{prefix}{wn} shape {tuple(w_shape)} has an empty axis")
    spatial = tuple(x_shape[a] for a in spec.spatial_axes)
    if any(m < 1 for m in spatial) or x_shape[0] < 0:
        raise ValueError(f"{prefix}{xn} shape {tuple(x_shape)} has an empty spatial axis")
    c_out = w_shape[1] * spec.groups
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"{prefix}{bn} must have shape ({c_out},), got {tuple(b_shape)}")
    out = spec.output_spatial_shape(spatial, w_shape[2:])
    if any(o < 1 for o in out):
        raise ValueError(
            f"{prefix}the output size would be {out} for an {xn} of spatial size {spatial}: "
            f"{pn} is too large (every size must be >= 1)"
        )


def reject_non_array(value: Any, name: str, prefix: str = "") -> None:
    """A ``TypeError`` naming the parameter for what is no array at all: ``None``, Python
    lists and other containers, strings (``prefix``: the operation or framework)."""
    if value is None or isinstance(value, (list, tuple, dict, set, str, bytes)):
        kind = "None" if value is None else f"a {type(value).__name__}"
        hint = "; convert it with jnp.asarray" if isinstance(value, (list, tuple)) else ""
        raise TypeError(
            f"{prefix}{name} must be an array (jax.Array or numpy.ndarray), got {kind}{hint}"
        )


def _check_output_bytes(shape, dtype, preferred_element_type) -> None:
    itemsize = jnp.dtype(preferred_element_type or dtype).itemsize
    size = math.prod(shape) * itemsize
    if size > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"conv_transpose: the output would have shape {tuple(shape)} ({size / 2**40:.3g} "
            f"TiB), more than convt computes ({MAX_OUTPUT_BYTES / 2**40:g} TiB): check the "
            "stride, the padding and the input size"
        )


def _promote(x, w, b):
    arrays = [x, w] if b is None else [x, w, b]
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise TypeError(f"transposed convolution needs floating-point arrays, got {dtype}")
    return [jnp.asarray(a, dtype) for a in arrays] + ([None] if b is None else [])


def conv_transpose(
    x: jax.Array,
    w: jax.Array,
    b: jax.Array | None = None,
    *,
    spec: ConvTransposeSpec,
    precision: Any = None,
    preferred_element_type: Any = None,
    method: Method = "auto",
) -> jax.Array:
    """Transposed convolution in the canonical spec.

    Args:
      x: ``(N, C_in, *spatial)`` (channels first) or ``(N, *spatial, C_in)``.
      w: ``(C_in, C_out // groups, *kernel)``.
      b: optional ``(C_out,)``.
      spec: a `ConvTransposeSpec` (static).
      precision: passed to ``lax.conv_general_dilated`` (static).
      preferred_element_type: accumulation/output dtype (static).
      method: ``"auto"`` or a lowering name from `LOWERINGS`
        (static). All give the same values; ``"auto"`` picks the fastest measured, and
        on the CPU multiplies bfloat16 and float16 operands in float32 (XLA's CPU GEMM
        is faster there), rounding the result once.

    Returns:
      ``spec.output_shape(x.shape, w.shape)``; the dtype follows JAX's promotion rules.
    """
    if not isinstance(spec, ConvTransposeSpec):
        raise TypeError(
            f"conv_transpose: spec must be a ConvTransposeSpec (e.g. "
            f"ConvTransposeSpec.create(ndim, stride=..., crop=...) or a front-end's to_spec), "
            f"got {type(spec).__name__}"
        )
    for name, value in (("x", x), ("w", w)):
        reject_non_array(value, name, "conv_transpose: ")
    return _conv_transpose(
        x,
        w,
        b,
        spec=spec,
        precision=precision,
        preferred_element_type=preferred_element_type,
        method=method,
    )


@functools.partial(
    jax.jit, static_argnames=("spec", "precision", "preferred_element_type", "method")
)
def _conv_transpose(x, w, b, *, spec, precision, preferred_element_type, method):
    x, w, b = _promote(x, w, b)
    validate(x.shape, w.shape, None if b is None else b.shape, spec)
    _check_output_bytes(spec.output_shape(x.shape, w.shape), x.dtype, preferred_element_type)
    _check_method(method, spec, w.shape)
    if method == "auto":
        y = _auto(
            x, w, spec=spec, precision=precision, preferred_element_type=preferred_element_type
        )
    else:
        y = lowering.lower(method)(x, w, spec, precision, preferred_element_type)
    if b is None:
        return y
    shape = [1] * y.ndim
    shape[spec.channel_axis] = -1
    return y + b.reshape(shape).astype(y.dtype)


class _Choice(NamedTuple):
    method: str
    widen: bool  # compute a 16-bit float layer in float32 (`_widen_on_cpu`)


def _auto(x, w, *, spec, precision, preferred_element_type):
    """``method="auto"``: each platform's choice, made when the program is lowered for
    that platform (`jax.lax.platform_dependent`), so that a program exported or compiled
    ahead of time for a GPU or a TPU from a CPU host gets that platform's lowering. Only
    the branch of the platform being lowered for reaches XLA."""
    choices = {
        platform: _Choice(
            choose_method(spec, w.shape, rules, x.shape),
            rules == "cpu" and _widen_on_cpu(x.dtype, preferred_element_type),
        )
        for platform, rules in PLATFORM_RULES.items()
    }

    def run(choice: _Choice, x, w):
        if not choice.widen:
            return lowering.lower(choice.method)(x, w, spec, precision, preferred_element_type)
        out_dtype = jnp.dtype(preferred_element_type or x.dtype)
        x, w = x.astype(jnp.float32), w.astype(jnp.float32)
        return lowering.lower(choice.method)(x, w, spec, precision, None).astype(out_dtype)

    if len(set(choices.values())) == 1:
        return run(choices["cpu"], x, w)
    branches = {platform: functools.partial(run, choice) for platform, choice in choices.items()}
    return jax.lax.platform_dependent(x, w, default=branches["cpu"], **branches)


def _widen_on_cpu(dtype, preferred_element_type) -> bool:
    """Whether ``"auto"`` computes a 16-bit float layer in float32 on the CPU: XLA's CPU
    backend runs half-precision GEMMs 15-20% slower than float32 ones (a 1024x1024
    GEMM: 255 against 291 GFLOP/s; 141 in another run) and converts every element of
    its half-precision adds and copies (the overlap-adds, the windows), so widening
    the operands once, computing in float32 and rounding the result once is faster
    (DCGAN 512->256 bfloat16, one run: forward 7.5 -> 5.5 ms, forward+backward 20.0
    -> 16.4 ms) and no less exact."""
    half = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
    wide = preferred_element_type is None or jnp.dtype(preferred_element_type) == jnp.float32
    return half and wide
