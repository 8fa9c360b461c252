"""Command-line options generated from the pydantic config models, and back.

A command declares a parameter ``Annotated[ConfigValues[SomeConfig], ConfigOptions(...)]``
and is decorated with :func:`config_options`: that parameter becomes one ``--field-name``
option per field of ``SomeConfig`` (help from the field's description, default from its
default, type from its annotation), and the command receives a :class:`ConfigValues` whose
``build()`` makes the model from what was given. Adding a field to a model adds the option.

The constraints (``ge``, ``le``, patterns, validators) are checked by the model in
``build()``, not by click: a refused value then reads ``error: invalid option: ...`` with the
model's own explanation and exit code 1, as for the cross-field rules click cannot check.

Why not a library: pydantic-settings' CLI is argparse-based (another help format and
another parser than typer's), and the typer/click bridges for pydantic (pydanclick,
pydantic-typer, ...) are small one-person projects that own the whole signature, so the
hand-written options (``--source``, ``--preset``, ...) and their order could not stay as
they are. Typer reads a command's parameters from ``inspect.signature``; giving the command
a generated ``__signature__`` is all this takes.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Generic, Literal, TypeVar, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

_SCALARS = (bool, int, float, str, Path)


@dataclass(frozen=True)
class ConfigOptions:
    """Which fields of the annotated config model become options, and how.

    ``only`` picks fields (default: all but ``exclude``), ``rename`` gives a field another
    option name, ``help_suffix`` adds a sentence to a field's help. With ``overrides`` every
    option defaults to None, meaning: keep the value of the base passed to ``build()``.
    """

    only: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    help_suffix: Mapping[str, str] = field(default_factory=dict)
    overrides: bool = False

    def fields(self, model: type[BaseModel]) -> dict[str, str]:
        """Option parameter name -> field name, in the model's field order."""
        known = model.model_fields
        named = {*(self.only or ()), *self.exclude, *self.rename, *self.help_suffix}
        if unknown := sorted(named - set(known)):
            raise ValueError(f"{model.__name__} has no field {', '.join(unknown)}")
        chosen = [
            name
            for name in known
            if (self.only is None or name in self.only) and name not in self.exclude
        ]
        return {self.rename.get(name, name): name for name in chosen}

    def parameters(self, model: type[BaseModel]) -> list[inspect.Parameter]:
        """One keyword-only typer option per chosen field."""
        return [
            _parameter(param, model, name, model.model_fields[name], self)
            for param, name in self.fields(model).items()
        ]


@dataclass(frozen=True)
class ConfigValues(Generic[M]):
    """What a command received for one config model's options (field name -> value)."""

    model: type[M]
    values: Mapping[str, Any]

    def build(self, base: M | None = None, **updates: Any) -> M:
        """The model from ``base`` (or the defaults), then the options, then ``updates``.

        A value the model refuses ends the command: ``error: invalid option: ...``, exit 1.
        """
        data = {**(base.model_dump() if base is not None else {}), **self.values, **updates}
        try:
            return self.model(**data)
        except ValidationError as exc:
            typer.echo(f"error: invalid option: {exc}", err=True)
            raise typer.Exit(code=1) from None


@dataclass(frozen=True)
class _Group:
    model: type[BaseModel]
    spec: ConfigOptions
    fields: dict[str, str]


