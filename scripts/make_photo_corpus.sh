#!/usr/bin/env bash
# Build the training/validation photo corpus from Debian packages.
#
# Usage: scripts/make_photo_corpus.sh DIR
#
# Downloads the Debian packages named in resources/corpus/manifest.csv with
# `apt-get download` (nothing is installed), unpacks them with `dpkg -x` into a
# temporary folder and copies only the photos listed in the manifest into
# DIR/train/, DIR/val/ and DIR/val_textured/ (manifest splits train, val and
# val-textured). Every file is checked against the manifest's sha256.
# Re-running is cheap: files already in DIR with the right hash are skipped and
# packages are only downloaded when some of their files are missing.
# Needs bash, apt-get, dpkg, sha256sum and awk; `apt-get update` (run only when
# a package is unknown to apt) needs root.
set -euo pipefail

readonly MANIFEST_HEADER="split,package,path_in_package,sha256,width,height,note"

die() {
    printf 'make_photo_corpus: error: %s\n' "$*" >&2
    exit 1
}

log() {
    printf 'make_photo_corpus: %s\n' "$*"
}

usage() {
    printf 'Usage: %s DIR\n' "${0##*/}" >&2
    printf 'Copies the photos listed in resources/corpus/manifest.csv into DIR/train, DIR/val and DIR/val_textured.\n' >&2
}

# Short prefix for flat file names, so photos from different packages never clash.
short_name() {
    case "$1" in
        mate-backgrounds) echo mate ;;
        plasma-workspace-wallpapers) echo plasma ;;
        lxqt-themes) echo lxqt ;;
        palapeli-data) echo palapeli ;;
        tuxpaint-data) echo tuxpaint ;;
        lomiri-wallpapers-16.04) echo lomiri16 ;;
        sddm-theme-maldives) echo maldives ;;
        opencv-doc) echo opencv ;;
        *) echo "$1" ;;
    esac
}

# Folder of a manifest split inside DIR.
split_dir() {
    case "$1" in
        val-textured) echo val_textured ;;
        *) echo "$1" ;;
    esac
}

