"""Is an Argo Rollout failing? Its own signals, as the controller reports them:
an update aborted (by a person or a failed analysis), the Rollout Degraded, the
latest AnalysisRun failed — read for the confirmation's assessment and by the
automatic trigger.

A Rollout's pods are judged by its controller and its analysis, so these
signals stand where a Deployment's pods and progress deadline stand in
`bot.assessment`; the severity words are that module's.
"""

from __future__ import annotations

from bot.argo_rollouts import AnalysisSummary, RolloutStatus
from bot.assessment import AssessmentSummary


def failure_signals(status: RolloutStatus, analysis: AnalysisSummary | None) -> list[str]:
    """What says the Rollout's update failed (empty: nothing does). Only an update
    in progress can fail: a Rollout Healthy on its stable revision has nothing to undo."""
    if not status.updating:
        return []
    signals = []
    if status.aborted:
        signals.append("the update was aborted")
    elif status.observed and status.phase == "Degraded":
        reason = status.message.partition(":")[0] or "no reason given"
        signals.append(f"the Rollout is Degraded ({reason})")
    if analysis is not None and analysis.bad:
        measured = ", ".join(
            f"{m.name} measured {m.value}" if m.value else m.name for m in analysis.failed
        )
        signals.append(f"its analysis {analysis.phase}" + (f" ({measured})" if measured else ""))
    return signals


def assess_rollout(status: RolloutStatus, analysis: AnalysisSummary | None) -> AssessmentSummary:
    """The confirmation's assessment of a Rollout: severity, recommendation, facts."""
    facts = [f"Rollout: {status.describe()}"]
    if analysis is not None:
        facts.append(f"Analysis: {analysis.describe().removeprefix('analysis ')}")
    facts.append(f"Pods: {status.ready}/{status.desired} ready")
    signals = failure_signals(status, analysis)
    if status.desired and status.ready == 0:
        return AssessmentSummary("critical", "no pod is ready: roll back now", tuple(facts))
    if signals:
        if status.aborted:
            why = "traffic is back on the stable revision; undo the spec to make it permanent"
        else:
            why = "roll back now"
        return AssessmentSummary("high", f"{'; '.join(signals)}: {why}", tuple(facts))
    if status.updating:
        return AssessmentSummary(
            "low",
            "an update is in progress with no failure reported yet: abort it if the canary "
            "misbehaves",
            tuple(facts),
        )
    return AssessmentSummary(
        "low", "no sign of trouble in the Rollout's status or analysis", tuple(facts)
    )
