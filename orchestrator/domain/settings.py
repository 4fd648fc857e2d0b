"""The one place that reads the environment."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from orchestrator.domain.catalog import DEFAULT_PRICES, Price, longest_prefix
from orchestrator.domain.constants import ALL_QUEUES, ORCHESTRATOR_QUEUE, AgentType, LLMKind, Role
from orchestrator.domain.errors import ConfigError

# Threads per worker process for each queue; one place, read by `agency worker` and the Procfile.
# Agents wait on the network, so a thread is cheap (its stack is touched only as deep as it
# goes); 16 per agent queue keep a fan-out moving on a laptop. A big box raises them with
# AGENCY_CONCURRENCY (docs/scaling.md: a hundred per queue, a thousand calls in flight).
DEFAULT_CONCURRENCY: dict[str, int] = {ORCHESTRATOR_QUEUE: 4, **{a.value: 16 for a in AgentType}}

# JSON tables are decoded by `_json_object`, so that a bad one is a validation error naming its
# variable rather than a parse error deep inside the settings source.
PriceTable = Annotated[dict[str, Price], NoDecode]
ConcurrencyTable = Annotated[dict[str, Annotated[int, Field(ge=1)]], NoDecode]


ReviewedAgents = Annotated[tuple[AgentType, ...], NoDecode]

Effort = Literal["off", "low", "medium", "high", "xhigh", "max"]
EffortTable = Annotated[dict[Role, Effort], NoDecode]
# Planning, reviews and integration think; an agent's own work and the analysis do not (the
# reviewer checks the agent). AGENCY_EFFORT overrides the roles it names.
DEFAULT_EFFORT: dict[Role, Effort] = {
    Role.ANALYZE: "off", Role.DECOMPOSE: "medium", Role.AGENT: "off", Role.REVIEW: "low",
    Role.INTEGRATE: "medium", Role.OPTIMIZE: "off"}


class RateLimit(BaseModel):
    """An organisation's Anthropic limits for a model (per minute; unset: not limited here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rpm: int | None = Field(default=None, ge=1)
    itpm: int | None = Field(default=None, ge=1)
    otpm: int | None = Field(default=None, ge=1)


RateLimitTable = Annotated[dict[str, RateLimit], NoDecode]


