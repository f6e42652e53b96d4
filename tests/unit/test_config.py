"""Settings: the TOML file, environment overrides, one-line errors, and account secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from crosspost.config import (
    DEFAULT_CATEGORIES,
    PLATFORMS,
    AccountBase,
    FeedAccount,
    MastodonAccount,
    Settings,
    config_path,
    load_settings,
)
from crosspost.exceptions import ConfigError

SITE = '[site]\nurl = "https://www.zv-staedtedreieck.de"\n'
MASTODON = """
[accounts.mastodon]
platform = "mastodon"
base_url = "https://social.example"
token_env = "CROSSPOST_MASTODON_TOKEN"
"""
SPEC_EXAMPLE = """
[site]
url = "https://www.zv-staedtedreieck.de"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"
link_hosts = []

[database]
url = "sqlite:///queue/crosspost.db"   # or postgresql+psycopg://…

[accounts.mastodon]
platform = "mastodon"
base_url = "https://social.example"
token_env = "CROSSPOST_MASTODON_TOKEN"

[accounts.linkedin]
platform = "linkedin"
organization = "urn:li:organization:4711"

[accounts.website]
platform = "feed"                       # Atom feed + HTML archive on disk
path = "queue/site"

[routing]
stellenangebot = ["mastodon", "linkedin", "website"]
"""
SECRET = "s3cr3t-Tok3n-4711"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crosspost.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Settings:
    return load_settings(write(tmp_path, text))


def config_error(tmp_path: Path, text: str) -> str:
    """The one-line ConfigError a configuration is refused with; it names the file."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return message


# --- a valid file ----------------------------------------------------------------------------


def test_minimal_file_takes_the_defaults(tmp_path: Path) -> None:
    """A file with only site.url loads, with Berlin time, the default categories and SQLite."""
    loaded = load(tmp_path, SITE)
    assert loaded.site.url == "https://www.zv-staedtedreieck.de"
    assert loaded.site.timezone == "Europe/Berlin"
    assert loaded.site.categories == DEFAULT_CATEGORIES
    assert loaded.database.url == "sqlite:///queue/crosspost.db"
    assert loaded.accounts == {}
    assert loaded.routing == {}


def test_spec_example_loads(tmp_path: Path) -> None:
    """The configuration from SPEC.md (with the account its routing names) loads as written."""
    loaded = load(tmp_path, SPEC_EXAMPLE)
    assert isinstance(loaded.accounts["mastodon"], MastodonAccount)
    assert isinstance(loaded.accounts["website"], FeedAccount)
    assert loaded.routing == {"stellenangebot": ["mastodon", "linkedin", "website"]}
    assert loaded.site.allowed_hosts == frozenset({"www.zv-staedtedreieck.de"})


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    """base_url "https://social.example/" is stored without the slash, so paths join cleanly."""
    loaded = load(tmp_path, SITE + MASTODON.replace("social.example", "social.example/"))
    assert loaded.accounts["mastodon"].base_url == "https://social.example"


# --- one-line errors naming the file and the dotted key ---------------------------------------


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A configuration path that does not exist names the path and how to choose another."""
    path = tmp_path / "fehlt.toml"
    with pytest.raises(ConfigError, match="CROSSPOST_CONFIG") as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    """A TOML syntax error is reported with the file and TOML's line number."""
    message = config_error(tmp_path, SITE + "[accounts.mastodon\n")
    assert "line 3" in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    """A file saved in Latin-1 is refused with a hint to save it as UTF-8."""
    path = tmp_path / "crosspost.toml"
    path.write_bytes((SITE + 'name = "Zweckverband Städtedreieck"\n').encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (SITE + 'colour = "blue"\n', "site.colour"),
        (SITE + '[sitte]\nname = "x"\n', "sitte"),
        (SITE + "[daemon]\nleases = 3\n", "daemon.leases"),
        (SITE + MASTODON + 'colour = "blue"\n', "accounts.mastodon.colour"),
        (
            SITE + MASTODON.replace("accounts.mastodon", "accounts.social") + "colour = 1\n",
            "accounts.social.colour",
        ),
        (
            SITE + '[accounts.web]\nplatform = "feed"\npath = "x"\ncolour = 1\n',
            "accounts.web.colour",
        ),
    ],
)
def test_unknown_key_names_its_dotted_path(tmp_path: Path, text: str, key: str) -> None:
    """An unknown key is refused as file: dotted.key — even for an account named like a platform."""
    message = config_error(tmp_path, text)
    assert f": {key}: unknown key" in message


def test_missing_site_url_is_refused(tmp_path: Path) -> None:
    """site.url is required: the canonical link defaults to it."""
    assert ": site.url: the key is required" in config_error(tmp_path, '[site]\nname = "ZV"\n')
    assert ": site: the key is required" in config_error(tmp_path, MASTODON)


