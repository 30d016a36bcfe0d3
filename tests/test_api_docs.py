"""Every public name and method of the library has a docstring and is on the API page (nbs/api.md, autodoc)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import attn_tutorial

API = Path(__file__).resolve().parents[1] / "nbs" / "api.md"


def modules() -> dict:
    "The library's public modules, by name."
    return {m.name: importlib.import_module(f"attn_tutorial.{m.name}")
            for m in pkgutil.iter_modules(attn_tutorial.__path__) if not m.name.startswith("_")}


def public_classes(mod) -> list[type]:
    return [obj for n in getattr(mod, "__all__", []) if inspect.isclass(obj := getattr(mod, n))]


def methods(cls: type) -> dict:
    "The public methods and properties that `cls` defines itself (and `__call__`)."
    return {k: v for k, v in vars(cls).items()
            if (not k.startswith("_") or k == "__call__")
            and (isinstance(v, (property, classmethod, staticmethod)) or callable(v))}


def doc_of(v) -> str | None:
    if isinstance(v, property):
        return v.__doc__
    return (v.__func__ if isinstance(v, (classmethod, staticmethod)) else v).__doc__


def undocumented() -> list[str]:
    missing = []
    for name, mod in modules().items():
        for n in getattr(mod, "__all__", []):
            obj = getattr(mod, n)
            if not inspect.getdoc(obj):
                missing.append(f"{name}.{n}")
            if inspect.isclass(obj):
                missing += [f"{name}.{n}.{k}" for k, v in methods(obj).items() if not doc_of(v)]
    return missing


def from_private_bases(cls: type) -> list[str]:
    """The public methods `cls` inherits from a private base class (name `_...`): autodoc's `:members:` shows only
    a class's own members and those of public classes have their own entries, so these would be on no page."""
    found = []
    for base in cls.__mro__[1:]:
        if base.__name__.startswith("_"):
            # the base's method, unless a class before it in the MRO overrides it
            found += [f"{cls.__name__}.{k} (from {base.__name__})" for k in methods(base)
                      if next(c for c in cls.__mro__ if k in vars(c)) is base]
    return found


def automodule_options() -> dict[str, str]:
    "Each `.. automodule:: attn_tutorial.X` of the API page -> its option lines."
    blocks = re.findall(r"^\.\. automodule:: attn_tutorial\.(\w+)\n((?:[ \t]+:.*\n)*)", API.read_text(), re.M)
    return dict(blocks)


def test_every_public_name_and_method_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} public names or methods without a docstring: {missing}"


def test_methods_inherited_from_private_bases_are_on_the_api_page():
    needs = {name: found for name, mod in modules().items()
             for found in [[m for cls in public_classes(mod) for m in from_private_bases(cls)]] if found}
    # the check sees the case it is for: the Transformer layers' from_torch, defined on transformer._Layer
    assert "TransformerEncoderLayer.from_torch (from _Layer)" in needs.get("transformer", [])
    options = automodule_options()
    lacking = {name: found for name, found in needs.items() if ":inherited-members:" not in options.get(name, "")}
    assert not lacking, ("modules whose public classes inherit methods from a private base need "
                         f"`:inherited-members: Module` on their automodule in nbs/api.md: {lacking}")
