#!/bin/sh
# Entrypoint of both containers of a worker pod: derive --partitions from the pod ordinal.
#
# Pod <name>-<i> of WORKER_REPLICAS pods owns the contiguous partitions
#   [i * ACTIVITY_PARTITION_COUNT / WORKER_REPLICAS, (i + 1) * ACTIVITY_PARTITION_COUNT / WORKER_REPLICAS)
# e.g. 8 partitions, 2 replicas: pod -0 owns 0-3, pod -1 owns 4-7 (the split `activity loadtest`
# uses). The worker and its reconciler sidecar own the same partitions.
# Usage: worker-entrypoint.sh run|reconcile [more activity flags]
set -eu
: "${POD_NAME:?POD_NAME must be set (downward API metadata.name)}"
: "${WORKER_REPLICAS:?WORKER_REPLICAS must be set}"
: "${ACTIVITY_PARTITION_COUNT:?ACTIVITY_PARTITION_COUNT must be set}"
ordinal="${POD_NAME##*-}"
case "$ordinal" in
  ''|*[!0-9]*) echo "cannot read the ordinal of pod $POD_NAME" >&2; exit 2 ;;
esac
if [ "$ordinal" -ge "$WORKER_REPLICAS" ]; then
  echo "pod $POD_NAME: ordinal $ordinal >= WORKER_REPLICAS=$WORKER_REPLICAS;" \
       "set WORKER_REPLICAS to the StatefulSet's replicas" >&2
  exit 2
fi
if [ "$WORKER_REPLICAS" -gt "$ACTIVITY_PARTITION_COUNT" ]; then
  echo "$WORKER_REPLICAS replicas for $ACTIVITY_PARTITION_COUNT partitions:" \
       "raise ACTIVITY_PARTITION_COUNT (every worker needs a partition)" >&2
  exit 2
fi
lo=$(( ordinal * ACTIVITY_PARTITION_COUNT / WORKER_REPLICAS ))
hi=$(( (ordinal + 1) * ACTIVITY_PARTITION_COUNT / WORKER_REPLICAS - 1 ))
export ACTIVITY_PARTITIONS="$lo-$hi"
echo "pod $POD_NAME: partitions $ACTIVITY_PARTITIONS of $ACTIVITY_PARTITION_COUNT" >&2
command="$1"
shift
exec activity "$command" "$@"
