"""Every name the system shares: agent types (which are also queue names), statuses, enums."""

from __future__ import annotations

import socket
from enum import StrEnum

# Statuses, and the sets of them other code needs, live with their legal moves.
from orchestrator.domain.lifecycle import HELD_STATUSES as HELD_STATUSES
from orchestrator.domain.lifecycle import TERMINAL_PROJECT_STATUSES as TERMINAL_PROJECT_STATUSES
from orchestrator.domain.lifecycle import ProjectStatus as ProjectStatus
from orchestrator.domain.lifecycle import TaskStatus as TaskStatus


class AgentType(StrEnum):
    """A specialist agent type; its value is also the name of its Celery queue."""

    MARKETING = "marketing"
    FRONTEND_DEVELOPER = "frontend_developer"
    BACKEND_DEVELOPER = "backend_developer"
    MOBILE_DEVELOPER = "mobile_developer"
    DEVOPS_ENGINEER = "devops_engineer"
    DATA_ANALYST = "data_analyst"
    UX_DESIGNER = "ux_designer"
    PROJECT_MANAGER = "project_manager"
    QA_ENGINEER = "qa_engineer"
    CONTENT_WRITER = "content_writer"


ORCHESTRATOR_QUEUE = "orchestrator"
ALL_QUEUES: tuple[str, ...] = (ORCHESTRATOR_QUEUE, *(a.value for a in AgentType))


class ProjectType(StrEnum):
    WEBSITE = "website"
    MOBILE_APP = "mobile_app"
    MARKETING_CAMPAIGN = "marketing_campaign"
    DATA_ANALYSIS = "data_analysis"
    CONTENT_CREATION = "content_creation"
    CUSTOM = "custom"


class Complexity(StrEnum):
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    ENTERPRISE = "enterprise"


# Token budgets per complexity: the least a planned project gets (its plan's need, below,
# when larger). A cache read counts a tenth of a token (models.Tokens.budgeted).
BUDGET_SCALE = 4
COMPLEXITY_BUDGETS: dict[Complexity, int] = {
    Complexity.SIMPLE: 50_000 * BUDGET_SCALE,
    Complexity.MODERATE: 150_000 * BUDGET_SCALE,
    Complexity.COMPLEX: 300_000 * BUDGET_SCALE,
    Complexity.ENTERPRISE: 500_000 * BUDGET_SCALE,
}
# A project without --budget gets, once planned, what its plan needs (estimates.plan_budget):
# the tokens planning spent, plus each task's estimate times what a task really spends per
# token estimated (its agent's turns and tool loops, reviews, revisions, checks, its share
# of integration) times BUDGET_HEADROOM, between BUDGET_FLOOR and BUDGET_CEILING.
# The ratio comes from the latest CALIBRATE_ON completed projects of the store (the median
# of theirs, once there are CALIBRATE_MIN), else SPEND_RATIO: above what was measured
# (bench/budgets.py, docs/benchmarks.md: the 60-task plan's tasks, estimated at 4,000 tokens,
# spent 2.4 times that on the offline model and 3.1 times through the SDK and the test server).
SPEND_RATIO = 4.0
SPEND_RATIO_BOUNDS = (0.25, 100.0)  # a calibration outside these is a broken ledger, not data
CALIBRATE_ON = 20
CALIBRATE_MIN = 3
BUDGET_HEADROOM = 2.0
BUDGET_FLOOR = 200_000
BUDGET_CEILING = 100_000_000
# The largest --budget taken: far above any real project, and far below the 2**63 a database
# integer holds (a budget is added to and compared with sums of tokens).
MAX_BUDGET = 10**12
# The most rows `agency list --limit` asks for (a database takes no limit of 2**63 or more).
MAX_LIST_LIMIT = 100_000


class TaskPriority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Role(StrEnum):
    """Why a model call was made; picks the model and is recorded in the usage ledger."""

    ANALYZE = "analyze"
    DECOMPOSE = "decompose"
    AGENT = "agent"
    REVIEW = "review"
    INTEGRATE = "integrate"
    OPTIMIZE = "optimize"  # `agency stats --llm`: advice on the fleet, no project's ledger
    # One short call with the agents' shared prefix before several of them start at once, so
    # that they read it from the cache instead of each writing it (the agent model's).
    WARMUP = "warmup"


