"""The one translation function every human-readable message goes through.

Source strings are English; the German catalogue lives in
``locale/de/LC_MESSAGES/crosspost.po`` (compiled to ``.mo`` beside it). The
language follows the usual gettext variables (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG``). ``--json`` output never goes through here.

The same catalogue also holds click's own messages ("Usage:", "Error: No such
option …"): click translates them through the standard library's global gettext
domain, which :func:`localize_click` points at this catalogue. ``make i18n``
extracts both, merges them and compiles the result.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    import gettext
    from collections.abc import Iterator
    from pathlib import Path
    from typing import IO, Any, Protocol

    import click

    class Catalogue(Protocol):
        """What ``_`` and ``ngettext`` ask of a catalogue (gettext's translations)."""

        def gettext(self, message: str) -> str: ...

        def ngettext(self, msgid1: str, msgid2: str, n: int) -> str: ...


DOMAIN = "crosspost"
#: the catalogues' folder, as text (``LOCALE_DIR`` is the same as a Path)
LOCALE_FOLDER = os.path.join(os.path.dirname(__file__), "locale")
#: the variables gettext takes the language list from, in its order
LANGUAGE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_translation: Catalogue | None = None


class Untranslated:
    """The source language: every message as written (gettext's NullTranslations)."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return msgid1 if n == 1 else msgid2


def __getattr__(name: str) -> Path:
    """``LOCALE_DIR``, the catalogues' folder as a Path, made when asked for (PEP 562):
    pathlib is not imported on every start."""
    if name == "LOCALE_DIR":
        from pathlib import Path

        return Path(LOCALE_FOLDER)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _catalogue() -> Catalogue:
    global _translation
    if _translation is None:
        if _source_language():
            _translation = Untranslated()  # gettext would find no catalogue either
        else:
            import gettext

            _translation = gettext.translation(DOMAIN, localedir=LOCALE_FOLDER, fallback=True)
    return _translation


def _source_language() -> bool:
    """Whether gettext's language list starts with the C locale (``LANGUAGE=C``, ``LANG=C``,
    or no variable at all): it then stops looking at once and translates nothing. Deciding
    this needs neither gettext nor locale (whose alias table is most of their import)."""
    for name in LANGUAGE_VARIABLES:
        value = os.environ.get(name)
        if value:
            languages = value.split(":")
            if languages[0] in ("C", "POSIX"):
                return True  # gettext stops at once
            # "C.UTF-8" alone: gettext reads it as en_US.UTF-8 (crosspost has no English
            # catalogue), then stops at the "C" it appends
            return all(lang.split(".")[0].split("@")[0] in ("C", "POSIX") for lang in languages)
    return True


def _(message: str) -> str:
    """Translate ``message`` into the user's language."""
    return _catalogue().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message whose form depends on the count ``n``."""
    return _catalogue().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (it is translated where shown)."""
    return message


def translation(language: str) -> gettext.NullTranslations:
    """The catalogue of an explicit ``language`` (``"de"``, ``"en"``), whatever the
    process's locale: for documents written in a chosen language (the yearly report).
    English is the source language: its "catalogue" returns every message unchanged."""
    import gettext

    if language.split("_")[0].lower() == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_FOLDER, languages=[language], fallback=True)


def reset() -> None:
    """Forget the loaded catalogue, so the next message reads the environment again."""
    global _translation
    _translation = None


#: Messages that reach ``_()`` as computed values, so extraction cannot see them:
#: the counting units of :mod:`crosspost.counting` (shown by ``preview``) and the
#: ``required`` tag click looks up when it prints an option's help.
COMPUTED_MESSAGES = (
    N_("characters"),
    N_("graphemes"),
    N_("bytes"),
    N_("UTF-16 code units"),
    N_("weighted characters"),
    N_("required"),
)


def localize_click() -> None:
    """Let click speak the user's language too, through this catalogue.

    Click prints its own messages ("Usage:", "Error: No such option …") through the
    standard library's global ``gettext`` domain; bind that domain to ours. Call it
    before the first click decorator runs: some (``version_option``) translate their
    text when they are applied.
    """
    import gettext

    gettext.bindtextdomain(DOMAIN, LOCALE_FOLDER)
    gettext.textdomain(DOMAIN)


def translate_command_help(command: click.Command) -> None:
    """Translate the help of ``command`` and of every command below it.

    Click takes a command's help from its docstring; ``make i18n`` extracts those
    docstrings (see :func:`extract_messages`). Call it once all commands are defined.
    """
    _translate_help(command)


def _translate_help(command: click.Command) -> None:
    import inspect

    if command.help:
        command.help = _(inspect.cleandoc(command.help))
    if command.short_help:
        command.short_help = _(inspect.cleandoc(command.short_help))
    for sub in getattr(command, "commands", {}).values():
        _translate_help(sub)


def extract_messages(
    fileobj: IO[bytes],
    keywords: Any,
    comment_tags: Any,
    options: Any,
) -> Iterator[tuple[Any, ...]]:
    """Babel extraction method: Babel's Python extraction, plus what it cannot see.

    Babel's tokenizer-based extractor misses two kinds of messages: ``_()`` calls
    inside f-strings (``f"{_('ID'):>5}"``) and the docstrings of click commands,
    which click shows as their help (:func:`translate_command_help` translates
    them at start-up). Both are found in the syntax tree. Used through
    ``locale/babel.cfg`` by ``make i18n`` and by the catalogue tests.
    """
    import ast
    import io

    from babel.messages.extract import extract_python

    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):
            for inner in ast.walk(node):
                call = _keyword_call(inner, keywords)
                if call is not None:
                    yield call
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            _is_click_decorator(d) for d in node.decorator_list
        ):
            doc = ast.get_docstring(node)
            if doc:
                yield node.body[0].lineno, None, doc, []


def _keyword_call(node: Any, keywords: Any) -> tuple[Any, ...] | None:
    """``(lineno, funcname, messages, comments)`` for a call like ``_("…")``, else None."""
    import ast

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if node.func.id not in keywords:
        return None
    strings = tuple(
        a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
        for a in node.args
    )
    if not any(strings):
        return None
    return node.lineno, node.func.id, strings[0] if len(strings) == 1 else strings, []


def _is_click_decorator(decorator: Any) -> bool:
    import ast

    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name in {"command", "group"}
