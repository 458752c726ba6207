"""Deprecations: arguments that became keyword-only keep working by position for one
release, with a warning (the deprecation policy in CHANGELOG.md)."""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def deprecated_positional(*old_order: str, keep: int = 1) -> Callable[[F], F]:
    """A decorator for a function whose arguments after the first became keyword-only:
    arguments still passed by position (in ``old_order``, the order they had) work for
    one more release, with a ``DeprecationWarning`` naming them (``keep``: the
    positional arguments the function still takes, ``self`` or ``cls`` included). ``help()`` and
    ``inspect.signature`` show the keyword-only signature."""

    def decorate(function: F) -> F:
        name = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def wrapper(*positional: Any, **kwargs: Any) -> Any:
            first, args = positional[:keep], positional[keep:]
            if args:
                if len(args) > len(old_order):
                    raise TypeError(
                        f"{name} takes {keep} positional argument(s) and keywords, got "
                        f"{len(positional)}"
                    )
                names = old_order[: len(args)]
                warnings.warn(
                    f"{name}: passing {', '.join(names)} by position is deprecated (removed in "
                    "0.3); pass them by keyword",
                    DeprecationWarning,
                    stacklevel=2,
                )
                for key, value in zip(names, args):
                    if key in kwargs:
                        raise TypeError(f"{name} got multiple values for argument {key!r}")
                    kwargs[key] = value
            return function(*first, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_attributes(
    module: str, replacements: Mapping[str, tuple[str, str]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names kept one more release: ``name -> (target,
    message)``, ``target`` the ``"package.module:attribute"`` returned (imported on first
    use), ``message`` what the warning says to use instead."""

    def __getattr__(name: str) -> Any:
        if name not in replacements:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, message = replacements[name]
        warnings.warn(
            f"{module}.{name} is deprecated (removed in 0.3): {message}",
            DeprecationWarning,
            stacklevel=2,
        )
        path, _, attribute = target.partition(":")
        return getattr(importlib.import_module(path), attribute)

    return __getattr__
