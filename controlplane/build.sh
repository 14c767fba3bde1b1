#!/usr/bin/env bash
# Build the control plane our tests run: kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl and etcd, from the Go module in go/.
#
# A cold build takes many minutes on two cores, so the binaries are cached
# outside the repo, keyed by the module's content: a second run with the same
# go.mod, go.sum and Go files is a no-op. The build goes into a temporary
# directory that is renamed into place, so a killed build never leaves a cache
# that looks complete.
#
# stdout carries exactly one line, the bin directory, so callers can write
#   BIN=$(controlplane/build.sh | tail -1)
# Everything else (progress, compiler output) goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module_dir="${here}/go"
cache_root="${EVENT_COLLECTOR_CACHE:-${HOME}/.cache/event-collector}"
binaries=(etcd kube-apiserver kube-scheduler kube-controller-manager kubectl)

die() {
    echo "build.sh: $*" >&2
    exit 1
}

command -v go >/dev/null || die "go is not on PATH"
command -v sha256sum >/dev/null || die "sha256sum is not on PATH"

# The release comes from go.mod, so update-replaces.sh is the only place
# that names it.
release="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' \
    "${module_dir}/go.mod")"
[[ "${release}" =~ ^v1\.([0-9]+)\.[0-9]+$ ]] ||
    die "no k8s.io/kubernetes v1.x.y in go/go.mod"
minor="${BASH_REMATCH[1]}"

# Key the cache on every input of the build; file names are part of the
# hash so that renaming a Go file also counts as a change.
content_hash="$(
    cd "${module_dir}" &&
        find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print |
        LC_ALL=C sort |
        while read -r file; do
            printf '%s\n' "${file}"
            sha256sum <"${file}"
        done |
        sha256sum | cut -c1-12
)"
bin_dir="${cache_root}/k8s-${release}-${content_hash}/bin"

all_present() {
    local dir="$1" name
    for name in "${binaries[@]}"; do
        [[ -x "${dir}/${name}" ]] || return 1
    done
}

if all_present "${bin_dir}"; then
    echo "build.sh: cached binaries for ${release} in ${bin_dir}" >&2
    echo "${bin_dir}"
    exit 0
fi

mkdir -p "${cache_root}"
# A build killed with SIGKILL cannot run its trap; no build takes six hours,
# so an older staging directory is such a leftover.
find "${cache_root}" -maxdepth 1 -name '.build-*' -mmin +360 -exec rm -rf {} + || true
staging_dir="$(mktemp -d "${cache_root}/.build-${release}-XXXXXX")"
trap 'rm -rf "${staging_dir}"' EXIT

# Without these the server reports v0.0.0-master+$Format:%H$ on /version.
# kubectl reads its client version from client-go, the servers from
# component-base, so both packages get the same values.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${release}"
    ldflags+=" -X ${pkg}.gitMajor=1"
    ldflags+=" -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean"
done

echo "build.sh: building ${release} into ${bin_dir} (cold builds take many minutes)" >&2
started=${SECONDS}
(
    cd "${module_dir}" &&
        CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build \
            -trimpath -ldflags "${ldflags}" -o "${staging_dir}/bin/" \
            ./etcd \
            k8s.io/kubernetes/cmd/kube-apiserver \
            k8s.io/kubernetes/cmd/kube-scheduler \
            k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kubectl
) >&2 || die "go build failed (see the compiler output above)"
all_present "${staging_dir}/bin" ||
    die "go build did not produce all of: ${binaries[*]}"

# A rename within one filesystem is atomic; if a concurrent build won the
# race, its result is just as good as ours.
if ! mv -T "${staging_dir}" "${bin_dir%/bin}" 2>/dev/null; then
    all_present "${bin_dir}" || die "could not move the build into ${bin_dir%/bin}"
fi
echo "build.sh: built ${release} in $((SECONDS - started)) s" >&2
echo "${bin_dir}"
