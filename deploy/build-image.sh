#!/usr/bin/env bash
# Build the ringstore image (one image, three services) as ${RINGSTORE_IMAGE:-ringstore:latest}.
#
# 1. The base image python:3.11-slim: used as is when present, pulled when a registry answers,
#    and otherwise made offline: debootstrap a minimal Debian bookworm (whose python3 is 3.11)
#    from the Debian mirror, add the paths the official image has (python, python3.11, pip on
#    PATH), and `docker import` it under that tag. Kept as an image, so this runs once.
# 2. The wheels: ringstore's own wheel and every dependency's, fetched on the host into
#    build/image/wheels (for CPython 3.11 on this machine's architecture), so the image build
#    itself needs no network: `pip install --no-index --find-links`.
# 3. `docker build -f deploy/Dockerfile build/image`.
# 4. The PostgreSQL image of deploy/docker-compose.pg.yml (see build_postgres below).
#
# Environment: RINGSTORE_IMAGE (tag to build), RINGSTORE_PG_IMAGE (the PostgreSQL image's tag,
# default ringstore-postgres:latest), PYTHON (host interpreter with pip; default the
# project's .venv), DEBIAN_MIRROR (default http://deb.debian.org/debian), RINGSTORE_NO_PULL=1
# (never try a registry for the base image), RINGSTORE_REBUILD=1 (build even when the image's
# label says it was built from the same sources).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${RINGSTORE_IMAGE:-ringstore:latest}
BASE=python:3.11-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CONTEXT=build/image
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

log() { printf 'build-image: %s\n' "$*" >&2; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

make_base_offline() {
    command -v debootstrap >/dev/null || {
        log "debootstrap is missing: apt-get install -y debootstrap"
        exit 1
    }
    root=$(mktemp -d /tmp/ringstore-rootfs.XXXXXX)
    trap 'rm -rf "$root" "$root.log"' EXIT
    log "no $BASE here and no registry: debootstrapping bookworm from $MIRROR (once)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$root" "$MIRROR" >"$root.log" 2>&1 || {
        tail -30 "$root.log" >&2
        exit 1
    }
    rm -f "$root.log"
    # The paths and behaviour of the official image: python, python3.11 and pip on PATH, and a
    # pip allowed to install into the system interpreter.
    mkdir -p "$root/usr/local/bin"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3.11"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
    ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
    ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip3"
    rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$BASE" >/dev/null
    rm -rf "$root"
    log "imported $BASE ($(docker image inspect -f '{{.Size}}' "$BASE") bytes)"
}

ensure_base() {
    if have_image "$BASE"; then
        return
    fi
    if [[ "${RINGSTORE_NO_PULL:-}" != 1 ]] && timeout 120 docker pull -q "$BASE" >/dev/null 2>&1
    then
        log "pulled $BASE"
        return
    fi
    make_base_offline
}

fetch_wheels() {
    local arch
    case "$(uname -m)" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) log "unsupported architecture $(uname -m)"; exit 1 ;;
    esac
    mkdir -p "$CONTEXT/wheels"
    rm -f "$CONTEXT"/wheels/ringstore-*.whl
    "$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$CONTEXT/wheels" .
    # Dependencies as binary wheels for the image's interpreter, whatever the host's is.
    "$PYTHON" -m pip download -q --dest "$CONTEXT/wheels" --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
        --platform "manylinux2014_$arch" --platform any \
        "$CONTEXT"/wheels/ringstore-*.whl
    cp deploy/compose-cluster.yaml "$CONTEXT/cluster.yaml"
}

# A digest of everything the image is made of; an image labelled with it is up to date.
inputs_digest() {
    {
        find ringstore gateway metanode datanode -type f \
            \( -name '*.py' -o -name '*.pyi' -o -name py.typed \) -not -path '*/__pycache__/*'
        echo pyproject.toml deploy/Dockerfile deploy/compose-cluster.yaml deploy/build-image.sh
    } | tr ' ' '\n' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-32
}

build() {
    local builder=()
    # Without the buildx plugin, the classic builder (the Debian engine's default) does the job.
    docker buildx version >/dev/null 2>&1 || builder=(env DOCKER_BUILDKIT=0)
    if ! "${builder[@]}" docker build -f deploy/Dockerfile -t "$IMAGE" \
        --label "org.ringstore.inputs=$DIGEST" "$CONTEXT" \
        >"$CONTEXT/build.log" 2>&1; then
        tail -40 "$CONTEXT/build.log" >&2
        exit 1
    fi
    # Earlier builds' images and build stages, now untagged.
    docker image prune -f --filter label=org.ringstore.image >/dev/null
    log "built $IMAGE ($(docker image inspect -f '{{.Id}}' "$IMAGE"))"
}

# 4. The replicated metadata database's image (deploy/docker-compose.pg.yml): Debian's
#    PostgreSQL on the same base, from deploy/Dockerfile.postgres, as ${RINGSTORE_PG_IMAGE}.
build_postgres() {
    local digest
    digest=$(cat deploy/Dockerfile.postgres deploy/postgres/* | sha256sum | cut -c1-32)
    if have_image "$PG_IMAGE" && [[ "${RINGSTORE_REBUILD:-}" != 1 ]] &&
        [[ "$(docker image inspect -f '{{index .Config.Labels "org.ringstore.inputs"}}' \
            "$PG_IMAGE")" == "$digest" ]]; then
        log "$PG_IMAGE is up to date (inputs $digest)"
        return
    fi
    ensure_base
    local builder=()
    docker buildx version >/dev/null 2>&1 || builder=(env DOCKER_BUILDKIT=0)
    if ! "${builder[@]}" docker build -f deploy/Dockerfile.postgres -t "$PG_IMAGE" \
        --label "org.ringstore.inputs=$digest" deploy/postgres >"$CONTEXT/build-pg.log" 2>&1
    then
        tail -40 "$CONTEXT/build-pg.log" >&2
        exit 1
    fi
    log "built $PG_IMAGE ($(docker image inspect -f '{{.Id}}' "$PG_IMAGE"))"
}

PG_IMAGE=${RINGSTORE_PG_IMAGE:-ringstore-postgres:latest}
mkdir -p "$CONTEXT"
DIGEST=$(inputs_digest)
if have_image "$IMAGE" && [[ "${RINGSTORE_REBUILD:-}" != 1 ]] &&
    [[ "$(docker image inspect -f '{{index .Config.Labels "org.ringstore.inputs"}}' "$IMAGE")" \
        == "$DIGEST" ]]; then
    log "$IMAGE is up to date (inputs $DIGEST); RINGSTORE_REBUILD=1 forces a build"
else
    ensure_base
    fetch_wheels
    build
fi
build_postgres
