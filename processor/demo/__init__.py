"""The ``activity demo`` scenario: a half hour of a small platform team's cluster, as records.

:func:`scenario` returns audit events and Kubernetes Events in time order; most of them are the
system noise a real cluster produces (leases, status writes, reads), a few dozen become activities
with the bundled policies. See :mod:`processor.demo.scenario`.
"""

from processor.demo.scenario import ScenarioRecord, scenario

__all__ = ["ScenarioRecord", "scenario"]
