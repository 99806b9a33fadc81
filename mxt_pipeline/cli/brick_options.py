"""Command-line options generated from a brick's declared parameters.

``mxt calibrate``, ``mxt detect`` and ``mxt lightcurve`` run one brick each.  Their
parameter options are not written by hand: each :class:`~mxt_pipeline.pipelines.Parameter`
of the brick becomes ``--name-with-dashes`` (``--flag/--no-flag`` for a boolean), with
the brick's type, bounds, choices, default and one-line help, so a default is written
once, in the brick, and ``mxt run -p brick.name=value`` and the standalone command
accept the same names and values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from mxt_pipeline.pipelines.brick import Brick
from mxt_pipeline.pipelines.parameters import Parameter

__all__ = ["parameter_options", "parameter_values", "option_name"]

_CLICK_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING}


def option_name(param: Parameter) -> str:
    """``det_ml_threshold`` -> ``--det-ml-threshold``."""
    return "--" + param.name.replace("_", "-")


def _help(param: Parameter) -> str:
    text = param.doc[:1].upper() + param.doc[1:]
    bounds = []
    if param.minimum is not None:
        bounds.append(f">= {param.minimum:g}")
    if param.maximum is not None:
        bounds.append(f"<= {param.maximum:g}")
    if bounds:
        text += f" ({', '.join(bounds)})"
    if param.type is not bool:
        shown = "none" if param.default is None else param.default
        text += f"  [default: {shown}]"
    return text + "."


def _option(param: Parameter) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    name = option_name(param)
    if param.type is bool:
        flag = f"{name}/--no-{name[2:]}"
        return click.option(flag, param.name, default=param.default, show_default=True, help=_help(param))
    kind: click.ParamType = _CLICK_TYPES[param.type]
    if param.choices is not None:
        kind = click.Choice([str(c) for c in param.choices])
    return click.option(name, param.name, type=kind, default=param.default, show_default=False, help=_help(param))


def parameter_options(brick: Brick, *, exclude: Iterable[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding one option per parameter of ``brick`` (declaration order)."""
    skip = set(exclude)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for param in reversed(brick.params):
            if param.name not in skip:
                func = _option(param)(func)
        return func

    return decorate


def parameter_values(brick: Brick, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the brick's parameter values out of a command's keyword arguments.

    Choices come back from click as strings; the brick's own validation converts
    them (and names the parameter when a value is refused).
    """
    names = {p.name for p in brick.params}
    return {name: kwargs.pop(name) for name in list(kwargs) if name in names}
