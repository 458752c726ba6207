"""The GPU's lowering, checked on its lowered StableHLO (runs on the CPU; the optimised
HLO XLA:GPU makes of the zoo is checked in test_accelerators.py where the CUDA plugin is
installed).

XLA's GPU convolution rewriter hands an lhs-dilated convolution to cuDNN as a
backward-data convolution only when the kernel operand is a ``reverse`` over every
spatial axis, the window strides are 1, the padding is non-negative, there is no kernel
(rhs) dilation and ``feature_group_count == 1``; otherwise it materialises the
zero-stuffed input. Every lhs-dilated convolution ``method="auto"`` emits for a GPU must
meet all five, and no gradient may keep a base dilation.
"""

import functools
import itertools
import re

import jax
import jax.numpy as jnp
import pytest

import convt
from convt import ConvTransposeSpec
from convt.lowering import stamps_apart

CONV = re.compile(
    r"(%\S+) = stablehlo\.convolution\((%\S+), (%\S+)\).*?window = \{(.*?)\}.*?"
    r"feature_group_count = (\d+)"
)
WINDOW_FIELD = re.compile(r"(\w+) = (\[[^=]*?\])(?:,|$)")


def _ints(text):
    return [int(v) for v in re.findall(r"-?\d+", text)]


def _functions(module: str) -> dict[str, list[str]]:
    bodies, name = {}, None
    for line in module.splitlines():
        m = re.match(r"\s*func\.func (?:public|private) @(\S+)\(", line)
        if m:
            name = m.group(1)
            bodies[name] = []
        elif name:
            bodies[name].append(line.strip())
    return bodies


def _defining(body, value):
    return next((line for line in body if line.startswith(f"{value} = ")), None)


def _is_full_reverse(bodies, body, value, spatial_axes) -> bool:
    """``value`` is a reverse over ``spatial_axes``, directly or as a called function's
    result."""
    line = _defining(body, value)
    if line is None:
        return False
    m = re.match(rf"{re.escape(value)} = stablehlo\.reverse \S+, dims = (\[.*?\])", line)
    if m:
        return sorted(_ints(m.group(1))) == sorted(spatial_axes)
    m = re.match(rf"{re.escape(value)} = call @(\S+)\(", line)
    if m:
        callee = bodies[m.group(1)]
        returned = next(ln for ln in callee if ln.startswith("return ")).split()[1]
        return _is_full_reverse(bodies, callee, returned, spatial_axes)
    return False


def lhs_dilated_convolutions(module: str):
    """Every convolution with an lhs dilation: (window fields, groups, full reverse?)."""
    bodies = _functions(module)
    found = []
    for body in bodies.values():
        for line in body:
            m = CONV.search(line)
            if not m:
                continue
            _, _, rhs, window, groups = m.groups()
            fields = {k: _ints(v) for k, v in WINDOW_FIELD.findall(window)}
            if max(fields.get("lhs_dilate", [1])) == 1:
                continue
            kernel_dims = re.search(r"dim_numbers = \[.*?\]x\[(.*?)\]", line).group(1).split(", ")
            spatial_axes = [i for i, d in enumerate(kernel_dims) if d not in ("o", "i")]
            found.append((fields, int(groups), _is_full_reverse(bodies, body, rhs, spatial_axes)))
    return found


CASES = [
    # (x shape, w shape, spec)
    *[
        (
            (2, 3, *[5] * n),
            (3, 4, *[k] * n),
            ConvTransposeSpec(
                stride=(s,) * n,
                dilation=(1,) * n,
                crop=((lo, hi),) * n,
                groups=1,
                layout="channels_first",
            ),
        )
        for n, k, s, (lo, hi) in itertools.product(
            (1, 2, 3), (1, 3, 4), (1, 2, 3), ((0, 0), (1, 0), (5, 4), (-2, 3), (2, -1))
        )
    ],
    (
        (2, 6, 6, 4),
        (4, 2, 3, 3),
        ConvTransposeSpec(
            stride=(2, 2), dilation=(1, 1), crop=((4, 3), (0, 0)), groups=1, layout="channels_last"
        ),
    ),
    (
        (2, 4, 6, 6),
        (4, 2, 3, 3),
        ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((1, 0), (1, 0)), groups=2),
    ),
    (
        (2, 4, 6, 6),
        (4, 1, 3, 3),
        ConvTransposeSpec(stride=(2, 2), dilation=(1, 1), crop=((1, 0), (1, 0)), groups=4),
    ),
    (
        (2, 3, 6, 6),
        (3, 2, 3, 3),
        ConvTransposeSpec(stride=(2, 2), dilation=(2, 1), crop=((1, 0), (1, 0))),
    ),
    ((2, 3, 7), (3, 2, 3), ConvTransposeSpec(stride=(3,), dilation=(2,), crop=((6, 0),))),
]


