#!/usr/bin/env bash
# Updates the vendored asciinema-player (the web player `export --format html`
# embeds) from the npm registry:
#
#   bash scripts/update-asciinema-player.sh 3.18.0
#
# It fetches the package tarball with `npm pack`, copies the self-contained
# bundle (dist/bundle/asciinema-player.min.js and asciinema-player.css) and
# the licence into player/assets/asciinema-player/, and records the version
# and the files' SHA-256 in VERSION. Rebuild, run the browser test
# (tests/e2e/html.rs, part of scripts/test), and commit the four files.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:?usage: $0 VERSION (see: npm view asciinema-player versions)}"
dest=player/assets/asciinema-player
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "asciinema-player@$version" >/dev/null && tar xzf asciinema-player-*.tgz)
cp "$tmp/package/dist/bundle/asciinema-player.min.js" "$tmp/package/dist/bundle/asciinema-player.css" "$tmp/package/LICENSE" "$dest/"
# The bundle is inlined in <script>/<style> elements: it must not close them.
if grep -qi '</script\|</style' "$dest/asciinema-player.min.js" "$dest/asciinema-player.css"; then
    echo "the bundle contains </script or </style; player/src/html.rs must escape it" >&2
    exit 1
fi
{
    echo "asciinema-player $version (npm), Apache-2.0, https://github.com/asciinema/asciinema-player"
    (cd "$dest" && sha256sum asciinema-player.min.js asciinema-player.css)
} > "$dest/VERSION"
cat "$dest/VERSION"
