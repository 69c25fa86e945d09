"""``activity serve``: upstream's Activity API (``activity.miloapis.com/v1alpha1``) over HTTP(S),
so ``kubectl`` and the upstream clients read the stored timelines (``docs/api.md``).

The query layer under it is the CLI's (:mod:`processor.query`); this package adds the Kubernetes
API conventions: discovery, create-only query resources, list/get/watch, Table output, ``Status``
errors and the caller's tenancy scope.
"""
