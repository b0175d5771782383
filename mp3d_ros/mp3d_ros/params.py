"""Declaring ROS parameters the one way every mp3d node does: read-only, described, with a range
(numbers) or a list of allowed values (strings), bad values as ValueError."""

from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node


def descriptor(description: str, default: object, low: float | None = None,
               high: float | None = None, choices: tuple[str, ...] = ()) -> ParameterDescriptor:
    """The read-only ParameterDescriptor of one parameter, with its range or choices."""
    desc = ParameterDescriptor(description=description, read_only=True)
    if low is not None and isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    elif low is not None:
        desc.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                        to_value=float(high), step=0.0)]
    if choices:
        desc.additional_constraints = f"one of: {', '.join(choices)}"
    return desc


def declare(node: Node, name: str, default: object, desc: ParameterDescriptor) -> object:
    """Declare one parameter and return its value; a wrong type or out-of-range value raises
    ValueError naming the parameter. Declared already (a managed node configured again after
    cleanup): its value."""
    if node.has_parameter(name):
        return node.get_parameter(name).value
    try:
        return node.declare_parameter(name, default, desc).value
    except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
        raise ValueError(f"parameter {name}: {exc}") from exc


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """A ``ros__parameters`` tree as dotted names: {"tracker": {"min_hits": 1}} ->
    {"tracker.min_hits": 1} (how rclpy names nested parameters)."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
