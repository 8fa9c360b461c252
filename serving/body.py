"""Reading a prediction request's JSON body in time and memory bounded by the body itself.

A general JSON parser builds whatever the client sends before the schema is checked:
4 MB of ``[1,1,1,...]`` is two million objects and, through the validator, two million
errors. The request has one fixed shape, ``{"text": str}`` or ``{"texts": [str, ...]}``,
so this reader walks exactly that shape and stops at the first thing that does not fit:
each field once, at most ``max_texts`` + 1 strings ever decoded (by the C string scanner
of ``json``), nothing nested built, numbers never converted, and an error names the place
by position only, never by echoing what the client sent.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

FIELDS = ("text", "texts")
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, skipped at C speed


class BodyError(Exception):
    """The body does not fit the request's shape; ``status`` 422 or 413."""

    def __init__(self, status: int, kind: str, msg: str, loc: list[str | int]) -> None:
        super().__init__(msg)
        self.status, self.kind, self.msg, self.loc = status, kind, msg, loc


def read_predict_body(body: bytes, max_texts: int) -> dict[str, Any]:
    """The ``text``/``texts`` fields of a prediction request (values: str, list of str, or
    None), ready for ``PredictRequest``; raises BodyError at the first misfit."""
    try:
        source = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(
            422, "utf8_invalid", f"the body is not valid UTF-8 at offset {error.start}", ["body"]
        ) from None
    reader = _Reader(source.lstrip("\ufeff"), max_texts)
    return reader.request()


class _Reader:
    def __init__(self, source: str, max_texts: int) -> None:
        self.s, self.at, self.max_texts = source, 0, max_texts

    def request(self) -> dict[str, Any]:
        self._space()
        if self.at == len(self.s):
            raise BodyError(422, "missing", "the request has no body: send a JSON object", ["body"])
        if self._peek() != "{":
            raise BodyError(
                422, "model_attributes_type", "the body must be a JSON object", ["body"]
            )
        self.at += 1
        fields: dict[str, Any] = {}
        self._space()
        if self._peek() == "}":
            self.at += 1
        else:
            while True:
                self._space()
                self._expect('"')
                name = self._string()
                if name in fields:  # else 4 MB of one field repeated would all be decoded
                    raise BodyError(
                        422, "duplicate_field", "a field appears more than once", ["body"]
                    )
                self._space()
                self._expect(":")
                self._space()
                if name == "text":
                    fields["text"] = self._text(["body", "text"])
                elif name == "texts":
                    fields["texts"] = self._texts()
                else:
                    raise BodyError(
                        422,
                        "extra_forbidden",
                        'unknown field: a request has only "text" or "texts"',
                        ["body"],
                    )
                self._space()
                if self._peek() == ",":
                    self.at += 1
                    continue
                self._expect("}")
                break
        self._space()
        if self.at != len(self.s):
            self._invalid("data after the JSON object")
        return fields

    def _text(self, loc: list[str | int]) -> str | None:
        char = self._peek()
        if char == '"':
            self.at += 1
            return self._string()
        if self.s.startswith("null", self.at):
            self.at += 4
            return None
        self._value_start(char)
        raise BodyError(422, "string_type", "Input should be a valid string", loc)

    def _texts(self) -> list[str] | None:
        if self.s.startswith("null", self.at):
            self.at += 4
            return None
        char = self._peek()
        if char != "[":
            self._value_start(char)
            raise BodyError(422, "list_type", "Input should be a valid list", ["body", "texts"])
        self.at += 1
        texts: list[str] = []
        self._space()
        if self._peek() == "]":
            self.at += 1
            return texts
        while True:
            self._space()
            if len(texts) == self.max_texts:
                raise BodyError(
                    413,
                    "too_many_texts",
                    f"more than {self.max_texts} texts in one request",
                    ["body", "texts"],
                )
            char = self._peek()
            if char != '"':
                self._value_start(char)
                raise BodyError(
                    422,
                    "string_type",
                    "Input should be a valid string",
                    ["body", "texts", len(texts)],
                )
            self.at += 1
            texts.append(self._string())
            self._space()
            if self._peek() == ",":
                self.at += 1
                continue
            self._expect("]")
            return texts

    def _string(self) -> str:
        try:
            value, self.at = scanstring(self.s, self.at, True)
        except json.JSONDecodeError as error:
            self._invalid(error.msg, error.pos)
        return value

    def _value_start(self, char: str) -> None:
        """A wrong type is reported as such only if a JSON value starts here."""
        if not char or not (char in '{["-tfn' or char.isdigit()):
            self._invalid("expected a value")

    def _space(self) -> None:
        self.at = _SPACE.match(self.s, self.at).end()  # type: ignore[union-attr]

    def _peek(self) -> str:
        return self.s[self.at] if self.at < len(self.s) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            self._invalid(f"expected {char!r}")
        self.at += 1

    def _invalid(self, what: str, at: int | None = None) -> None:
        at = self.at if at is None else at
        raise BodyError(422, "json_invalid", f"JSON decode error: {what}", ["body", at])
