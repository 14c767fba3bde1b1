#!/usr/bin/env bash
# Write a kubeconfig that signs in as the collector's service account, so the
# sidecar never holds admin credentials. Run it with admin rights (KUBECONFIG or
# ~/.kube/config), after `kubectl apply -f deploy/rbac.yaml`.
#
# The token comes from the TokenRequest API (`kubectl create token`), which the
# API server answers alone; a token Secret would need the controller-manager.
# It expires after the duration (default a year, or less if the API server's
# --service-account-max-token-expiration says so): run this again and restart
# the collector before then. The file is written mode 0600.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: deploy/make-kubeconfig.sh [-n NAMESPACE] [-a ACCOUNT] [-d DURATION] [-s SERVER] OUTPUT

  -n NAMESPACE  the service account's namespace (default: event-collector;
                team-a for deploy/rbac-namespaced.yaml)
  -a ACCOUNT    the service account (default: event-collector)
  -d DURATION   how long the token is valid, e.g. 720h (default: 8760h)
  -s SERVER     the API server URL as the collector's container reaches it
                (default: the server of the current kubeconfig context)

KUBECTL names another kubectl binary.
EOF
    exit 2
}

namespace=event-collector
account=event-collector
duration=8760h
server=
while getopts n:a:d:s:h option; do
    case "$option" in
        n) namespace=$OPTARG ;;
        a) account=$OPTARG ;;
        d) duration=$OPTARG ;;
        s) server=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
output=$1
kubectl=${KUBECTL:-kubectl}

# --flatten inlines a CA given as a file path, so the output stands alone.
cluster() {
    "$kubectl" config view --minify --flatten -o "jsonpath={.clusters[0].$1}"
}
cluster_name=$(cluster name)
ca_data=$(cluster 'cluster.certificate-authority-data')
if [ -z "$server" ]; then
    server=$(cluster cluster.server)
fi
if [ -z "$ca_data" ]; then
    echo "make-kubeconfig: the current context has no certificate authority;" \
        "refusing to write a kubeconfig that skips TLS verification" >&2
    exit 1
fi

token=$("$kubectl" create token "$account" --namespace "$namespace" \
    --duration "$duration")

# mktemp creates the file 0600 next to the output, and mv replaces the output
# in one step, so a running collector never reads half a file.
partial=$(mktemp "$output.XXXXXX")
trap 'rm -f "$partial"' EXIT
cat >"$partial" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: "$cluster_name"
    cluster:
      server: "$server"
      certificate-authority-data: "$ca_data"
users:
  - name: "system:serviceaccount:$namespace:$account"
    user:
      token: "$token"
contexts:
  - name: event-collector
    context:
      cluster: "$cluster_name"
      user: "system:serviceaccount:$namespace:$account"
current-context: event-collector
EOF
mv "$partial" "$output"
trap - EXIT
echo "make-kubeconfig: wrote $output for $namespace/$account, valid for $duration" >&2
