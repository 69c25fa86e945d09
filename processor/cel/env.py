"""The two CEL environments of ActivityPolicy rules (docs/design.md#policy-engine-2-1,
#policy-engine-2-2, #d11)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from processor.cel.types import DYN_MAP, STRING, CelType


@dataclass(frozen=True)
class Environment:
    """The declared variables of one rule type; functions are the shared standard library."""

    name: str
    variables: Mapping[str, CelType]
    hint: str

    def describe(self) -> str:
        """The variables, as listed in error messages."""
        return ", ".join(f"{n} ({t})" for n, t in self.variables.items())


AUDIT_ENV = Environment(
    "audit",
    {"audit": DYN_MAP, "actor": STRING, "actorRef": DYN_MAP, "kind": STRING},
    "For audit rules: audit.verb, audit.objectRef.{apiGroup,resource,subresource,namespace,name}, "
    "audit.user.{username,groups,extra}, audit.responseStatus.code, audit.requestObject, "
    "audit.responseObject, actor, actorRef.{type,name}, kind (the plural resource)",
)
EVENT_ENV = Environment(
    "event",
    {"event": DYN_MAP, "actor": STRING, "actorRef": DYN_MAP, "source": DYN_MAP},
    "For event rules: event.reason, event.type, event.note, event.action, "
    "event.regarding.{apiVersion,kind,name,namespace,uid}, event.metadata.annotations, "
    "event.reportingController, actor, actorRef.{type,name}, "
    "source.{planeType,cluster,region,city}",
)
ENVIRONMENTS = {"audit": AUDIT_ENV, "event": EVENT_ENV}
FUNCTION_HINT = "link(displayText, resourceRef)"