def config_options(func: F) -> F:
    """Expand ``func``'s ``ConfigOptions`` parameters into typer options (put it below
    ``@app.command``); the command is then called with a ``ConfigValues`` for each."""
    hints = typing.get_type_hints(func, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, _Group] = {}
    for param in inspect.signature(func).parameters.values():
        hint = hints.get(param.name, param.annotation)
        spec = _spec(hint)
        if spec is None:
            params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hint))
            continue
        model = _model(hint, param.name)
        groups[param.name] = _Group(model, spec, spec.fields(model))
        params += spec.parameters(model)
    names = [p.name for p in params]
    generated = {param for group in groups.values() for param in group.fields}
    plain = set(names) - generated
    if duplicated := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"{func.__name__}: options given twice: {', '.join(duplicated)}")

    @functools.wraps(func)
    def command(**given: Any) -> Any:
        kwargs = {name: value for name, value in given.items() if name in plain}
        for group_name, group in groups.items():
            values = {}
            for param, name in group.fields.items():
                if not _is_mapping(group.model.model_fields[name].annotation):
                    values[name] = given[param]
                elif given[param] is not None:
                    values[name] = _mapping(param, given[param])
            if group.spec.overrides:
                values = {k: v for k, v in values.items() if v is not None}
            kwargs[group_name] = ConfigValues(group.model, values)
        return func(**kwargs)

    signature = inspect.signature(func).replace(parameters=params)
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__config_fields__ = {  # type: ignore[attr-defined]
        param: (group.model, name)
        for group in groups.values()
        for param, name in group.fields.items()
    }
    return typing.cast(F, command)


def config_fields(command: Callable[..., Any]) -> dict[str, tuple[type[BaseModel], str]]:
    """Option parameter name -> (config model, field) of a ``config_options`` command."""
    return dict(getattr(command, "__config_fields__", {}))


def _spec(hint: Any) -> ConfigOptions | None:
    if get_origin(hint) is not Annotated:
        return None
    specs = [meta for meta in hint.__metadata__ if isinstance(meta, ConfigOptions)]
    return specs[0] if specs else None


def _model(hint: Any, name: str) -> type[BaseModel]:
    base = get_args(hint)[0]
    if get_origin(base) is ConfigValues:
        model = get_args(base)[0]
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    raise TypeError(f"{name}: annotate ConfigOptions as Annotated[ConfigValues[Model], ...]")


def _parameter(
    param: str, model: type[BaseModel], name: str, info: FieldInfo, spec: ConfigOptions
) -> inspect.Parameter:
    annotation = info.annotation
    _check_supported(annotation, f"{model.__name__}.{name}")
    help_text = " ".join(filter(None, (info.description, spec.help_suffix.get(name))))
    if _is_mapping(annotation):
        # one KEY=VALUE per repetition; None (not given) keeps the field's default
        annotation, default = list[str] | None, None
    elif spec.overrides:
        annotation, default = annotation | None, None
    elif info.is_required():
        default = inspect.Parameter.empty
    else:
        default = info.get_default(call_default_factory=True)
    metavar = "KEY=VALUE" if _is_mapping(info.annotation) else None
    return inspect.Parameter(
        param,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(help=help_text, metavar=metavar)],
    )


def _is_mapping(annotation: Any) -> bool:
    origin, args = get_origin(annotation), get_args(annotation)
    return origin is dict and len(args) == 2 and args[0] is str and args[1] in _SCALARS


def _mapping(param: str, given: list[str]) -> dict[str, str]:
    """``["a=1", "b=2"]`` as ``{"a": "1", "b": "2"}`` (the model converts the values)."""
    pairs = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            option = "--" + param.replace("_", "-")
            typer.echo(f"error: invalid option: {option} {item!r}: expected KEY=VALUE", err=True)
            raise typer.Exit(code=1)
        pairs[key.strip()] = value.strip()
    return pairs


def _check_supported(annotation: Any, where: str) -> None:
    """Scalars, Literal choices, either of them or None, and a str-to-scalar mapping
    (``--option KEY=VALUE``, repeated): what one option can hold."""
    if _is_mapping(annotation):
        return
    args = [a for a in get_args(annotation) if a is not NoneType]
    if get_origin(annotation) in (UnionType, typing.Union) and len(args) == 1:
        annotation = args[0]
    if annotation in _SCALARS or get_origin(annotation) is Literal:
        return
    raise TypeError(f"{where}: a {annotation} field cannot be one option; exclude it")
