"""Find or build the pinned ``livekit-server`` binary.

Standard library only, so the set-up script can run it before the virtualenv
exists (``python3 tui/demo/server_install.py``).  The pin lives here and only
here; the stamp file next to the binary records which version was built so a
changed pin triggers a rebuild and an unchanged one costs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LIVEKIT_SERVER_VERSION = "v1.13.5"
GO_MODULE = "github.com/livekit/livekit-server/cmd/server"
BINARY_NAME = "livekit-server"

INSTALL_HELP = f"""\
livekit-server {LIVEKIT_SERVER_VERSION} is needed and could not be built (Go not found).
Install it in one of these ways, then run the command again:
  * Homebrew:         brew install livekit
  * LiveKit's script: curl -sSL https://get.livekit.io | bash
  * Go (1.23+):       GOBIN={{cache}} go install {GO_MODULE}@{LIVEKIT_SERVER_VERSION}
                      mv {{cache}}/server {{cache}}/{BINARY_NAME}
"""


class ServerInstallError(RuntimeError):
    """livekit-server is missing and cannot be built here."""


def cache_bin_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anyreach-tui" / "bin"


def _stamp_path(bin_dir: Path) -> Path:
    return bin_dir / f"{BINARY_NAME}.version"


def cached_server() -> Path | None:
    """The cached binary, if it was built from the current pin."""
    bin_dir = cache_bin_dir()
    binary = bin_dir / BINARY_NAME
    stamp = _stamp_path(bin_dir)
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == LIVEKIT_SERVER_VERSION:
        return binary
    return None


def find_livekit_server() -> Path | None:
    """The project's cached build first (it is pinned), then one on PATH."""
    cached = cached_server()
    if cached is not None:
        return cached
    on_path = shutil.which(BINARY_NAME)
    return Path(on_path) if on_path else None


def _find_go() -> str | None:
    return shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )


def build_livekit_server(log=sys.stderr) -> Path:
    """Build the pinned release into the cache folder with ``go install``."""
    bin_dir = cache_bin_dir()
    go = _find_go()
    if go is None:
        raise ServerInstallError(INSTALL_HELP.format(cache=bin_dir))
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(bin_dir), CGO_ENABLED=os.environ.get("CGO_ENABLED", "0"))
    print(
        f"building livekit-server {LIVEKIT_SERVER_VERSION} with Go (one time, a few minutes)...",
        file=log,
        flush=True,
    )
    result = subprocess.run(
        [go, "install", f"{GO_MODULE}@{LIVEKIT_SERVER_VERSION}"], env=env, check=False
    )
    built = bin_dir / "server"
    if result.returncode != 0 or not built.is_file():
        raise ServerInstallError(
            f"go install {GO_MODULE}@{LIVEKIT_SERVER_VERSION} failed "
            f"(exit {result.returncode}); see the output above.\n"
            + INSTALL_HELP.format(cache=bin_dir)
        )
    binary = bin_dir / BINARY_NAME
    built.replace(binary)
    _stamp_path(bin_dir).write_text(LIVEKIT_SERVER_VERSION + "\n")
    return binary


def ensure_livekit_server(log=sys.stderr) -> Path:
    """Return a usable livekit-server, building the pinned one when missing."""
    found = find_livekit_server()
    if found is not None:
        return found
    return build_livekit_server(log=log)


def main() -> int:
    try:
        path = ensure_livekit_server()
    except ServerInstallError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"livekit-server: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