@pytest.mark.parametrize("url", ["www.zv-staedtedreieck.de", "ftp://www.zv.de", "https://"])
def test_site_url_must_be_an_absolute_web_address(tmp_path: Path, url: str) -> None:
    """site.url without http(s) scheme and host is refused."""
    message = config_error(tmp_path, f'[site]\nurl = "{url}"\n')
    assert ": site.url: must be an absolute http(s) URL" in message


@pytest.mark.parametrize("platform", ["myspace", "Mastodon", ""])
def test_unknown_platform_lists_the_platforms(tmp_path: Path, platform: str) -> None:
    """A platform crosspost does not know is refused with the full list of platforms."""
    message = config_error(tmp_path, SITE + f'[accounts.social]\nplatform = "{platform}"\n')
    assert ": accounts.social: platform must be one of: " in message
    assert ", ".join(PLATFORMS) in message


def test_missing_platform_lists_the_platforms(tmp_path: Path) -> None:
    """An account without platform is refused the same way."""
    message = config_error(tmp_path, SITE + '[accounts.social]\nbase_url = "https://x.example"\n')
    assert ": accounts.social: platform must be one of: mastodon, bluesky" in message


def test_missing_platform_key_names_it(tmp_path: Path) -> None:
    """A key a platform requires (bluesky's handle) is named with its account."""
    message = config_error(tmp_path, SITE + '[accounts.bsky]\nplatform = "bluesky"\n')
    assert ": accounts.bsky.handle: the key is required" in message


def test_wrong_literal_lists_the_allowed_values(tmp_path: Path) -> None:
    """A value outside a fixed set (Mastodon visibility) is refused listing the allowed ones."""
    message = config_error(tmp_path, SITE + MASTODON + 'visibility = "everyone"\n')
    assert ": accounts.mastodon.visibility: must be one of " in message
    for allowed in ("'public'", "'unlisted'", "'private'", "'direct'"):
        assert allowed in message


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('enabled = "vielleicht"', "accounts.mastodon.enabled"),
        ("max_characters = 0", "accounts.mastodon.max_characters"),
        ('max_characters = "viel"', "accounts.mastodon.max_characters"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, line: str, key: str) -> None:
    """A value of the wrong type or range is refused naming its dotted key."""
    assert f": {key}: " in config_error(tmp_path, SITE + MASTODON + line + "\n")


def test_daemon_value_out_of_range_is_refused(tmp_path: Path) -> None:
    """Daemon settings are bounded (a lease of 0 s would let every daemon steal every job)."""
    assert ": daemon.lease_seconds: " in config_error(
        tmp_path, SITE + "[daemon]\nlease_seconds = 0\n"
    )


@pytest.mark.parametrize("zone", ["Europe/Springfield", "CEST", "../../etc/passwd", ""])
def test_unknown_timezone_is_refused(tmp_path: Path, zone: str) -> None:
    """site.timezone must be an IANA zone name."""
    text = SITE + f'timezone = "{zone}"\n'
    assert ": site.timezone: unknown time zone" in config_error(tmp_path, text)


@pytest.mark.parametrize(
    "url",
    [
        "http://social.example",
        "http://10.0.0.5:8080",
        "http://127.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.attacker.example",
    ],
)
def test_plain_http_base_url_to_another_host_is_refused(tmp_path: Path, url: str) -> None:
    """Tokens travel with every request, so http is refused for any non-loopback host."""
    message = config_error(tmp_path, SITE + MASTODON.replace("https://social.example", url))
    assert ": accounts.mastodon.base_url: must use https" in message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.0.0.1", "http://127.1.2.3:9", "http://localhost:3000"],
)
def test_plain_http_base_url_on_loopback_is_allowed(tmp_path: Path, url: str) -> None:
    """A local test server may be reached over plain http."""
    loaded = load(tmp_path, SITE + MASTODON.replace("https://social.example", url))
    assert loaded.accounts["mastodon"].base_url == url


def test_plain_http_base_url_on_ipv6_loopback_is_allowed(tmp_path: Path) -> None:
    """[::1] counts as loopback like 127.0.0.1."""
    text = SITE + MASTODON.replace("https://social.example", "http://[::1]:8080")
    assert load(tmp_path, text).accounts["mastodon"].base_url == "http://[::1]:8080"


def test_plain_http_webhook_url_to_another_host_is_refused(tmp_path: Path) -> None:
    """A webhook's own url follows the same https rule."""
    text = SITE + '[accounts.hook]\nplatform = "webhook"\nurl = "http://hooks.example/x"\n'
    assert ": accounts.hook.url: must use https" in config_error(tmp_path, text)