def _gpu_programs(x_shape, w_shape, spec, method):
    """The forward and the two gradients, each alone, lowered to StableHLO text."""
    f = functools.partial(convt.conv_transpose, spec=spec, method=method)
    x, w = jnp.ones(x_shape), jnp.ones(w_shape)
    g = jnp.ones(spec.output_shape(x_shape, w_shape))
    programs = {
        "forward": (f, (x, w)),
        "input gradient": (lambda x, w, g: jax.vjp(lambda x: f(x, w), x)[1](g)[0], (x, w, g)),
        "weight gradient": (lambda x, w, g: jax.vjp(lambda w: f(x, w), w)[1](g)[0], (x, w, g)),
    }
    return {name: jax.jit(p).lower(*args).as_text() for name, (p, args) in programs.items()}


@pytest.mark.parametrize("x_shape, w_shape, spec", CASES)
def test_gpu_default_meets_cudnn_conditions(x_shape, w_shape, spec):
    """The GPU's choice: the forward's lhs-dilated convolution (if any) meets cuDNN's
    backward-data conditions; grouped and dilated layers have none; no gradient keeps
    a base dilation (the weight gradient JAX derives from the lhs-dilated form does,
    and XLA:GPU runs it as a convolution whose window is the whole image)."""
    if min(spec.output_spatial_shape([x_shape[a] for a in spec.spatial_axes], w_shape[2:])) < 1:
        pytest.skip("crop leaves no output")
    method = convt.choose_method(spec, w_shape, "gpu")
    programs = _gpu_programs(x_shape, w_shape, spec, method)
    convs = lhs_dilated_convolutions(programs["forward"])
    if stamps_apart(w_shape[2:], spec):
        assert method == "matmul"
    elif spec.groups > 1 or max(spec.dilation) > 1:
        assert method == "phase_conv/adjoint" and convs == []  # no lhs-dilated convolution at all
    else:
        assert method == "adjoint"
        assert len(convs) == (1 if max(spec.stride) > 1 else 0)
    for fields, groups, full_reverse in convs:
        assert fields["stride"] == [1] * spec.ndim
        assert min(fields["pad"]) >= 0, fields
        assert fields.get("rhs_dilate", [1] * spec.ndim) == [1] * spec.ndim
        assert groups == 1 and full_reverse
    assert lhs_dilated_convolutions(programs["input gradient"]) == []
    assert lhs_dilated_convolutions(programs["weight gradient"]) == []


def test_the_default_lowering_weight_gradient_keeps_base_dilation():
    """The checker sees what ``adjoint`` removes: ``lhs_dilated``'s weight gradient is
    a convolution with a base (lhs) dilation."""
    spec = ConvTransposeSpec.create(2, stride=2, crop=1)
    programs = _gpu_programs((2, 3, 5, 5), (3, 4, 4, 4), spec, "lhs_dilated")
    assert lhs_dilated_convolutions(programs["weight gradient"]) != []


def test_the_checker_can_fail():
    """The parser sees what the conditions forbid: negative padding, kernel dilation,
    feature groups, a kernel that is not reversed."""
    x = jnp.ones((1, 2, 5, 5))
    conv = functools.partial(
        jax.lax.conv_general_dilated,
        window_strides=(1, 1),
        lhs_dilation=(2, 2),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    text = (
        jax.jit(lambda x, w: conv(x, w, padding=((-1, 2), (1, 1)), rhs_dilation=(2, 1)))
        .lower(x, jnp.ones((2, 2, 3, 3)))
        .as_text()
    )
    ((fields, groups, full_reverse),) = lhs_dilated_convolutions(text)
    assert min(fields["pad"]) < 0 and fields["rhs_dilate"] == [2, 1] and not full_reverse
    text = (
        jax.jit(
            lambda x, w: conv(x, jnp.flip(w, 3), padding=((1, 1), (1, 1)), feature_group_count=2)
        )
        .lower(x, jnp.ones((2, 1, 3, 3)))
        .as_text()
    )
    ((fields, groups, full_reverse),) = lhs_dilated_convolutions(text)
    assert groups == 2 and not full_reverse  # flipped on one axis only