# Flat destination name: "<short>_<basename>". Plasma wallpapers name each file
# after its resolution (Path/contents/images/2560x1600.jpg), so for them the
# wallpaper's folder name is used instead of the basename.
dest_name() {
    local package="$1" path="$2" base ext
    base="${path##*/}"
    ext="${base##*.}"
    if [[ "$path" == */contents/images*/* ]]; then
        base="${path%%/contents/*}"
        base="${base##*/}.${ext}"
    fi
    printf '%s_%s' "$(short_name "$package")" "$base"
}

sha256_of() {
    sha256sum -- "$1" | awk '{print $1}'
}

# Run `apt-get update` once if apt has no candidate for one of the packages.
ensure_apt_knows() {
    local pkg
    for pkg in "$@"; do
        if ! apt-cache show "$pkg" >/dev/null 2>&1; then
            log "apt does not know '$pkg'; running apt-get update"
            [[ $EUID -eq 0 ]] || die "apt-get update needs root (package '$pkg' is unknown to apt); run 'sudo apt-get update' first"
            apt-get update -qq || die "apt-get update failed"
            break
        fi
    done
    for pkg in "$@"; do
        apt-cache show "$pkg" >/dev/null 2>&1 || die "package '$pkg' is not available from the configured apt sources"
    done
}

main() {
    if [[ $# -eq 1 && ( "$1" == -h || "$1" == --help ) ]]; then
        usage
        exit 0
    fi
    if [[ $# -ne 1 ]]; then
        usage
        exit 2
    fi
    local out_dir="$1"
    local repo_root manifest
    repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    manifest="$repo_root/resources/corpus/manifest.csv"
    [[ -f "$manifest" ]] || die "manifest not found: $manifest"

    local cmd
    for cmd in apt-get apt-cache dpkg dpkg-deb sha256sum awk; do
        command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is required but not installed"
    done

    local header
    header="$(head -n 1 "$manifest" | tr -d '\r')"
    [[ "$header" == "$MANIFEST_HEADER" ]] || die "unexpected manifest header in $manifest: '$header' (expected '$MANIFEST_HEADER')"

    # Read the manifest once into parallel arrays.
    local -a splits=() packages=() paths=() hashes=() dests=()
    local split package path sha width height lineno=1
    while IFS=, read -r split package path sha width height _ || [[ -n "$split" ]]; do
        lineno=$((lineno + 1))
        [[ -z "$split" ]] && continue
        [[ "$split" == train || "$split" == val || "$split" == val-textured ]] || die "manifest line $lineno: split must be 'train', 'val' or 'val-textured', got '$split'"
        [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || die "manifest line $lineno: bad sha256 '$sha'"
        [[ "$width" =~ ^[1-9][0-9]*$ && "$height" =~ ^[1-9][0-9]*$ ]] || die "manifest line $lineno: bad width/height '$width' x '$height'"
        splits+=("$split")
        packages+=("$package")
        paths+=("$path")
        hashes+=("$sha")
        dests+=("$out_dir/$(split_dir "$split")/$(dest_name "$package" "$path")")
    done < <(tail -n +2 "$manifest" | tr -d '\r')
    local n_rows=${#splits[@]}
    [[ $n_rows -gt 0 ]] || die "manifest $manifest lists no photos"

    # Validation photos (val and val-textured) must come from packages never used for training.
    local leak
    leak="$(tail -n +2 "$manifest" | awk -F, '{seen[$2] = seen[$2] " " $1} END {for (p in seen) if (seen[p] ~ /train/ && seen[p] ~ /val/) print p}')"
    [[ -z "$leak" ]] || die "package(s) used for both train and val: $leak"

    local dupes
    dupes="$(printf '%s\n' "${dests[@]}" | sort | uniq -d)"
    [[ -z "$dupes" ]] || die "two manifest rows map to the same file name: $dupes"

    mkdir -p "$out_dir/train" "$out_dir/val" "$out_dir/val_textured"

    # Which rows still need copying, and from which packages.
    local -a todo=()
    local -A need_pkg=()
    local i n_skipped=0
    for ((i = 0; i < n_rows; i++)); do
        if [[ -f "${dests[i]}" && "$(sha256_of "${dests[i]}")" == "${hashes[i]}" ]]; then
            n_skipped=$((n_skipped + 1))
        else
            todo+=("$i")
            need_pkg["${packages[i]}"]=1
        fi
    done

    local n_copied=0
    if [[ ${#todo[@]} -gt 0 ]]; then
        local work
        work="$(mktemp -d "${TMPDIR:-/tmp}/photo_corpus.XXXXXX")"
        # shellcheck disable=SC2064  # expand $work now, the trap runs after main returns
        trap "rm -rf -- '$work'" EXIT
        mkdir -p "$work/debs"
        # As root, apt fetches as the unprivileged _apt user; let it write here
        # instead of falling back to an unsandboxed download with a warning.
        if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then
            chmod 755 "$work"
            chown _apt "$work/debs"
        fi

        local -a pkgs
        mapfile -t pkgs < <(printf '%s\n' "${!need_pkg[@]}" | sort)
        ensure_apt_knows "${pkgs[@]}"
        log "downloading ${#pkgs[@]} package(s): ${pkgs[*]}"
        (cd "$work/debs" && apt-get download -q "${pkgs[@]}") || die "apt-get download failed for: ${pkgs[*]}"

        local deb version
        for package in "${pkgs[@]}"; do
            deb="$(find "$work/debs" -maxdepth 1 -name "${package}_*.deb" -print -quit)"
            [[ -n "$deb" ]] || die "apt-get download produced no .deb for '$package'"
            version="$(dpkg-deb -f "$deb" Version)"
            log "unpacking $package $version"
            mkdir -p "$work/root/$package"
            dpkg -x "$deb" "$work/root/$package"
            printf '%s\n' "$version" >"$work/root/$package.version"
        done

        # Check every source before copying anything, so a changed package
        # fails the run without leaving a half-updated corpus behind.
        local src dest got tmp
        for i in "${todo[@]}"; do
            package="${packages[i]}"
            version="$(cat "$work/root/$package.version")"
            src="$work/root/$package/${paths[i]}"
            [[ ! -L "$src" ]] || die "manifest lists a symlink, not a photo: $package:${paths[i]} (list the file it points to)"
            [[ -f "$src" ]] || die "missing file: '${paths[i]}' is not in $package $version (the package changed; update resources/corpus/manifest.csv)"
            got="$(sha256_of "$src")"
            [[ "$got" == "${hashes[i]}" ]] || die "sha256 mismatch for $package:${paths[i]} ($package $version): expected ${hashes[i]}, got $got (the package changed; check the photo and update resources/corpus/manifest.csv)"
        done

        for i in "${todo[@]}"; do
            src="$work/root/${packages[i]}/${paths[i]}"
            dest="${dests[i]}"
            # Copy under a temporary name so an interrupted run never leaves a truncated photo.
            tmp="$dest.part"
            cp -- "$src" "$tmp"
            got="$(sha256_of "$tmp")"
            if [[ "$got" != "${hashes[i]}" ]]; then
                rm -f -- "$tmp"
                die "sha256 mismatch after copying to $dest: expected ${hashes[i]}, got $got"
            fi
            chmod 644 "$tmp"
            mv -f -- "$tmp" "$dest"
            n_copied=$((n_copied + 1))
        done
    fi

    log "copied $n_copied, already present $n_skipped"
    tail -n +2 "$manifest" | tr -d '\r' | awk -F, -v dir="$out_dir" '
        NF >= 6 { n[$1]++; mp[$1] += $5 * $6 / 1e6 }
        END {
            printf "make_photo_corpus: %s/train: %d photos, %.1f megapixels\n", dir, n["train"], mp["train"]
            printf "make_photo_corpus: %s/val: %d photos, %.1f megapixels\n", dir, n["val"], mp["val"]
            printf "make_photo_corpus: %s/val_textured: %d photos, %.1f megapixels\n", dir, n["val-textured"], mp["val-textured"]
        }'
    # Files in DIR that the manifest does not list are left alone but reported.
    local extra
    extra="$(find "$out_dir/train" "$out_dir/val" "$out_dir/val_textured" -maxdepth 1 -type f | sort | comm -23 - <(printf '%s\n' "${dests[@]}" | sort) | wc -l)"
    [[ "$extra" -eq 0 ]] || log "note: $extra file(s) in $out_dir/train, val or val_textured are not in the manifest"
}

main "$@"
