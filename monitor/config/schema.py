"""The schema of policywatch.toml: pydantic v2 models, `extra="forbid"` everywhere, strict types.

Why strict: a typo in a nightly job's config (`[storge]`, `allowed_domain`) must fail the first night, naming
the key, not fall back to a default and watch nothing. What one table can check on its own is checked here;
what relates tables (a watch inside `allowed_domains`, a subscriber's topic) is checked where the config is
built (`monitor.config.model`). `describe` turns pydantic's first error into one line that starts with the key
path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from policywatch.monitor.config.ops import address, check_cron_expression, check_time_zone
from policywatch.monitor.urls import DomainRule, url_problem


def _domain(entry: str) -> str:
    DomainRule.parse(entry)  # ValueError: "'a.ca:99999' has an invalid port"
    return entry


def _url(url: str) -> str:
    problem = url_problem(url.strip())
    if problem:
        raise ValueError(problem)
    return url.strip()


def _storage_url(url: str) -> str:
    if "://" not in url:
        raise ValueError(f"{url!r} is not an SQLAlchemy URL (e.g. sqlite:///policywatch.db)")
    return url


def _css(selector: str) -> str:
    from cssselect import GenericTranslator, SelectorError

    try:
        GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
    return selector


def _regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


def _address(value: str) -> str:
    try:
        address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an e-mail address") from None
    return value


def _env_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(
            f"{name!r} is not an environment variable name (write the variable's name here, never "
            "the secret itself)"
        )
    return name


def _http_url(url: str) -> str:
    _url(url)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{url!r} must be an http(s) URL (where the report site is published)")
    return url


def _cron(expr: str) -> str:
    check_cron_expression(expr)
    return expr


def _zone(name: str) -> str:
    check_time_zone(name)
    return name


def _job_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or name == "nightly":
        raise ValueError(f"{name!r} must be a unique lower-case name (not 'nightly')")
    return name


Domain = Annotated[str, AfterValidator(_domain)]
Url = Annotated[str, AfterValidator(_url)]
StorageUrl = Annotated[str, AfterValidator(_storage_url)]
Address = Annotated[str, AfterValidator(_address)]
EnvName = Annotated[str, AfterValidator(_env_name)]


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StorageTable(Table):
    url: StorageUrl = "sqlite:///policywatch.db"
    read_url: StorageUrl | None = None


class CrawlTable(Table):
    allowed_domains: Annotated[list[Domain], Field(min_length=1)]
    user_agent: str = "policywatch/0.1 (+https://github.com/policywatch/policywatch)"
    obey_robots: bool = True
    concurrency_per_domain: Annotated[int, Field(ge=1)] = 4
    download_delay: Annotated[float, Field(ge=0)] = 0.5
    #: Seconds between requests to one host, for the hosts that need another pace than download_delay (a
    #: provincial site slower than canada.ca): `{ "www.gov.bc.ca" = 3.0 }`, a floor AutoThrottle keeps.
    host_delays: dict[str, Annotated[float, Field(ge=0)]] = {}
    autothrottle: bool = True
    timeout: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=0)] = 2
    max_size_mb: Annotated[int, Field(ge=10)] = 16
    page_workers: int | None = None  # deprecated and ignored (a warning says so)


class WatchTable(Table):
    url: Url
    topics: list[str] = []
    kind: Literal["auto", "html", "json"] = "auto"
    json_records: str | None = None
    json_id: str | None = None


class TopicTable(Table):
    keywords: list[str] = []
    url_prefixes: list[str] = []
    display: str | None = None


class SourceTable(Table):
    """A sitemap or feed with its own keywords: `{ url = "…", keywords = ["immigration"] }`.

    `entries = "issues"`: each entry of the feed is an issue's table of contents (the Canada Gazette's feeds
    list issues, not notices); the newest `max_issues` are read and the items they list are what the keywords
    choose from."""

    url: Url
    keywords: list[str] = []
    entries: Literal["pages", "issues"] = "pages"
    max_issues: Annotated[int, Field(ge=1, le=50)] = 4


class DiscoveryTable(Table):
    follow_prefixes: list[Url] = []
    depth: Annotated[int, Field(ge=0)] = 1
    max_pages: Annotated[int, Field(ge=0)] = 500
    sitemaps: list[Url | SourceTable] = []
    feeds: list[Url | SourceTable] = []
    keywords: list[str] = []  # every source's entries must match one (a source's own keywords replace them)


class DropRule(Table):
    selector: Annotated[str, AfterValidator(_css)]
    url_prefix: str = ""
    why: str = ""


class IgnoreRule(Table):
    pattern: Annotated[str, AfterValidator(_regex)]
    url_prefix: str = ""
    why: str = ""


class RulesTable(Table):
    drop: list[DropRule] = []
    ignore: list[IgnoreRule] = []


class ReportsTable(Table):
    dir: str = "reports"
    base_url: Annotated[str, AfterValidator(_http_url)] | None = None


class MailTable(Table):
    host: str | None = None  # an SMTP server; or, for a demo or a test, `mbox`
    mbox: str | None = None  # append every message to this mbox file instead (no SMTP server)
    port: Annotated[int, Field(gt=0, lt=65536)] | None = None  # 25, 587 with starttls, 465 with ssl
    security: Literal["none", "starttls", "ssl"] = "none"
    sender: Address = "policywatch <policywatch@localhost>"
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    timeout: Annotated[float, Field(gt=0)] = 30.0
    ca_file: str | None = None
    operator: Address | None = None
    allow_plaintext_auth: bool = False


class SubscriberTable(Table):
    email: Address | None = None  # optional when the subscriber has channels
    name: str | None = None
    topics: list[str] = []
    min_significance: Literal["low", "medium", "high"] = "low"
    frequency: Literal["immediate", "nightly", "weekly"] = "nightly"
    heartbeat: bool = False
    notify: list[str] = []  # apprise URLs without secrets (json://…, ntfy://…)
    notify_env: str | None = None  # the environment variable holding apprise URLs with tokens (Slack …)


class JobTable(Table):
    name: Annotated[str, AfterValidator(_job_name)]
    cron: Annotated[str, AfterValidator(_cron)]
    url_prefixes: Annotated[list[str], Field(min_length=1)]


class ScheduleTable(Table):
    cron: Annotated[str, AfterValidator(_cron)] = "0 3 * * *"
    timezone: Annotated[str, AfterValidator(_zone)] = "America/Toronto"
    misfire_grace_hours: Annotated[float, Field(gt=0)] = 6.0
    jobs: list[JobTable] = []


class ArchiveTable(Table):
    """`policywatch backfill`: the web archive it reads (a Wayback Machine: CDX API and raw captures)."""

    url: Url = "https://web.archive.org"
    delay: Annotated[float, Field(ge=0)] = 1.0  # seconds between two requests to the archive
    retries: Annotated[int, Field(ge=0)] = 3
    timeout: Annotated[float, Field(gt=0)] = 60.0


class ParityTable(Table):
    languages: Annotated[list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]], Field(max_length=4)] = []
    grace_days: Annotated[float, Field(ge=0)] = 3.0


class ConfigFile(Table):
    storage: StorageTable = StorageTable()
    crawl: CrawlTable
    watch: list[WatchTable] = []
    topics: dict[str, TopicTable] = {}
    reports: ReportsTable = ReportsTable()
    discovery: DiscoveryTable = DiscoveryTable()
    mail: MailTable | None = None
    subscriber: list[SubscriberTable] = []
    schedule: ScheduleTable = ScheduleTable()
    rules: RulesTable = RulesTable()
    archive: ArchiveTable = ArchiveTable()
    parity: ParityTable = ParityTable()


# --- one line per error ------------------------------------------------------------------------------------
def key_path(loc: tuple[Any, ...]) -> str:
    """("watch", 2, "url") -> "watch[2].url"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The table model a key path leads to (for an unknown key: the keys it allows)."""
    model: type[BaseModel] | None = ConfigFile
    dict_key_next = False
    for part in loc:
        if isinstance(part, int):
            continue
        if dict_key_next:  # the name in topics.<name>
            dict_key_next = False
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _table_of(field.annotation)
        dict_key_next = getattr(field.annotation, "__origin__", None) is dict
    return model


def _table_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _table_of(arg)
        if found is not None:
            return found
    return None


_KINDS = {
    "list_type": "list",
    "dict_type": "table",
    "model_type": "table",
    "string_type": "str",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
}


def _path(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """An error's location without union branches' tags (`function-after[…]`, a table's model name)."""
    models = {v.__name__ for v in globals().values() if isinstance(v, type) and issubclass(v, BaseModel)}
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in str(p) and p not in models))