class Settings(BaseSettings):
    """Agency configuration from `AGENCY_*` variables and the Anthropic SDK's own."""

    model_config = SettingsConfigDict(env_prefix="AGENCY_", extra="ignore", frozen=True)

    broker_url: str | None = None
    result_backend: str | None = None
    database_url: str | None = None
    llm: LLMKind = LLMKind.AUTO
    orchestrator_model: str = "claude-sonnet-5-5"
    agent_model: str = "claude-haiku-5-5"
    # Adaptive thinking per role, where it pays: an effort (low, medium, high, xhigh, max) or
    # "off". A model that always thinks thinks at "low" where this says off.
    effort: EffortTable = Field(default_factory=lambda: dict(DEFAULT_EFFORT))
    # The prompt cache's life for the project prefix: "auto" (an hour when the project's work
    # is estimated to span more than five minutes), "5m" or "1h".
    cache_ttl: Literal["auto", "5m", "1h"] = "auto"
    # Warm the project prefix with one short call before a fan-out of agents, so they read it.
    cache_warmup: bool = True
    offline_latency: float = Field(default=0.0, ge=0.0)
    offline_latency_spread: float = Field(default=0.0, ge=0.0, lt=1.0)
    output_dir: Path = Path("agency-output")
    home: Path = Path(".agency")
    embedded_concurrency: int = Field(default=16, ge=1, le=64)
    # PostgreSQL connections per process. A connection is held for one statement or one short
    # transaction, never across a model call, so a few serve a hundred threads; the topology
    # of 11 processes opens at most 11 x this (PostgreSQL allows 100 by default).
    db_pool_size: int = Field(default=4, ge=1, le=100)
    # Seconds a connection may sit unused before the process gives it back (one per period),
    # so that a small server's connections go to the processes that have work.
    db_pool_idle: float = Field(default=10.0, ge=1.0, le=3600.0)
    # AGENCY_DATABASE_URL names a PgBouncer in transaction mode: no prepared statements (it
    # cannot keep them before 1.21) and no session settings at connect (it refuses `options`).
    db_pgbouncer: bool = False
    # Seconds an agent's question waits for `agency answer` before the agent goes on with the
    # assumption it stated.
    question_timeout: float = Field(default=600.0, gt=0.0, le=7 * 24 * 3600)
    # Economy mode for every project (`agency run --economy` for one): agents' turns with
    # enough slack go through the Message Batches API at half price; a turn goes live when its
    # task's slack is less than the expected batch turnaround (seconds).
    economy: bool = False
    batch_turnaround: float = Field(default=3600.0, gt=0.0, le=24 * 3600)
    # A project whose plan is estimated above this many dollars waits for `agency approve`.
    approval_above_usd: float | None = Field(default=None, ge=0.0)
    # Self-healing: an attempt renews its lease while it works; the reconciler re-runs what a
    # dead worker held (within lease + interval seconds) and re-sends what the broker lost.
    lease_seconds: float = Field(default=20.0, ge=1.0, le=3600.0)
    reconcile_interval: float = Field(default=5.0, gt=0.0, le=600.0)
    # Every model call a task makes (tool turns, reviews, repairs, retries, over all its
    # attempts) counts against this.
    max_model_calls: int = Field(default=60, ge=1, le=500)
    # One agent's tool loop: model turns per answer, and tokens per task (then it must answer).
    agent_max_turns: int = Field(default=8, ge=1, le=50)
    agent_max_tokens: int = Field(default=200_000, ge=1000)
    # Which agent types' outputs are reviewed before their dependents start, and how many
    # times a "revise" verdict sends the work back (after the last, the work goes on as is).
    reviewed_agents: ReviewedAgents = Field(default_factory=lambda: tuple(AgentType))
    review_rounds: int = Field(default=2, ge=0, le=10)
    # Checks: each review round first runs the artifacts (orchestrator/checks): a failed
    # check sends the work back whatever the reviewing model says. Limits of one sandboxed
    # run (pytest on the project's Python tests), and the browser that loads HTML pages
    # (unset: `chromium` on PATH, then Playwright's own).
    checks: bool = True
    check_seconds: float = Field(default=60.0, gt=0.0, le=3600.0)
    check_memory_mb: int = Field(default=1024, ge=64, le=65536)
    check_processes: int = Field(default=64, ge=4, le=4096)
    chromium: str | None = None
    # Seconds the journal of a completed or cancelled project keeps every turn; then each of
    # its conversations keeps only its last turn (the reconciler compacts it; `agency db
    # compact` does it now).
    journal_retention: float = Field(default=7 * 24 * 3600.0, ge=0.0)
    # How long a worker keeps trying to save a paid answer while the database is unreachable.
    store_retry_seconds: float = Field(default=120.0, ge=0.0)
    # Redis redelivers a message its consumer never acknowledged after this many seconds (a
    # message held by a dead worker before it claimed its task); leases cover claimed tasks.
    visibility_timeout: int = Field(default=600, ge=30)
    prices: PriceTable = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    concurrency: ConcurrencyTable = Field(default_factory=lambda: dict(DEFAULT_CONCURRENCY))

    anthropic_api_key: SecretStr | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(default=None, validation_alias="ANTHROPIC_BASE_URL")
    # Seconds to wait for a non-streamed answer, or between two events of a streamed one;
    # connecting gives up sooner.
    anthropic_timeout: float = Field(default=300.0, gt=0)
    anthropic_connect_timeout: float = Field(default=10.0, gt=0)
    model_attempts: int = Field(default=8, ge=1, le=20)
    model_backoff: float = Field(default=1.0, ge=0)
    model_max_backoff: float = Field(default=60.0, ge=0)
    # The shared rate limit (orchestrator/llm/ratelimit.py): limits by model-id prefix, where
    # its buckets live, and the output tokens a call is admitted on (unset: its max_tokens,
    # as the API counts it). The response headers lower a limit, or set one never configured.
    rate_limit_enabled: bool = True
    rate_limits: RateLimitTable = Field(default_factory=dict)
    rate_limit_redis: str | None = None
    rate_limit_output_estimate: int | None = Field(default=None, ge=1)

    flower_basic_auth: SecretStr | None = Field(default=None, validation_alias="FLOWER_BASIC_AUTH")
    flower_port: int = Field(default=5555, validation_alias="FLOWER_PORT")
    flower_address: str = Field(default="127.0.0.1", validation_alias="FLOWER_ADDRESS")

    @field_validator("prices", "concurrency", "rate_limits", "effort", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        """A table from the environment is JSON text; the defaults are already dicts."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from exc

    @field_validator("reviewed_agents", mode="before")
    @classmethod
    def _agent_list(cls, value: object) -> object:
        """`all`, `none` (or empty), or agent type ids separated by commas."""
        if not isinstance(value, str):
            return value
        names = [n.strip().lower() for n in value.replace(" ", ",").split(",") if n.strip()]
        if names == ["all"]:
            return tuple(AgentType)
        if names in ([], ["none"]):
            return ()
        if {"all", "none"} & set(names):
            raise ValueError("all and none stand alone; otherwise list agent type ids")
        unknown = [n for n in names if n not in {a.value for a in AgentType}]
        if unknown:
            raise ValueError(f"unknown agent type {unknown[0]!r}; use all, none, or ids "
                             f"among {', '.join(a.value for a in AgentType)}")
        return tuple(AgentType(n) for n in names)

    @field_validator("prices")
    @classmethod
    def _merge_prices(cls, value: dict[str, Price]) -> dict[str, Price]:
        """AGENCY_PRICES adds or replaces models; the others keep their default prices."""
        return {**DEFAULT_PRICES, **value}

    @field_validator("effort")
    @classmethod
    def _merge_effort(cls, value: dict[Role, Effort]) -> dict[Role, Effort]:
        return {**DEFAULT_EFFORT, **value}

    @model_validator(mode="after")
    def _priced(self) -> Settings:
        """Both models must have a price, or the ledger would call their work free and no
        budget or approval threshold would ever stop it."""
        for field in ("orchestrator_model", "agent_model"):
            model = getattr(self, field)
            if longest_prefix(self.prices, model) is None:
                raise ValueError(f"{_variable(field)}: model {model!r} has no price; use a "
                                 "model the price table knows (docs/claude.md) or give its "
                                 "price in AGENCY_PRICES")
        return self

    @field_validator("concurrency")
    @classmethod
    def _merge_concurrency(cls, value: dict[str, int]) -> dict[str, int]:
        """A partial table (`{"frontend_developer": 8}`) overrides only the queues it names."""
        unknown = sorted(set(value) - set(ALL_QUEUES))
        if unknown:
            raise ValueError(f"unknown queue {unknown[0]!r}; the queues are "
                             f"{', '.join(ALL_QUEUES)}")
        return {**DEFAULT_CONCURRENCY, **value}

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: workers run as threads inside the CLI."""
        return not self.broker_url

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "memory://"

    @property
    def effective_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "cache+memory://"

    @property
    def effective_rate_limit_redis(self) -> str | None:
        """Where the shared rate limit's buckets live: the broker's Redis unless told; None
        (buckets in this process) without Redis."""
        if self.rate_limit_redis:
            return self.rate_limit_redis
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'agency.db'}"

    @property
    def llm_kind(self) -> LLMKind:
        """The provider in use: `auto` means Anthropic when an API key is set."""
        if self.llm is LLMKind.AUTO:
            return LLMKind.ANTHROPIC if self.anthropic_api_key else LLMKind.OFFLINE
        return self.llm