class CallOutcome(StrEnum):
    """How a model call ended, as its ledger row says."""

    ANSWERED = "answered"
    # Timed out or lost its connection while the model may have been generating: possibly
    # billed, tokens unknown.
    LOST = "lost"


class LLMKind(StrEnum):
    ANTHROPIC = "anthropic"
    OFFLINE = "offline"
    AUTO = "auto"


class Dimension(StrEnum):
    """What an Anthropic rate limit counts, per minute and per model; the value names its
    `anthropic-ratelimit-<value>-*` headers and its bucket in Redis."""

    REQUESTS = "requests"
    INPUT_TOKENS = "input-tokens"
    OUTPUT_TOKENS = "output-tokens"


# Critical path first when workers are scarce: an agent task's message carries its priority
# (from its slack against the plan's critical path), and a worker takes the most urgent
# message of its queue first. Redis keeps a list per step (kombu's steps 0, 3, 6, 9; 0 first).
MESSAGE_PRIORITY = {TaskPriority.CRITICAL: 0, TaskPriority.HIGH: 3, TaskPriority.NORMAL: 6,
                    TaskPriority.LOW: 9}

# Planning of a new project waits behind integration (and any other orchestrator work) on a
# busy `orchestrator` queue: with Redis, 0 is the highest priority and the default.
PLAN_PRIORITY = 6

# The Celery event an agent task sends as it works (`step`: what it is doing).
PROGRESS_EVENT = "agency-progress"

# Celery task names.
PLAN_TASK = "agency.orchestrator.plan"
INTEGRATE_TASK = "agency.orchestrator.integrate"


def agent_task_name(agent: AgentType) -> str:
    """The Celery task name for an agent type, so Flower shows which specialist ran it."""
    return f"agency.agent.{agent.value}"


def review_task_name(reviewer: str) -> str:
    """The Celery task name of a review by `reviewer` (a queue: qa_engineer, orchestrator):
    reviews run on the reviewer's own pool."""
    return f"agency.review.{reviewer}"


MAX_REQUEST_CHARS = 20_000
# `ID` and `TASK` on the command line: a full id, or a unique prefix at least this long.
MIN_ID_PREFIX = 4
MAX_PLAN_TASKS = 60

# Connections across machines (celeryconfig.py, the rate limit's Redis, the store's pool): a
# Redis connection idle this long is PINGed before use (and replaced if the PING fails), and
# TCP keepalive (idle seconds, probe interval, probes) finds a dead peer of an idle one.
REDIS_HEALTH_CHECK = 10
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3
SEND_TIMEOUT_MS = 20_000  # TCP_USER_TIMEOUT: data unacknowledged this long fails the connection
KEEPALIVE = {socket.TCP_KEEPIDLE: KEEPALIVE_IDLE, socket.TCP_KEEPINTVL: KEEPALIVE_INTERVAL,
             socket.TCP_KEEPCNT: KEEPALIVE_COUNT, socket.TCP_USER_TIMEOUT: SEND_TIMEOUT_MS}
# The remote control command by which a worker says how its store connections are.
STORE_HEALTH_COMMAND = "agency_store"
REDIS_SOCKET_TIMEOUT = 5  # seconds: a Redis command (or connect) that takes longer fails over
# Every Redis client of our own (the broker epoch, the rate limit) is made with these.
REDIS_CLIENT_OPTIONS = {"socket_timeout": REDIS_SOCKET_TIMEOUT,
                        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                        "health_check_interval": REDIS_HEALTH_CHECK, "socket_keepalive": True,
                        "socket_keepalive_options": KEEPALIVE, "retry_on_timeout": True}


def redis_client_options(url: str) -> dict[str, object]:
    """REDIS_CLIENT_OPTIONS for `url`; a unix socket takes no TCP options."""
    if url.startswith("unix://"):
        return {k: v for k, v in REDIS_CLIENT_OPTIONS.items()
                if k not in ("socket_keepalive", "socket_keepalive_options")}
    return REDIS_CLIENT_OPTIONS
