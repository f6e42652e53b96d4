"""``[inbox]`` and ``[privacy]``: validation with the key named, templates, the office mail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crosspost.config import Settings, load_settings
from crosspost.exceptions import ConfigError, InputError
from crosspost.inbox import (
    Interaction,
    InteractionState,
    check_reply_text,
    forward_message,
    render_template,
)

BASE = """
[site]
url = "https://www.zv-staedtedreieck.de"
name = "Zweckverband Städtedreieck"

[inbox.offices.bauamt]
name = "das Bauamt"
email = "bauamt@zv-staedtedreieck.de"
phone = "+49 3491 000-100"

[inbox.templates.verweis]
office = "bauamt"
text = "Danke, {handle}! Zuständig ist {office}: {email}, Tel. {phone}. {{ok}}"

[inbox.templates.frei]
text = "Bitte wenden Sie sich an {email}."
"""


def load(tmp_path: Path, extra: str = "") -> Settings:
    path = tmp_path / "crosspost.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return load_settings(path)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('[inbox.templates.x]\ntext = "Hallo {name}"\n', "inbox.templates.x.text"),
        ('[inbox.templates.x]\ntext = "{email}"\noffice = "zoo"\n', "templates.x.office"),
        ('[inbox.templates.x]\ntext = "  "\n', "inbox.templates.x.text"),
        ('[inbox.offices.x]\nemail = "kein-mail"\n', "inbox.offices.x.email"),
        ('[inbox.offices.x]\nphone = "1"\n', "inbox.offices.x.email"),
        ("[privacy]\nretention_days = -1\n", "privacy.retention_days"),
        ("[inbox]\nsync_interval = 1\n", "inbox.sync_interval"),
        ("[inbox]\nsyncinterval = 10\n", "inbox.syncinterval"),
    ],
)
def test_bad_inbox_configuration_names_the_key(tmp_path: Path, extra: str, named: str) -> None:
    """Every fault is one ConfigError (exit 2) naming the file and the dotted key."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    assert caught.value.exit_code == 2
    assert named in caught.value.message
    assert str(tmp_path / "crosspost.toml") in caught.value.message


def test_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert settings.privacy.retention_days == 90
    assert settings.inbox.enabled


def test_templates_fill_the_office_and_the_handle(tmp_path: Path) -> None:
    settings = load(tmp_path)
    text = render_template(settings, "verweis", handle="@erika", office=None)
    assert text == (
        "Danke, @erika! Zuständig ist das Bauamt: bauamt@zv-staedtedreieck.de, "
        "Tel. +49 3491 000-100. {ok}"
    )
    chosen = render_template(settings, "frei", handle="@erika", office="bauamt")
    assert chosen == "Bitte wenden Sie sich an bauamt@zv-staedtedreieck.de."


@pytest.mark.parametrize(
    ("name", "office", "named"),
    [("nope", None, "inbox.templates"), ("frei", None, "--office"), ("frei", "zoo", "zoo")],
)
def test_template_faults_are_bad_input(
    tmp_path: Path, name: str, office: str | None, named: str
) -> None:
    settings = load(tmp_path)
    with pytest.raises(InputError) as caught:
        render_template(settings, name, handle="@erika", office=office)
    assert named in caught.value.message


def test_reply_text_is_never_cut(tmp_path: Path) -> None:
    """Too long for the platform, or empty: refused before anything is sent."""
    settings = load(tmp_path)
    with pytest.raises(InputError, match="280"):
        check_reply_text(settings, "x", "ä" * 281)
    with pytest.raises(InputError):
        check_reply_text(settings, "mastodon", "   ")
    check_reply_text(settings, "x", "ä" * 280)


def test_the_office_mail_holds_text_link_and_time_only(tmp_path: Path) -> None:
    settings = load(tmp_path)
    item = Interaction(
        id=7,
        account="fb",
        platform="facebook",
        remote_id="c1",
        kind="comment",
        delivery_id=None,
        handle="Erika Mustermann",
        text="Wann wird der Gehweg repariert?",
        url="https://www.facebook.com/1?comment_id=c1",
        created_at=datetime(2026, 3, 10, 8, 14, tzinfo=UTC),
        fetched_at=datetime(2026, 3, 10, 8, 15, tzinfo=UTC),
        reply_ref={},
        state=InteractionState.OPEN,
    )
    subject, body = forward_message(settings, item, "bauamt", ZoneInfo("Europe/Berlin"))
    assert "das Bauamt" in subject
    assert "Wann wird der Gehweg repariert?" in body
    assert "https://www.facebook.com/1?comment_id=c1" in body
    assert "2026-03-10 09:14" in body  # the site's zone
    assert "Erika" not in body
    assert "Erika" not in subject


def test_a_strangers_text_cannot_steer_the_terminal() -> None:
    """Escape sequences and other controls in fetched text are shown, not obeyed; line
    breaks and tabs stay."""
    from crosspost.cli_inbox import shown

    assert shown("rot\x1b[31m!\nneu\x9b2J\tzeile\x07") == "rot\\x1b[31m!\nneu\\x9b2J\tzeile\\x07"