def test_mastodon_without_base_url_is_refused_unless_disabled(tmp_path: Path) -> None:
    """Mastodon has no default instance, so base_url is required for an enabled account."""
    account = '[accounts.mastodon]\nplatform = "mastodon"\n'
    assert ": accounts.mastodon.base_url: required" in config_error(tmp_path, SITE + account)
    loaded = load(tmp_path, SITE + account + "enabled = false\n")
    assert loaded.accounts["mastodon"].enabled is False


def test_routing_to_an_unknown_account_is_refused(tmp_path: Path) -> None:
    """Routing may only name configured accounts; the message lists them."""
    text = SITE + MASTODON + '[routing]\nstellenangebot = ["mastodon", "linkedin"]\n'
    message = config_error(tmp_path, text)
    assert ": routing.stellenangebot: unknown account 'linkedin'; known: mastodon" in message


def test_routing_for_an_unknown_category_is_refused(tmp_path: Path) -> None:
    """Routing keys must be categories; the message lists them."""
    message = config_error(tmp_path, SITE + MASTODON + '[routing]\nsport = ["mastodon"]\n')
    assert ": routing.sport: not a category; known: " in message
    assert "veranstaltung" in message


# --- environment overrides -------------------------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CROSSPOST_<SECTION>__<KEY> beats the file; the rest of the section is kept."""
    monkeypatch.setenv("CROSSPOST_SITE__NAME", "ZV aus der Umgebung")
    monkeypatch.setenv("CROSSPOST_ACCOUNTS__MASTODON__ENABLED", "false")
    loaded = load(tmp_path, SITE + 'name = "ZV aus der Datei"\n' + MASTODON)
    assert loaded.site.name == "ZV aus der Umgebung"
    assert loaded.site.url == "https://www.zv-staedtedreieck.de"
    mastodon = loaded.accounts["mastodon"]
    assert mastodon.enabled is False
    assert mastodon.base_url == "https://social.example"
    assert mastodon.token_env == "CROSSPOST_MASTODON_TOKEN"


def test_environment_override_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong value from the environment is refused like one from the file."""
    monkeypatch.setenv("CROSSPOST_ACCOUNTS__MASTODON__MAX_CHARACTERS", "viel")
    assert ": accounts.mastodon.max_characters: " in config_error(tmp_path, SITE + MASTODON)


def test_unparseable_environment_table_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table or list given in the environment that is not JSON is one ConfigError line."""
    monkeypatch.setenv("CROSSPOST_ROUTING", "stellenangebot=mastodon")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, SITE + MASTODON)
    assert "routing" in str(caught.value)


def test_token_variable_of_an_account_is_not_taken_for_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CROSSPOST_MASTODON_TOKEN (a token_env) and CROSSPOST_CONFIG do not disturb loading."""
    monkeypatch.setenv("CROSSPOST_MASTODON_TOKEN", SECRET)
    monkeypatch.setenv("CROSSPOST_CONFIG", str(tmp_path / "crosspost.toml"))
    assert load(tmp_path, SITE + MASTODON).accounts["mastodon"].enabled is True


def test_config_path_from_option_then_environment_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config wins over $CROSSPOST_CONFIG, which wins over config/crosspost.toml."""
    monkeypatch.chdir(tmp_path)
    assert config_path() == Path("config/crosspost.toml")
    monkeypatch.setenv("CROSSPOST_CONFIG", "/srv/crosspost.toml")
    assert config_path() == Path("/srv/crosspost.toml")
    assert config_path("eigene.toml") == Path("eigene.toml")


# --- secrets ---------------------------------------------------------------------------------


def account(**keys: Any) -> AccountBase:
    """A Mastodon account; ``keys`` are further keys of its table (validated by pydantic)."""
    return MastodonAccount(platform="mastodon", base_url="https://social.example", **keys)


def secret_file(folder: Path, content: str, mode: int, name: str = "token") -> Path:
    path = folder / name
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


def test_secret_from_token_env_is_read_and_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    """token_env names the variable holding the token; surrounding whitespace is dropped."""
    monkeypatch.setenv("ZV_MASTODON_TOKEN", f"  {SECRET}\n")
    secret = account(token_env="ZV_MASTODON_TOKEN").secret("mastodon")
    assert secret.get_secret_value() == SECRET
    assert SECRET not in repr(secret)


