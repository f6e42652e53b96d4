"""The German catalogue: complete, consistent with the code, compiled, and really used.

Every message a person reads goes through :func:`crosspost.i18n._`; click's own
messages ("Usage:", "Error: No such option …") go through the global gettext
domain, which :func:`crosspost.i18n.localize_click` binds to the same catalogue.
``make i18n`` extracts, merges, updates and compiles it.
"""

from __future__ import annotations

import gettext
import io
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from crosspost import counting, i18n

SRC = Path(i18n.__file__).parent
PO = i18n.LOCALE_DIR / "de" / "LC_MESSAGES" / f"{i18n.DOMAIN}.po"
MO = PO.with_suffix(".mo")
CROSSPOST = Path(sys.executable).with_name("crosspost")


def read_catalogue() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="de", domain=i18n.DOMAIN)


def extracted_msgids() -> set[str | tuple[str, ...]]:
    """What ``make i18n`` extracts from src/crosspost (same extraction method)."""
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(SRC), method_map=[("**.py", "crosspost.i18n.extract_messages")]
        )
    }


def entries(catalogue: Catalog) -> list[Message]:
    return [m for m in catalogue if m.id]


def forms(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The forms of a msgid or translation; a missing translation (None) is one empty form."""
    if value is None:
        return ("",)
    return (value,) if isinstance(value, str) else tuple(value)


def placeholders(text: str) -> set[str]:
    """Field names of str.format (``{name!r}`` → ``name``) and of %-formatting."""
    names = {
        re.split(r"[.\[]", field)[0]
        for _literal, field, _spec, _conversion in string.Formatter().parse(text)
        if field is not None
    }
    return names | {f"%({name})" for name in re.findall(r"%\((\w+)\)", text)}


def german_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANG", "LC_"))}
    env.update(LANGUAGE="de", LANG="de_DE.UTF-8", PYTHONIOENCODING="utf-8")
    return env


# -- the catalogue ---------------------------------------------------------------------------
def test_every_extracted_message_has_a_german_translation() -> None:
    """Every msgid extracted from src/crosspost is in crosspost.po with a non-empty,
    non-fuzzy German translation (a new message without one fails here: run make i18n)."""
    catalogue = read_catalogue()
    extracted = extracted_msgids()
    assert len(extracted) > 100  # the extraction itself works
    problems = []
    for msgid in sorted(extracted, key=str):
        message = catalogue.get(msgid)
        if message is None:
            problems.append(f"not in the catalogue: {msgid!r}")
        elif not all(forms(message.string)):
            problems.append(f"not translated: {msgid!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
    assert not problems, "run `make i18n` and translate:\n" + "\n".join(problems)


def test_no_entry_in_the_catalogue_is_untranslated_or_fuzzy() -> None:
    """Click's messages too: no entry of crosspost.po is empty or marked fuzzy."""
    catalogue = read_catalogue()
    bad = [m.id for m in entries(catalogue) if m.fuzzy or not all(forms(m.string))]
    assert not bad
    assert not catalogue.fuzzy  # pybabel compile skips a catalogue whose header is fuzzy


def test_command_help_is_extracted_from_click_docstrings() -> None:
    """Command docstrings are --help text, so extraction picks them up as messages."""
    extracted = extracted_msgids()
    assert "Validate posts and put them in the queue; print each new post id." in extracted
    assert "Database maintenance." in extracted


def test_counting_units_are_in_the_catalogue() -> None:
    """The unit preview prints (e.g. "characters") reaches _() as a value; each is marked."""
    units = {counting.CHARACTERS, counting.GRAPHEMES, counting.BYTES, counting.UTF16}
    units.add(counting.WEIGHTED)
    assert units <= set(i18n.COMPUTED_MESSAGES)


def test_translations_keep_the_placeholders_of_their_msgid() -> None:
    """Each translation (each plural form) uses exactly the placeholders of its msgid."""
    problems = []
    for message in entries(read_catalogue()):
        ids = forms(message.id)
        for index, text in enumerate(forms(message.string)):
            source = ids[min(index, len(ids) - 1)]
            if placeholders(text) != placeholders(source):
                problems.append(f"{source!r}: {sorted(placeholders(text))}")
    assert not problems


def test_the_shipped_mo_is_compiled_from_the_current_po() -> None:
    """The .mo next to the .po holds exactly what compiling the .po gives (run make i18n)."""
    buffer = io.BytesIO()
    write_mo(buffer, read_catalogue())
    buffer.seek(0)
    # _catalog (every message the .mo holds) is private, so typeshed leaves it out.
    expected = dict(gettext.GNUTranslations(buffer)._catalog)  # type: ignore[attr-defined]
    with MO.open("rb") as f:
        shipped = dict(gettext.GNUTranslations(f)._catalog)  # type: ignore[attr-defined]
    expected.pop("", None)  # the header names the Babel version that compiled it
    shipped.pop("", None)
    assert shipped == expected


# -- the translation function ----------------------------------------------------------------
def test_german_messages_with_language_de(monkeypatch: pytest.MonkeyPatch) -> None:
    """With LANGUAGE=de, _() and ngettext() return the German text."""
    monkeypatch.setenv("LANGUAGE", "de")
    i18n.reset()
    assert i18n._("scheduled") == "geplant"
    assert i18n._("no posts") == "keine Beiträge"
    assert i18n.ngettext("{n} post in the archive", "{n} posts in the archive", 1) == (
        "{n} Beitrag im Archiv"
    )
    assert i18n.ngettext("{n} post in the archive", "{n} posts in the archive", 3) == (
        "{n} Beiträge im Archiv"
    )


@pytest.mark.parametrize("language", ["en", "C"])
def test_english_messages_otherwise(monkeypatch: pytest.MonkeyPatch, language: str) -> None:
    """With LANGUAGE=en or C, _() returns the English source text unchanged."""
    monkeypatch.setenv("LANGUAGE", language)
    i18n.reset()
    assert i18n._("scheduled") == "scheduled"
    assert i18n.ngettext("{n} post in the archive", "{n} posts in the archive", 2) == (
        "{n} posts in the archive"
    )


def test_reset_reads_the_environment_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue is chosen once; reset() makes the next message follow a changed LANGUAGE."""
    monkeypatch.setenv("LANGUAGE", "C")
    i18n.reset()
    assert i18n._("failed") == "failed"
    monkeypatch.setenv("LANGUAGE", "de")
    assert i18n._("failed") == "failed"
    i18n.reset()
    assert i18n._("failed") == "fehlgeschlagen"


# -- the installed command -------------------------------------------------------------------
@pytest.mark.acceptance
def test_click_usage_errors_are_german() -> None:
    """A bad option under a German locale prints click's usage error in German and exits 2."""
    assert CROSSPOST.exists(), f"{CROSSPOST} is not installed"
    result = subprocess.run(
        [str(CROSSPOST), "--no-such-option"],
        env=german_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Aufruf: crosspost" in result.stderr
    assert "Fehler: Unbekannte Option '--no-such-option'." in result.stderr
    assert "Hilfe erhalten Sie mit 'crosspost --help'." in result.stderr
    assert "Usage" not in result.stderr


@pytest.mark.acceptance
def test_help_is_german() -> None:
    """`crosspost --help` under a German locale shows German option and command help."""
    result = subprocess.run(
        [str(CROSSPOST), "--help"],
        env=german_env(),
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=True,
    )
    out = result.stdout
    assert out.startswith("Aufruf: crosspost")
    assert "Optionen:" in out
    assert "Befehle:" in out
    assert "Nur Warnungen und Fehler ausgeben." in out  # crosspost's own option help
    assert "Diese Hilfe anzeigen und beenden." in out  # click's --help option
    assert "Version anzeigen und beenden." in out  # click's --version option
    assert "Datenbankwartung." in out  # a command's docstring
    assert "Show this message" not in out
