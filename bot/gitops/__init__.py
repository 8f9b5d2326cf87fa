"""GitOps owners: a workload Flux or Argo CD reconciles from Git reverts any
rollback within its interval unless that reconciliation is held.

- `owner.py` — who owns a workload (from its labels and annotations) and what
  that owner does to a rollback, in words;
- `holds.py` — the hold itself: the setting before it, as recorded on the
  rollback, and the patches that hold and restore it exactly;
- `planning.py` — the hold step of a rollback's plan, under the environment's
  `gitops` policy (hold, require, forbid);
- `drift.py` — what Git holds now against what runs, before a person resumes.
"""
