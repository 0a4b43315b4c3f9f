"""Reference pages generated from the code, so they cannot drift from it: docs/hooks.md from the hook
specifications, docs/recipes.md from the live registry. `p2p docs` writes them, `p2p docs --check` compares."""

from __future__ import annotations

from pathlib import Path

from p2pcore.plugins import Host


def pages(host: Host) -> dict[str, str]:
    """File name -> Markdown text of every generated page."""
    from p2pcore.docgen.hooks import hooks_page
    from p2pcore.docgen.recipes import recipes_page

    return {"hooks.md": hooks_page(), "recipes.md": recipes_page(host)}


def stale(out: Path, generated: dict[str, str]) -> list[str]:
    """The pages whose file in `out` is missing or differs from `generated`."""
    def current(name: str) -> str | None:
        path = out / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    return [name for name, text in generated.items() if current(name) != text]