@pytest.mark.parametrize("value", [None, ""])
def test_secret_from_unset_token_env_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """An unset or empty token_env variable is an error naming the account and variable."""
    if value is not None:
        monkeypatch.setenv("ZV_MASTODON_TOKEN", value)
    with pytest.raises(ConfigError) as caught:
        account(token_env="ZV_MASTODON_TOKEN").secret("mastodon")
    assert str(caught.value).startswith("accounts.mastodon.token_env: ")
    assert "ZV_MASTODON_TOKEN" in str(caught.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_token_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    """A token file that group or others may access is refused, saying to chmod 600 it."""
    path = secret_file(tmp_path, SECRET, mode)
    with pytest.raises(ConfigError) as caught:
        account(token_file=path).secret("mastodon")
    message = str(caught.value)
    assert message.startswith("accounts.mastodon.token_file: ")
    assert f"chmod 600 {path}" in message
    assert SECRET not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_token_file_is_read_and_stripped(tmp_path: Path, mode: int) -> None:
    """A token file only its owner can read gives the token without the trailing newline."""
    path = secret_file(tmp_path, f"{SECRET}\n", mode)
    assert account(token_file=path).secret("mastodon").get_secret_value() == SECRET


def test_missing_or_empty_token_file_is_refused(tmp_path: Path) -> None:
    """A token_file that does not exist or holds nothing is an error naming the path."""
    missing = tmp_path / "fehlt"
    with pytest.raises(ConfigError, match=f"{missing} does not exist"):
        account(token_file=missing).secret("mastodon")
    empty = secret_file(tmp_path, "\n", 0o600, name="leer")
    with pytest.raises(ConfigError, match=f"{empty} is empty"):
        account(token_file=empty).secret("mastodon")


def test_systemd_credential_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without token_env or token_file, $CREDENTIALS_DIRECTORY/<account> holds the secret."""
    secret_file(tmp_path, f"{SECRET}\n", 0o440, name="mastodon")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert account().secret("mastodon").get_secret_value() == SECRET


def test_systemd_credential_of_another_account_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The credential file is looked up by the account's own name only."""
    secret_file(tmp_path, SECRET, 0o400, name="bluesky")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match="LoadCredential=mastodon:"):
        account().secret("mastodon")


def test_no_secret_configured_says_how_to_give_one() -> None:
    """An account with no secret source names token_env, token_file and LoadCredential."""
    with pytest.raises(ConfigError) as caught:
        account().secret("mastodon")
    message = str(caught.value)
    assert message.startswith("accounts.mastodon: ")
    for hint in ("token_env", "token_file", "LoadCredential=mastodon:"):
        assert hint in message


@pytest.mark.parametrize(
    "text",
    [
        SITE + MASTODON + f'token = "{SECRET}"\n',
        SITE + MASTODON + f"token = {SECRET}\n",
        SITE + MASTODON + f'enabled = "{SECRET}"\n',
        SITE + MASTODON + f'max_characters = "{SECRET}"\n',
        SITE + MASTODON + f'visibility = "{SECRET}"\n',
        SITE + MASTODON.replace("https://social.example", f"http://zv:{SECRET}@social.example"),
        SITE + MASTODON.replace("https://social.example", f"{SECRET}"),
        SITE + f'[accounts.social]\nplatform = "{SECRET}"\n',
        SITE + f'[accounts]\nsocial = "{SECRET}"\n',
        SITE + f'[accounts.hook]\nplatform = "webhook"\nurl = "http://h.example/?key={SECRET}"\n',
        SITE + f'timezone = "{SECRET}"\n',
        f'[site]\nurl = "{SECRET}"\n',
        SITE + f'[daemon]\nlease_seconds = "{SECRET}"\n',
    ],
)
def test_secret_in_a_wrong_place_never_appears_in_the_error(tmp_path: Path, text: str) -> None:
    """A token pasted into the TOML by mistake is refused without being echoed."""
    assert SECRET not in config_error(tmp_path, text)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CROSSPOST_ACCOUNTS__MASTODON__TOKEN", SECRET),
        ("CROSSPOST_ACCOUNTS__MASTODON__ENABLED", SECRET),
        ("CROSSPOST_ACCOUNTS__MASTODON__BASE_URL", f"http://zv:{SECRET}@social.example"),
        ("CROSSPOST_ROUTING", SECRET),
        ("CROSSPOST_ACCOUNTS", SECRET),
    ],
)
def test_secret_in_the_environment_never_appears_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A token in a wrongly named or malformed CROSSPOST_ variable is not echoed either."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, SITE + MASTODON)
    assert SECRET not in str(caught.value)


def test_secret_in_a_world_readable_credential_is_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading secrets fails without showing them, whichever source was tried."""
    exposed = secret_file(tmp_path, SECRET, 0o644)
    monkeypatch.setenv("ZV_EMPTY", "")
    for broken in (account(token_file=exposed), account(token_env="ZV_EMPTY")):
        with pytest.raises(ConfigError) as caught:
            broken.secret("mastodon")
        assert SECRET not in str(caught.value)
    assert os.stat(exposed).st_mode & 0o777 == 0o644  # refused, not silently "fixed"