def describe(error: ValidationError) -> str:
    """The first error as `key.path: what is wrong`."""
    errors = error.errors(include_url=False)
    # An unknown key first: a typo (`allowed_domain`) explains the "missing" error it causes.
    e = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    if e["type"].endswith("_type"):  # a URL or a table: the branch that got into the value says what is wrong
        at = _path(tuple(e["loc"]))
        inside = (
            x for x in errors if (where := _path(tuple(x["loc"])))[: len(at)] == at and len(where) > len(at)
        )
        e = next(inside, e)
    loc, kind, value = _path(tuple(e["loc"])), e["type"], e.get("input")
    key = key_path(loc)
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        if not loc[:-1]:
            return f"{key}: unknown section (known: {', '.join(ConfigFile.model_fields)})"
        allowed = f" (allowed: {', '.join(sorted(parent.model_fields))})" if parent else ""
        return f"{key}: unknown key{allowed}"
    if kind == "missing":
        return f"{key}: missing"
    if kind == "too_short":
        return f"{key}: empty"
    if kind in ("greater_than_equal", "greater_than", "less_than"):
        limit = next(iter(e.get("ctx", {}).values()), "?")
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        words = {
            "greater_than_equal": "must be at least",
            "greater_than": "must be greater than",
            "less_than": "must be less than",
        }[kind]
        return f"{key}: {words} {limit}"
    if kind == "literal_error":
        expected = str(e.get("ctx", {}).get("expected", "")).replace("'", "")
        return f"{key}: {value!r} is not {expected}"
    if kind == "value_error":
        return f"{key}: {str(e['msg']).removeprefix('Value error, ')}"
    if kind in _KINDS or kind.endswith("_type"):
        expected = _KINDS.get(kind, kind.removesuffix("_type"))
        if isinstance(value, bool) and kind in ("int_type", "float_type"):
            return f"{key}: expected {expected}, got a boolean"
        return f"{key}: expected {expected}, got {type(value).__name__} {value!r}"
    return f"{key}: {e['msg']}"
