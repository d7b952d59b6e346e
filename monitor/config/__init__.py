"""The configuration: one TOML file, one schema, errors that name the key path."""

from policywatch.monitor.config.model import (
    DEFAULT_FILE,
    ENV_VAR,
    ArchiveSettings,
    Config,
    ConfigError,
    CrawlSettings,
    Discovery,
    Rule,
    Watch,
    find_config_path,
    load_config,
    parse_config,
)
from policywatch.monitor.config.ops import MailSettings, Schedule, ScheduleJob, Subscriber
from policywatch.monitor.detection.topics import BUILTIN_TOPICS, INNOVATION_STREAM, Topic

__all__ = [
    "ArchiveSettings",
    "BUILTIN_TOPICS",
    "DEFAULT_FILE",
    "ENV_VAR",
    "INNOVATION_STREAM",
    "Config",
    "ConfigError",
    "CrawlSettings",
    "Discovery",
    "MailSettings",
    "Rule",
    "Schedule",
    "ScheduleJob",
    "Subscriber",
    "Topic",
    "Watch",
    "find_config_path",
    "load_config",
    "parse_config",
]
