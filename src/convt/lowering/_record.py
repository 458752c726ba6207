"""What a lowering is: one `Lowering` record (its values, its tangent rules, the layers
it applies to), and `split`, which runs the values of one record with the tangent
rules of another."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from convt.spec import ConvTransposeSpec

# The most stride phases the lowerings that work phase by phase are traced for (their
# programs grow with the number of phases, prod(stride)).
MAX_PHASES = 1024


class Values(Protocol):
    """A lowering's values: ``y`` (without bias) for ``x`` ``(N, C_in, *spatial)`` or
    ``(N, *spatial, C_in)`` as ``spec.layout`` says and the canonical ``w`` ``(C_in,
    C_out // groups, *kernel)``, validated by `convt.core`."""

    def __call__(
        self,
        x: jax.Array,
        w: jax.Array,
        spec: ConvTransposeSpec,
        /,
        precision: Any = None,
        preferred_element_type: Any = None,
    ) -> jax.Array: ...


class Tangent(Protocol):
    """A lowering's tangent ``dy`` for tangents ``dx`` and ``dw`` (either ``None``, not
    both), linear in them: reverse mode transposes its terms into the gradients."""

    def __call__(
        self,
        x: jax.Array,
        w: jax.Array,
        dx: jax.Array | None,
        dw: jax.Array | None,
        *,
        spec: ConvTransposeSpec,
        precision: Any = None,
        preferred_element_type: Any = None,
    ) -> jax.Array: ...


class Requirement(Protocol):
    """Why the lowering does not apply to a layer (``None``: it does), in the words of
    the ``ValueError`` that ``method=`` then raises."""

    def __call__(self, spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None: ...


def bilinear_tangent(x_rule: Callable, w_rule: Callable, x, w, dx, dw) -> jax.Array:
    """``x_rule(dx, w) + w_rule(x, dw)``, the tangent of a bilinear map, leaving out
    the term of an absent (``None``) tangent; at least one is present."""
    terms = [x_rule(dx, w)] if dx is not None else []
    terms += [w_rule(x, dw)] if dw is not None else []
    return sum(terms[1:], terms[0])


def rules(x_rule: Values, w_rule: Values) -> Tangent:
    """The `Tangent` whose ``dx`` term is ``x_rule`` and ``dw`` term ``w_rule`` (two
    lowerings' values: every lowering computes the same bilinear map)."""

    def tangent(x, w, dx, dw, **options):
        return bilinear_tangent(
            functools.partial(x_rule, **options), functools.partial(w_rule, **options), x, w, dx, dw
        )

    return tangent


@dataclasses.dataclass(frozen=True, kw_only=True)
class Lowering:
    """One lowering of the canonical spec.

    Attributes:
      name: its ``method=`` name.
      values: its values (`Values`), differentiated by JAX unless ``tangent_rule`` is set.
      tangent_rule: ``spec -> Tangent``, the derivatives the lowering computes instead
        of JAX's (``None``: ``values`` applied to each tangent, as JAX would).
      requires: why it does not apply to a layer (`Requirement`; ``None``: it always
        applies).
      phased: whether it works stride phase by stride phase (its program grows with
        ``prod(stride)``; refused above `MAX_PHASES`).

    Called, a record is the lowering: ``record(x, w, spec, precision,
    preferred_element_type)``.
    """

    name: str
    values: Values
    tangent_rule: Callable[[ConvTransposeSpec], Tangent] | None = None
    requires: Requirement | None = None
    phased: bool = False

    def tangent(self, spec: ConvTransposeSpec) -> Tangent:
        """The lowering's `Tangent` for ``spec``."""
        if self.tangent_rule is None:
            return rules(self.values, self.values)
        return self.tangent_rule(spec)

    def refusal(self, spec: ConvTransposeSpec, weight_shape: tuple[int, ...]) -> str | None:
        """Why ``method=name`` is refused for this layer, or ``None``."""
        reason = self.requires(spec, weight_shape) if self.requires else None
        phases = math.prod(spec.stride)
        if reason is None and self.phased and phases > MAX_PHASES:
            reason = (
                f"method={self.name!r} works stride phase by stride phase, and stride "
                f"{spec.stride} has {phases} of them (at most {MAX_PHASES}); use "
                "'lhs_dilated', 'adjoint' or 'matmul' (a program the same size whatever the "
                "stride), or 'auto'"
            )
        return reason

    def __call__(self, x, w, spec: ConvTransposeSpec, precision=None, preferred_element_type=None):
        if self.tangent_rule is None:
            return self.values(x, w, spec, precision, preferred_element_type)
        return split(self, self)(x, w, spec, precision, preferred_element_type)


def split(forward: Lowering, backward: Lowering) -> Values:
    """A lowering computing values with ``forward``'s values and derivatives with
    ``backward``'s tangent rules (a custom JVP; reverse mode transposes the tangent
    terms, so ``jax.grad`` runs ``backward``'s transposes). Every lowering computes the
    same bilinear map, so any pair is exact; `convt.core.choose_method` picks pairs by
    measurement, as the fastest forward and the fastest backward often differ."""

    def lowered(x, w, spec, precision=None, preferred_element_type=None):
        options = dict(
            spec=spec, precision=precision, preferred_element_type=preferred_element_type
        )
        value = functools.partial(forward.values, **options)
        tangent = functools.partial(backward.tangent(spec), **options)

        @jax.custom_jvp
        def f(x, w):
            return value(x, w)

        def f_jvp(primals, tangents):
            (x, w), (dx, dw) = primals, tangents
            y = f(x, w)
            dx, dw = (None if isinstance(t, SymbolicZero) else t for t in (dx, dw))
            if dx is None and dw is None:
                return y, jnp.zeros_like(y)
            return y, tangent(x, w, dx, dw)

        f.defjvp(f_jvp, symbolic_zeros=True)
        return f(x, w)

    lowered.__name__ = f"{forward.name}/{backward.name}"
    return lowered
