"""Errors of the orchestrator. Each docstring is the error's default message."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.domain.models import ServerLimits


class AgencyError(Exception):
    """Agency failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadInput(AgencyError):
    """The input is not valid."""


class PlanError(BadInput):
    """The plan breaks the plan contract."""


class NotFound(BadInput):
    """No such project or task."""


class StoreError(AgencyError):
    """The store could not complete the operation."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; retry later."""


class Stale(AgencyError):
    """This attempt no longer holds its task or project: a newer attempt took over."""


class ConfigError(BadInput):
    """The configuration is not valid."""


class Unavailable(AgencyError):
    """A service Agency needs cannot be reached."""


class ModelError(AgencyError):
    """The model failed to give a usable answer."""


class ModelRefused(ModelError):
    """The model refused or the API rejected the request; retrying will not help."""

    def __init__(self, message: str | None = None, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class ContextOverflow(ModelRefused):
    """The prompt is over the model's context window (the API's 400 "prompt is too long"):
    the conversation must shrink before it is sent again."""


class InvalidAnswer(ModelError):
    """The model's answer was not valid, even after repair rounds; the work fails for good."""


class CallCapReached(ModelError):
    """The task has used every model call it is allowed; it fails for good."""


class TransientModelError(ModelError):
    """The model API is temporarily unavailable; retry later."""

    def __init__(self, message: str | None = None, retry_after: float | None = None, *,
                 rate_limited: bool = False, limits: ServerLimits | None = None,
                 lost: bool = False, request_id: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited  # a 429: the organisation's rate limit, not an outage
        self.limits = limits
        # It reached the API and gave no answer (a timeout, a broken stream): the model may
        # have generated, and billed, part of one.
        self.lost = lost
        self.request_id = request_id


class BudgetExhausted(AgencyError):
    """The project's token budget is spent."""


class ProjectCancelled(AgencyError):
    """The project was cancelled: no new model call starts for it (a call in flight finishes
    and is recorded)."""


class TaskNotReady(AgencyError):
    """A task's dependencies are not all completed."""


class NotRunnable(AgencyError):
    """The message will not run: its task or project is not waiting for it (a duplicate)."""


class HeldElsewhere(AgencyError):
    """Another attempt holds the task: this (duplicate) message waits until it has ended.

    Ignoring it instead would strand a chord whose header it belongs to; once the task has
    completed, the message succeeds and its canvas carries on.
    """


class AttemptFailed(AgencyError):
    """A claimed attempt ended with an error: the cause, and the claim that held the work."""

    def __init__(self, project_id: str, claim: object, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.project_id, self.claim, self.cause = project_id, claim, cause


class UnsafeArtifactPath(AgencyError):
    """An artifact would have been written outside its folder."""


class IllegalMove(AgencyError):
    """The status move is not in the lifecycle table: a programming error."""


class Parked(Exception):  # not an AgencyError: the work waits, holding no thread
    """The task waits for something outside it (a person's answer, a review, a batch).

    Its park is written in the store before this is raised; the event that ends the wait
    dispatches the task again. `review_round`: the review round it waits for (the caller
    sends the reviewer's message), else None.
    """

    def __init__(self, waits_for: str, review_round: int | None = None) -> None:
        super().__init__(waits_for)
        self.waits_for, self.review_round = waits_for, review_round
