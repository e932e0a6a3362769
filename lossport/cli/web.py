"""``lossport serve-web``: the browser scorer (``examples/web/``) with an exported scorer, served
on this machine, and :class:`WebServer`, the small static server behind it (also used by the
browser tests and ``benchmarks/bench_web.py``).

The page loads ONNX Runtime Web's ``.mjs`` and ``.wasm`` files, which browsers take only over
http with the right content types, and runs on several WASM threads only when the page is
cross-origin isolated; the server sends both. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import os
import threading
import webbrowser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Mapping, Optional
from urllib.parse import unquote, urlsplit

import click

from lossport.errors import ConfigError

# examples/web of the repository this (editable) package lives in.
WEB_ROOT = Path(__file__).resolve().parents[2] / "examples" / "web"
MODEL_PATH = "model.onnx"  # where the page looks for its model by default
NPM_MODULE = Path("node_modules") / "onnxruntime-web" / "dist"


class _Handler(SimpleHTTPRequestHandler):
    """Files of ``directory`` plus the named ``files``, with the headers the page needs."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
    }

    def __init__(self, *args, files: Mapping[str, Path], **kwargs) -> None:
        self.files = files
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        name = unquote(urlsplit(path).path).lstrip("/")
        if name in self.files:
            return str(self.files[name])
        return super().translate_path(path)

    def end_headers(self) -> None:
        # Cross-origin isolation (SharedArrayBuffer, hence WASM threads); no stale models.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:
        pass


class WebServer:
    """``root`` over http on 127.0.0.1:``port`` (0: any free port), plus ``files`` (URL path ->
    file) such as ``{"model.onnx": artifact}``, in a background thread; a context manager.
    ``self.files`` may be added to while it runs."""

    def __init__(self, root: Path, files: Optional[Mapping[str, Path]] = None, port: int = 0) -> None:
        self.files: Dict[str, Path] = dict(files or {})
        handler = functools.partial(_Handler, directory=str(root), files=self.files)
        try:
            self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port (0: any free one)"
            ) from None
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "WebServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


def check_web_root(root: Path) -> Path:
    """``root`` if it holds the page with ONNX Runtime Web installed; else a ConfigError that
    says what to do."""
    if not (root / "index.html").is_file():
        raise ConfigError(
            f"the browser page is not at {root}: serve-web runs from a clone of the lossport repository "
            "(pip install -e .), not from an installed wheel"
        )
    if not (root / NPM_MODULE).is_dir():
        relative = os.path.relpath(root)
        shown = str(root) if relative.startswith("..") else relative
        raise ConfigError(f"ONNX Runtime Web is not installed for the page; run: (cd {shown} && npm ci)")
    return root


@click.command("serve-web")
@click.option(
    "--model",
    required=True,
    type=click.Path(path_type=Path),
    help="Exported scorer (.onnx; --with-grad for saliency heatmaps).",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0: any free port."
)
@click.option("--open/--no-open", "open_browser", default=False, help="Open the page in a browser.")
def serve_web(model: Path, port: int, open_browser: bool) -> None:
    """Serve the browser scorer (examples/web) with MODEL on 127.0.0.1 until Ctrl-C: drop images
    on the page to see scores and, for a --with-grad artifact, saliency heatmaps."""
    if not model.is_file():
        raise ConfigError(f"{model}: no such model file")
    if model.suffix.lower() != ".onnx":
        raise ConfigError(
            f"{model}: the browser runs ONNX artifacts (.onnx); export one with "
            "lossport export tigas --format onnx [--with-grad]"
        )
    root = check_web_root(WEB_ROOT)
    try:
        with WebServer(root, {MODEL_PATH: model.resolve()}, port) as server:
            click.echo(f"serving the browser scorer with {model} at {server.url} (Ctrl-C stops)")
            if open_browser:
                webbrowser.open(server.url)
            threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopped")
