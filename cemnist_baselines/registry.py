"""The one registry of methods: the built-ins, the plug-ins (a reference ``module:Class`` or an installed
entry point), the order methods are shown in, and the groups ``--method`` accepts.

``cemnist-baselines run --method my_package.my_module:MyMethod`` imports ``my_package.my_module`` (the current
folder is searched too, as ``python -m`` does) and takes ``MyMethod``: a subclass of
:class:`cemnist_baselines.methods.Method` (instantiated with its defaults; a class without a default ``name``
gets its class attribute ``name`` or else the class name in lower case) or an instance of one. Subclassing a
built-in (``class HalfKD(KD)``) keeps its flags (``uses_old_model`` ...): they are class defaults. Installed
packages register methods by name in the entry-point group ``cemnist_baselines.methods``
(``[project.entry-points."cemnist_baselines.methods"] kd_t2 = "my_package.my_module:MyMethod"``); the entry-point
name must equal the method's ``name``. A method's name may not be one of the built-ins, nor contain characters
that cannot be in a file name. A plug-in's hooks are dry-run before any training (:mod:`.plugins`).
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
from importlib import metadata
from typing import Any

from .methods import ILT, KD, MiB, PL, PLOP, PLOP_TUNED_DIVISOR, LwF, Method, Replay

METHODS: dict[str, Method] = {
    "naive": Method("naive"),
    "kd": KD("kd", uses_old_model=True),
    "lwf": LwF("lwf", uses_old_model=True),
    "mib": MiB("mib", uses_old_model=True, balanced_init=True),
    "joint": Method("joint", joint=True),
    "ilt": ILT("ilt", uses_old_model=True, features=True, cached_features=("enc3",)),
    "pl": PL("pl", uses_old_model=True),
    "plop": PLOP("plop", uses_old_model=True, old_model_per_batch=True, features=True, balanced_init=True),
    "plop_tuned": PLOP("plop_tuned", uses_old_model=True, old_model_per_batch=True, features=True, balanced_init=True,
                       pod_factor=0.01 / PLOP_TUNED_DIVISOR, pod_logits_factor=0.0005 / PLOP_TUNED_DIVISOR),
    "replay": Replay("replay"),
}
BUILTIN_METHODS: tuple[str, ...] = tuple(METHODS)

METHOD_ORDER: tuple[str, ...] = ("naive", "kd", "lwf", "ilt", "pl", "mib", "plop", "plop_tuned", "replay", "joint")
"""The order of methods in tables and plots (simplest first, joint -- the upper bound -- last); plug-ins follow."""

METHOD_GROUPS: dict[str, tuple[str, ...]] = {"all": METHOD_ORDER}
"""Words ``--method`` expands: ``all`` is every built-in method, in :data:`METHOD_ORDER` (the rows of the v1
board, README "Reproduce the board"). Plug-ins are never part of a group: name them one by one."""


def expand_group(name: str) -> tuple[str, ...]:
    """The methods a ``--method`` word stands for: a group's members, else the name itself."""
    return METHOD_GROUPS.get(name, (name,))


def get_method(name: str) -> Method:
    """The method called ``name``: a built-in, an installed plug-in (entry-point group
    ``cemnist_baselines.methods``) or a reference ``module:Class``; ValueError naming the valid names otherwise."""
    if name in METHODS:
        return METHODS[name]
    return resolve_method(name)


ENTRY_POINT_GROUP = "cemnist_baselines.methods"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")


def entry_point_names() -> dict[str, str]:
    """``{name: "module:attr"}`` of the installed plug-in methods."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _import(module: str, ref: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or not (module == e.name or module.startswith(e.name + ".")):
            raise ValueError(f"--method {ref!r}: importing module {module!r} failed: {e} (a module it imports "
                             f"is missing)") from e
        cwd = os.getcwd()
        if cwd not in sys.path and "" not in sys.path:
            sys.path.insert(0, cwd)
            try:
                return importlib.import_module(module)
            except ModuleNotFoundError:
                pass
        raise ValueError(f"--method {ref!r}: module {module!r} not found (looked in the current folder and on "
                         f"sys.path); install the package that holds it or run from the folder above it") from e


def _instantiate(obj: Any, ref: str, attr: str) -> Method:
    if isinstance(obj, Method):
        return obj
    if isinstance(obj, type) and issubclass(obj, Method):
        fields = {f.name: f for f in dataclasses.fields(obj)}
        no_default = fields["name"].default is dataclasses.MISSING and fields["name"].default_factory is dataclasses.MISSING
        if not no_default:
            return obj()
        name = getattr(obj, "name", None)  # a plain class attribute (``name = "halfkd"``) names it
        return obj(name=name if isinstance(name, str) else attr.lower())
    what = obj.__name__ if isinstance(obj, type) else type(obj).__name__
    raise ValueError(f"--method {ref!r}: {attr} is not a Method ({'class' if isinstance(obj, type) else 'object'} "
                     f"{what!r}); a plug-in method must subclass cemnist_baselines.methods.Method")


def load_reference(ref: str) -> Method:
    """The method named by ``module:attr``; ValueError naming what is wrong (module not found, no such
    attribute, not a Method, a taken or unusable name)."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"--method {ref!r}: expected a built-in name {list(BUILTIN_METHODS)}, an installed "
                         f"plug-in {sorted(entry_point_names())} or a reference module:Class")
    mod = _import(module, ref)
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--method {ref!r}: module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    meth = _instantiate(obj, ref, attr.split(".")[-1])
    check_name(meth, ref)
    return meth


def check_name(meth: Method, ref: str) -> None:
    """A plug-in's ``name`` must be a usable file-name part and not a built-in's name."""
    if not isinstance(meth.name, str) or not _NAME.match(meth.name):
        raise ValueError(f"--method {ref!r}: method name {meth.name!r} is not usable (letters, digits, _ . +; "
                         f"it becomes part of the result file names)")
    if meth.name in BUILTIN_METHODS:
        raise ValueError(f"--method {ref!r}: name {meth.name!r} is taken by the built-in method {meth.name!r}; "
                         f"give your method another name")


def resolve_method(name: str) -> Method:
    """A plug-in method: an entry point of :data:`ENTRY_POINT_GROUP` called ``name``, or a ``module:attr``
    reference. Unknown plain names are a ValueError listing the built-ins and the installed plug-ins."""
    eps = entry_point_names()
    if ":" not in name:
        if name in eps:
            meth = load_reference(eps[name])
            if meth.name != name:
                raise ValueError(f"entry point {name!r} ({eps[name]}) gives a method named {meth.name!r}; "
                                 f"the entry-point name must equal the method's name")
            return meth
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(BUILTIN_METHODS)}"
                         + (f", an installed plug-in {sorted(eps)}" if eps else "")
                         + " or a reference module:Class (or 'all': every built-in)")
    meth = load_reference(name)
    if meth.name in eps and eps[meth.name] != name:
        raise ValueError(f"--method {name!r}: name {meth.name!r} is taken by the installed plug-in "
                         f"{eps[meth.name]!r}; give your method another name")
    return meth


def method_source(meth: Method) -> str:
    """``module:Class`` of a method object (recorded in every result)."""
    cls = type(meth)
    return f"{cls.__module__}:{cls.__qualname__}"


def is_builtin(meth: Method) -> bool:
    """Whether ``meth`` is one of the registered built-in instances (:data:`METHODS`)."""
    return METHODS.get(meth.name) is meth
