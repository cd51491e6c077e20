"""What makes a dotted torch name private."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def is_dunder(component: str) -> bool:
    return len(component) > 4 and component.startswith("__") and component.endswith("__")


def is_private_component(component: str) -> bool:
    """`_foo` and `__foo` are private; `__version__` (a dunder) is public."""
    return component.startswith("_") and not is_dunder(component)


def root_of(qualified: str, roots: Sequence[str]) -> str | None:
    """The configured root that `qualified` lives under, if any (longest match wins)."""
    best: str | None = None
    for root in roots:
        if (qualified == root or qualified.startswith(root + ".")) and (best is None or len(root) > len(best)):
            best = root
    return best


def private_components(qualified: str, roots: Sequence[str]) -> list[str]:
    root = root_of(qualified, roots)
    if root is None:
        return []
    rest = qualified[len(root) + 1 :]
    return [part for part in rest.split(".") if part and is_private_component(part)] if rest else []


def is_private_name(qualified: str, roots: Sequence[str]) -> bool:
    return bool(private_components(qualified, roots))


def any_private(components: Iterable[str]) -> bool:
    return any(is_private_component(part) for part in components)


def is_private(dotted: str) -> bool:
    """A component after the first is private: `torch._C` is, `torch.nn.__version__` is not."""
    return any_private(dotted.split(".")[1:])


def covers(documented: str, name: str) -> bool:
    """A documented name covers itself and everything under it (`torch._dynamo` covers `torch._dynamo.config.x`)."""
    return name == documented or name.startswith(documented + ".")