def _variable(field: str) -> str:
    """The environment variable a settings field is read from."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field  # already the alias, such as FLOWER_PORT
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"AGENCY_{field.upper()}"


def settings_line(exc: ValidationError) -> str:
    """A settings validation error as one line: the variable, what is wrong, how many more."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    more = exc.error_count() - 1
    tail = f" (and {more} more)" if more else ""
    if not first["loc"]:  # a check of the whole (`_priced`): its message names the variable
        return message + tail
    # A bad key of a table is located at ("table", "key", "[key]"): the key is enough.
    field, *inner = [str(part) for part in first["loc"] if part != "[key]"]
    where = f" ({'.'.join(inner)})" if inner else ""
    return f"{_variable(field)}{where}: {message}{tail}"


def env_file() -> Path | None:
    """The dotenv file the settings read under the environment: `AGENCY_ENV_FILE`, else `.env`
    in the current directory (what honcho reads), so a second terminal that did not source it
    sees the same broker and store; an empty AGENCY_ENV_FILE reads none."""
    name = os.environ.get("AGENCY_ENV_FILE", ".env")
    if not name:
        return None
    path = Path(name)
    if "AGENCY_ENV_FILE" in os.environ and not path.is_file():
        raise ConfigError(f"AGENCY_ENV_FILE: {name} is not a file")
    return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (variables win over the dotenv file); an invalid
    environment is a ConfigError."""
    try:
        return Settings(_env_file=env_file())
    except ValidationError as exc:
        # The input is left out on purpose: it may be a key or a password.
        raise ConfigError(settings_line(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"the environment could not be read: {exc}") from None
