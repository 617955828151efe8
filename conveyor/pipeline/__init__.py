"""Pipeline format: YAML parsing, the validated model, and how a job resolves into steps."""

from conveyor.pipeline.model import (
    BUILD_EVENTS,
    CONCURRENCY_ORDERS,
    PRIVILEGED_LABEL,
    Approval,
    ArtifactRule,
    Concurrency,
    Condition,
    Environment,
    GitSource,
    JobDef,
    Pipeline,
    ResolvedStep,
    RetryRule,
    StepDef,
    resolve_steps,
)
from conveyor.pipeline.parse import PipelineError, PipelineIssue, load_pipeline
from conveyor.pipeline.values import label_name_problem, label_value_problem

__all__ = [
    "BUILD_EVENTS",
    "CONCURRENCY_ORDERS",
    "PRIVILEGED_LABEL",
    "Approval",
    "ArtifactRule",
    "Concurrency",
    "Condition",
    "Environment",
    "GitSource",
    "JobDef",
    "Pipeline",
    "PipelineError",
    "PipelineIssue",
    "ResolvedStep",
    "RetryRule",
    "StepDef",
    "label_name_problem",
    "label_value_problem",
    "load_pipeline",
    "resolve_steps",
]
