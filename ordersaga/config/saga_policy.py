"""The saga policy section: step deadlines and retries, whose defaults are ``Policy``'s own."""

from __future__ import annotations

from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings

from ordersaga.config.fields import SECTION_CONFIG
from ordersaga.saga.state import Policy

# The numbers are written once, in the pure Policy; the settings only let the
# environment change them.
DEFAULT_POLICY: Final = Policy()


class SagaPolicySettings(BaseSettings):
    """How long a saga step may take and how often it is tried."""

    model_config = SECTION_CONFIG

    step_timeout_s: float = Field(
        default=DEFAULT_POLICY.step_timeout_s,
        gt=0,
        description="Deadline of a step's first send (doubling per retry), seconds",
    )
    # A late step still queued moves its deadline instead (Temporal's
    # schedule-to-start): a participant that never starts it still fails the step.
    step_queue_timeout_s: float = Field(
        default=DEFAULT_POLICY.queue_timeout_s,
        gt=0,
        description="Longest a step's command may wait in a busy participant's queue, seconds",
    )
    step_max_attempts: int = Field(
        default=DEFAULT_POLICY.step_max_attempts,
        ge=1,
        description="Sends of a forward step before it counts as timed out",
    )
    # It is still retried after that.
    compensation_stuck_after: int = Field(
        default=DEFAULT_POLICY.compensation_stuck_after,
        ge=1,
        description="Failed attempts after which a compensation is reported COMPENSATION_STUCK",
    )

    def saga_policy(self) -> Policy:
        """The orchestrator's policy with these settings (the rest as ``Policy`` has it)."""
        return Policy(
            step_timeout_s=self.step_timeout_s,
            step_max_attempts=self.step_max_attempts,
            compensation_stuck_after=self.compensation_stuck_after,
            queue_timeout_s=self.step_queue_timeout_s,
        )
