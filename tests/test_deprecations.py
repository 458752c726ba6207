"""The deprecation policy (CHANGELOG.md): what was renamed, moved or made keyword-only
keeps working for one release and warns, naming the replacement."""

import numpy as np
import pytest

from convt import ConvTransposeSpec
from convt import convention as registry


def test_positional_spec_fields_and_create_options():
    with pytest.warns(DeprecationWarning, match="by keyword"):
        old = ConvTransposeSpec((2,), (1,), ((1, 0),), 1, "channels_last")
    assert old == ConvTransposeSpec(
        stride=(2,), dilation=(1,), crop=((1, 0),), groups=1, layout="channels_last"
    )
    with pytest.warns(DeprecationWarning, match="stride, dilation"):
        assert ConvTransposeSpec.create(2, 2, 1) == ConvTransposeSpec.create(2, stride=2)


@pytest.mark.parametrize("convention", registry.conventions(), ids=lambda c: c.name)
def test_positional_to_spec_and_from_spec(convention):
    """Every convention's to_spec takes its old positional order one more release."""
    import inspect

    keyword = inspect.signature(convention.to_spec).parameters
    first = next(name for name in keyword if name != "ndim")
    default = keyword[first].default
    value = {"reading": "spec"}.get(first, default)
    sizes = dict(kernel_size=(3,), input_size=(4,))
    last = convention.name in ("flax", "haiku", "keras", "tensorflow")
    try:
        want = convention.to_spec(1, **{first: value}, **sizes)
    except (ValueError, TypeError):
        pytest.skip(f"{convention.name}: its first parameter's default needs others")
    with pytest.warns(DeprecationWarning, match=first):
        assert convention.to_spec(1, value, **sizes) == want
    spec = ConvTransposeSpec.create(
        1, stride=2, layout="channels_last" if last else "channels_first"
    )
    try:
        want = convention.from_spec(spec, kernel_size=(3,), input_size=(4,))
    except registry.NotExpressible:
        return
    with pytest.warns(DeprecationWarning, match="input_size, kernel_size"):
        assert convention.from_spec(spec, (4,), (3,)) == want


def test_moved_auto_constants():
    import convt.auto
    import convt.core

    with pytest.warns(DeprecationWarning, match="convt.auto"):
        assert convt.core.COL2IM_LIMIT_BYTES == convt.auto.COL2IM_LIMIT_BYTES
    with pytest.raises(AttributeError):
        convt.core.NOT_A_NAME  # noqa: B018


def test_too_many_positional_arguments_is_a_type_error():
    import convt.torch

    with pytest.raises(TypeError, match="positional"):
        convt.torch.to_spec(1, *np.ones(9, int).tolist())
