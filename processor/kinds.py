"""Kind <-> plural-resource resolution without a cluster (docs/design.md#d10).

An audit record names the plural resource (``objectRef.resource``, e.g. ``httpproxies``); the
Activity, the link conversion and the policy index need the Kind (``HTTPProxy``). Upstream asks
the API server's discovery; this project never makes a network call per record. Sources, in
order of precedence:

1. configuration: an explicit mapping ``{"group/resource": "Kind"}`` and CRD manifests;
2. a built-in table of core Kubernetes kinds (:data:`BUILTIN_KINDS`);
3. kinds observed in traffic (the ``kind`` of a request/response object, :meth:`observe`);
4. a plural guess from every loaded policy's Kind (:meth:`add_policy_kind`).

Plural guesses (:func:`guess_plurals`): the primary guess follows the English rules CRD
generators use (``Gateway`` -> ``gateways``, ``Policy`` -> ``policies``, ``Ingress`` ->
``ingresses``); apimachinery's ``UnsafeGuessKindToResource`` result (``Gateway`` ->
``gatewaies``) is also accepted when resolving a resource, so both spellings find the kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from processor.errors import KindResolveError

__all__ = ["BUILTIN_KINDS", "KindResolver", "guess_plurals", "kind_resolve_error"]

#: Built-in ``{apiGroup: {plural: Kind}}`` of Kubernetes' own API groups.
BUILTIN_KINDS: dict[str, dict[str, str]] = {
    "": {
        "bindings": "Binding",
        "componentstatuses": "ComponentStatus",
        "configmaps": "ConfigMap",
        "endpoints": "Endpoints",
        "events": "Event",
        "limitranges": "LimitRange",
        "namespaces": "Namespace",
        "nodes": "Node",
        "persistentvolumeclaims": "PersistentVolumeClaim",
        "persistentvolumes": "PersistentVolume",
        "pods": "Pod",
        "podtemplates": "PodTemplate",
        "replicationcontrollers": "ReplicationController",
        "resourcequotas": "ResourceQuota",
        "secrets": "Secret",
        "serviceaccounts": "ServiceAccount",
        "services": "Service",
    },
    "apps": {
        "controllerrevisions": "ControllerRevision",
        "daemonsets": "DaemonSet",
        "deployments": "Deployment",
        "replicasets": "ReplicaSet",
        "statefulsets": "StatefulSet",
    },
    "batch": {"cronjobs": "CronJob", "jobs": "Job"},
    "autoscaling": {"horizontalpodautoscalers": "HorizontalPodAutoscaler"},
    "policy": {
        "poddisruptionbudgets": "PodDisruptionBudget",
        "podsecuritypolicies": "PodSecurityPolicy",
    },
    "networking.k8s.io": {
        "ingressclasses": "IngressClass",
        "ingresses": "Ingress",
        "ipaddresses": "IPAddress",
        "networkpolicies": "NetworkPolicy",
        "servicecidrs": "ServiceCIDR",
    },
    "rbac.authorization.k8s.io": {
        "clusterrolebindings": "ClusterRoleBinding",
        "clusterroles": "ClusterRole",
        "rolebindings": "RoleBinding",
        "roles": "Role",
    },
    "storage.k8s.io": {
        "csidrivers": "CSIDriver",
        "csinodes": "CSINode",
        "csistoragecapacities": "CSIStorageCapacity",
        "storageclasses": "StorageClass",
        "volumeattachments": "VolumeAttachment",
        "volumeattributesclasses": "VolumeAttributesClass",
    },
    "coordination.k8s.io": {"leasecandidates": "LeaseCandidate", "leases": "Lease"},
    "discovery.k8s.io": {"endpointslices": "EndpointSlice"},
    "events.k8s.io": {"events": "Event"},
    "admissionregistration.k8s.io": {
        "mutatingadmissionpolicies": "MutatingAdmissionPolicy",
        "mutatingadmissionpolicybindings": "MutatingAdmissionPolicyBinding",
        "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
        "validatingadmissionpolicies": "ValidatingAdmissionPolicy",
        "validatingadmissionpolicybindings": "ValidatingAdmissionPolicyBinding",
        "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
    },
    "apiextensions.k8s.io": {"customresourcedefinitions": "CustomResourceDefinition"},
    "apiregistration.k8s.io": {"apiservices": "APIService"},
    "authentication.k8s.io": {
        "selfsubjectreviews": "SelfSubjectReview",
        "tokenreviews": "TokenReview",
    },
    "authorization.k8s.io": {
        "localsubjectaccessreviews": "LocalSubjectAccessReview",
        "selfsubjectaccessreviews": "SelfSubjectAccessReview",
        "selfsubjectrulesreviews": "SelfSubjectRulesReview",
        "subjectaccessreviews": "SubjectAccessReview",
    },
    "certificates.k8s.io": {
        "certificatesigningrequests": "CertificateSigningRequest",
        "clustertrustbundles": "ClusterTrustBundle",
    },
    "scheduling.k8s.io": {"priorityclasses": "PriorityClass"},
    "node.k8s.io": {"runtimeclasses": "RuntimeClass"},
    "flowcontrol.apiserver.k8s.io": {
        "flowschemas": "FlowSchema",
        "prioritylevelconfigurations": "PriorityLevelConfiguration",
    },
    "resource.k8s.io": {
        "deviceclasses": "DeviceClass",
        "resourceclaims": "ResourceClaim",
        "resourceclaimtemplates": "ResourceClaimTemplate",
        "resourceslices": "ResourceSlice",
    },
    "gateway.networking.k8s.io": {
        "backendtlspolicies": "BackendTLSPolicy",
        "gatewayclasses": "GatewayClass",
        "gateways": "Gateway",
        "grpcroutes": "GRPCRoute",
        "httproutes": "HTTPRoute",
        "referencegrants": "ReferenceGrant",
        "tcproutes": "TCPRoute",
        "tlsroutes": "TLSRoute",
        "udproutes": "UDPRoute",
    },
    "snapshot.storage.k8s.io": {
        "volumesnapshotclasses": "VolumeSnapshotClass",
        "volumesnapshotcontents": "VolumeSnapshotContent",
        "volumesnapshots": "VolumeSnapshot",
    },
    "metrics.k8s.io": {"nodes": "NodeMetrics", "pods": "PodMetrics"},
}

# Kinds that are not the object of a resource: a response of this kind says nothing about it.
_NOT_RESOURCE_KINDS = frozenset(
    {
        "Status",
        "DeleteOptions",
        "Table",
        "WatchEvent",
        "PartialObjectMetadata",
        "Scale",
        "Eviction",
        "Binding",
        "TokenRequest",
        "APIGroup",
        "APIResourceList",
    }
)

_VOWELS = frozenset("aeiou")

#: Bound on kinds learnt from traffic, so hostile input cannot grow the table without limit.
MAX_OBSERVED = 10_000

#: Bound on the resolved-kind memo (:attr:`KindResolver._known`), for the same reason.
MAX_KNOWN = 10_000


def guess_plurals(kind: str) -> tuple[str, ...]:
    """Candidate plural resources of a Kind, most likely first.

    The first is the English plural CRD generators produce; the second, when different, is
    apimachinery's ``UnsafeGuessKindToResource`` (``s`` -> ``+es``, ``y`` -> ``ies``, else ``+s``;
    ``endpoints`` unchanged).
    """
    if not kind:
        return ()
    lower = kind.lower()
    if lower.endswith("endpoints"):
        return (lower,)
    last = lower[-1]
    if last == "s":
        k8s = lower + "es"
    elif last == "y":
        k8s = lower[:-1] + "ies"
    else:
        k8s = lower + "s"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        english = lower + "es"
    elif last == "y":
        english = lower + "s" if len(lower) > 1 and lower[-2] in _VOWELS else lower[:-1] + "ies"
    else:
        english = lower + "s"
    return (english,) if english == k8s else (english, k8s)


def kind_resolve_error(api_group: str, resource: str, reason: str) -> KindResolveError:
    """A :class:`KindResolveError` whose ``reason``/``resource``/``api_group`` are attributes."""
    err = KindResolveError(f'resource "{resource}" in apiGroup "{api_group}": {reason}')
    err.api_group = api_group  # type: ignore[attr-defined]
    err.resource = resource  # type: ignore[attr-defined]
    err.reason = reason  # type: ignore[attr-defined]
    return err


def _split_key(key: str) -> tuple[str, str]:
    group, sep, resource = key.rpartition("/")
    return (group, resource) if sep else ("", key)


class KindResolver:
    """Maps ``(apiGroup, plural resource)`` to a Kind and back, from local sources only.

    Thread-safety: lookups only read dicts; :meth:`observe` adds entries (a dict store is atomic
    under the GIL). Configure it (mapping, CRDs, policy kinds) before sharing it.

    The kinds found are memoised by ``(apiGroup, resource)`` (:attr:`_known`), so a hit costs
    one dict lookup (link conversion resolves once per link of every Activity); every change of
    a source replaces the memo with an empty one, so it never answers what the sources would not.
    """

    def __init__(
        self,
        mapping: Mapping[str, str] | None = None,
        crd_manifests: Iterable[Mapping[str, Any]] = (),
        *,
        builtin: bool = True,
    ) -> None:
        """Create a resolver.

        Args:
            mapping: ``{"group/resource": "Kind"}``; the core group is ``"/pods"`` or ``"pods"``.
            crd_manifests: CustomResourceDefinition manifests (see :meth:`add_crd_manifest`).
            builtin: include :data:`BUILTIN_KINDS`.
        """
        # One (resource -> kind) and one (kind -> resource) dict per source, keyed by
        # (group, name); lookups try the sources in precedence order.
        self._explicit: dict[tuple[str, str], str] = {}
        self._explicit_rev: dict[tuple[str, str], str] = {}
        self._builtin: dict[tuple[str, str], str] = {}
        self._builtin_rev: dict[tuple[str, str], str] = {}
        self._observed: dict[tuple[str, str], str] = {}
        self._observed_rev: dict[tuple[str, str], str] = {}
        self._guessed: dict[tuple[str, str], str] = {}
        self._guessed_rev: dict[tuple[str, str], str] = {}
        # (group, resource) -> the Kind the sources give; replaced (not cleared) when they change,
        # so a lookup racing a change stores into the discarded memo.
        self._known: dict[tuple[str, str], str] = {}
        if builtin:
            for group, table in BUILTIN_KINDS.items():
                for resource, kind in table.items():
                    self._builtin[(group, resource)] = kind
                    self._builtin_rev.setdefault((group, kind), resource)
        for key, kind in (mapping or {}).items():
            group, resource = _split_key(key)
            self.add_mapping(group, resource, kind)
        for manifest in crd_manifests:
            self.add_crd_manifest(manifest)

    def add_mapping(self, api_group: str, resource: str, kind: str) -> None:
        """Add an explicit ``(group, resource) -> Kind`` (highest precedence; last one wins)."""
        if not resource or not kind:
            raise ValueError(f"mapping {api_group}/{resource}: resource and kind must be non-empty")
        self._explicit[(api_group, resource)] = kind
        self._explicit_rev[(api_group, kind)] = resource
        self._known = {}

    def add_crd_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Add a CustomResourceDefinition: ``spec.group``, ``spec.names.plural`` and ``kind``.

        Raises:
            ValueError: the manifest lacks the group, plural or kind.
        """
        spec = manifest.get("spec") if isinstance(manifest, Mapping) else None
        names = spec.get("names") if isinstance(spec, Mapping) else None
        group = spec.get("group") if isinstance(spec, Mapping) else None
        plural = names.get("plural") if isinstance(names, Mapping) else None
        kind = names.get("kind") if isinstance(names, Mapping) else None
        if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str)):
            name = (
                manifest.get("metadata", {}).get("name", "")
                if isinstance(manifest, Mapping)
                else ""
            )
            raise ValueError(
                f"CRD manifest {name!r}: spec.group, spec.names.plural and spec.names.kind "
                "are required"
            )
        self.add_mapping(group, plural, kind)

    def add_policy_kind(self, api_group: str, kind: str) -> None:
        """Register a policy's Kind: its guessed plurals resolve to it (lowest precedence)."""
        plurals = guess_plurals(kind)
        if not plurals:
            return
        for plural in plurals:
            self._guessed.setdefault((api_group, plural), kind)
        self._guessed_rev.setdefault((api_group, kind), plurals[0])
        self._known = {}

    def observe(self, api_group: str, resource: str, kind: str) -> None:
        """Learn ``(group, resource) -> kind`` seen in traffic; the first observation sticks."""
        if not resource or not kind or len(self._observed) >= MAX_OBSERVED:
            return
        key = (api_group, resource)
        if key not in self._observed:
            self._observed[key] = kind
            self._observed_rev.setdefault((api_group, kind), resource)
            self._known = {}

    def observe_audit(self, audit: Mapping[str, Any]) -> None:
        """Learn from a decoded audit event: ``objectRef`` plus the response object's ``kind``.

        Only main-resource requests whose response object belongs to the same API group and is
        not a Status, list or other non-resource kind are used.
        """
        ref = audit.get("objectRef")
        obj = audit.get("responseObject")
        if type(ref) is not dict or type(obj) is not dict or "subresource" in ref:
            return
        kind = obj.get("kind")
        version = obj.get("apiVersion")
        resource = ref.get("resource")
        if type(kind) is not str or type(version) is not str or type(resource) is not str:
            return
        if kind in _NOT_RESOURCE_KINDS or kind.endswith("List"):
            return
        group = ref.get("apiGroup", "")
        if version.rpartition("/")[0] != group:
            return
        key = (group, resource)
        if key in self._explicit or key in self._builtin or key in self._observed:
            return
        self.observe(group, resource, kind)

    def lookup(self, api_group: str, resource: str) -> str | None:
        """The Kind of ``(group, resource)``, or None when no source knows it."""
        key = (api_group, resource)
        known = self._known
        kind = known.get(key)
        if kind is None:
            kind = self._search(api_group, resource)
            if kind is not None and len(known) < MAX_KNOWN:
                known[key] = kind
        return kind

    def _search(self, api_group: str, resource: str) -> str | None:
        """:meth:`lookup` in the sources themselves, in precedence order."""
        key = (api_group, resource)
        kind = (
            self._explicit.get(key)
            or self._builtin.get(key)
            or self._observed.get(key)
            or self._guessed.get(key)
        )
        if kind is None and not resource.islower():
            return self._search(api_group, resource.lower()) if resource else None
        return kind

    def resolve(self, api_group: str, resource: str) -> str:
        """The Kind of a plural resource.

        Raises:
            KindResolveError: no source knows the resource; ``reason``, ``resource`` and
                ``api_group`` are set on the error.
        """
        kind = self._known.get((api_group, resource))
        if kind is None:
            kind = self.lookup(api_group, resource)
        if kind is None:
            raise kind_resolve_error(
                api_group, resource, "no kind is known for it (add a mapping or CRD manifest)"
            )
        return kind

    __call__ = resolve

    def kind_to_resource(self, api_group: str, kind: str) -> str:
        """The plural resource of a Kind (for the audit policy index).

        Known sources first, in the same precedence; otherwise the primary plural guess.

        Raises:
            KindResolveError: ``kind`` is empty.
        """
        key = (api_group, kind)
        resource = (
            self._explicit_rev.get(key)
            or self._builtin_rev.get(key)
            or self._observed_rev.get(key)
            or self._guessed_rev.get(key)
        )
        if resource is not None:
            return resource
        plurals = guess_plurals(kind)
        if not plurals:
            raise KindResolveError(f'kind "" in apiGroup "{api_group}": the kind is empty')
        return plurals[0]
