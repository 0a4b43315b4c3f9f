"""Which real and generated images a study compares: files of the same name in two folders.

Only formats a browser displays are paired; the study serves these files and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from p2pcore.errors import P2PError

BROWSER_TYPES: dict[str, str] = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                                 ".gif": "image/gif", ".webp": "image/webp", ".bmp": "image/bmp"}
SHOWN_UNMATCHED = 5


@dataclass(frozen=True)
class Pairs:
    """The paired files by name, and the names found on one side only (reported, not used)."""

    real_dir: Path
    fake_dir: Path
    names: tuple[str, ...]
    only_real: tuple[str, ...]
    only_fake: tuple[str, ...]

    def real(self, name: str) -> Path:
        return self.real_dir / name

    def fake(self, name: str) -> Path:
        return self.fake_dir / name


def content_type(name: str) -> str:
    return BROWSER_TYPES[Path(name).suffix.lower()]


def _images(folder: Path, role: str) -> set[str]:
    """Names of the displayable image files directly inside `folder` (hidden files skipped)."""
    if not folder.exists():
        raise P2PError(f"the {role} folder does not exist", file=str(folder), hint=f"give the folder of {role} images")
    if not folder.is_dir():
        raise P2PError(f"the {role} images must be a folder, not a file", file=str(folder),
                       hint=f"give the folder holding the {role} images")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise P2PError(f"cannot list the {role} folder: {exc.strerror}", file=str(folder),
                       hint="check the folder's permissions") from None
    names = {p.name for p in entries
             if p.suffix.lower() in BROWSER_TYPES and not p.name.startswith(".") and p.is_file()}
    if not names:
        raise P2PError(f"the {role} folder has no images a browser can show", file=str(folder),
                       hint=f"put {', '.join(sorted(BROWSER_TYPES))} files in it")
    return names


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_UNMATCHED])
    return shown + (f" and {len(names) - SHOWN_UNMATCHED} more" if len(names) > SHOWN_UNMATCHED else "")


def pair_images(real_dir: Path, fake_dir: Path) -> Pairs:
    """Pair the images of the same file name; a clear error when no name is shared."""
    real, fake = _images(real_dir, "real"), _images(fake_dir, "generated")
    names = tuple(sorted(real & fake))
    only_real, only_fake = sorted(real - fake), sorted(fake - real)
    if not names:
        raise P2PError("the real and generated folders share no file names", file=str(fake_dir),
                       details=[f"only in {real_dir}: {_listed(only_real)}",
                                f"only in {fake_dir}: {_listed(only_fake)}"],
                       hint="a generated image must have the same file name as its real image "
                            "(p2p translate keeps the input's names)")
    return Pairs(real_dir, fake_dir, names, tuple(only_real), tuple(only_fake))


def unmatched_note(pairs: Pairs) -> str | None:
    """One line naming a few images left out because the other folder lacks them."""
    parts = [f"{len(names)} only in {folder} ({_listed(list(names))})"
             for names, folder in ((pairs.only_real, pairs.real_dir), (pairs.only_fake, pairs.fake_dir)) if names]
    return "left out, no image of the same name in the other folder: " + "; ".join(parts) if parts else None
