"""The ``cemnist`` command: build, verify, describe and publish releases (and, with matplotlib, draw them).

Exit status: 0 success; 1 runtime failure (a file or folder that cannot be read or written, the Hub);
2 usage error (a bad option or argument, an input folder that does not exist); 3 integrity failure (content that does not match its
manifest or the pinned MNIST hashes). Also ``python -m cemnist_data``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .card import ordered_configs
from .loader import CemnistIntegrityError, cache_root, resolve_release, shipped_manifest_for, verify_release
from .mnist import MnistIntegrityError, download_mnist, load_mnist
from .registry import HUB_REPO_ID, LATEST_VERSION, load_manifest
from .buildsize import LARGE_BUILD_IMAGES, MAX_BUILD_IMAGES, check_build_size
from .release import build_release
from .workdirs import NoSuchFolderError, clean_cache, clean_work_dirs_in
from .spec import SPLITS, CemnistSpec

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_RUNTIME", "EXIT_USAGE", "EXIT_INTEGRITY"]

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTEGRITY = 0, 1, 2, 3
_EXIT_HELP = ("exit status: 0 success, 1 runtime failure (I/O, Hub), 2 usage error (bad option or argument, "
              "missing input folder), "
              "3 integrity failure (content does not match its manifest or the pinned MNIST hashes)")


def _spec_from_args(args: argparse.Namespace) -> CemnistSpec:
    kwargs = {}
    if args.setting is not None:
        kwargs["setting"] = args.setting
    if args.seed is not None:
        kwargs["seed"] = args.seed
    if args.class_order is not None:
        kwargs["class_order"] = tuple(args.class_order)
    for name in ("train_per_task", "validation_per_task", "test_pool"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    return CemnistSpec(**kwargs)


def _cmd_build(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    est = check_build_size(spec, max_images=args.max_images)
    if est.images >= LARGE_BUILD_IMAGES:
        print(f"cemnist build: a large build: {est.describe()}", file=sys.stderr)
    t0 = time.perf_counter()
    manifest = build_release(args.out, spec=spec, mnist_dir=args.mnist_dir, workers=args.workers,
                             overwrite=args.overwrite, progress=not args.quiet, max_images=args.max_images)
    dt = time.perf_counter() - t0
    rows = sum(s["num_rows"] for c in manifest["configs"].values() for s in c["splits"].values())
    print(f"wrote {args.out}: {len(manifest['configs'])} configs, {rows:,} rows in {dt:.1f} s")
    shipped = shipped_manifest_for(manifest)
    if shipped is not None:
        same = all(
            shipped["configs"][c]["splits"][s] == manifest["configs"][c]["splits"][s]
            for c in shipped["configs"] for s in SPLITS
        )
        print(f"content matches the shipped {spec.version} manifest: {'yes' if same else 'NO'}")
        if not same:
            return EXIT_INTEGRITY
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else cache_root(args.cache_dir) / "releases" / LATEST_VERSION
    if not folder.is_dir():
        raise NoSuchFolderError(f"no release folder at {folder}; build one with `cemnist build --out {folder}`")
    from .loader import _read_manifest

    expected = shipped_manifest_for(_read_manifest(folder)[0]) if (folder / "manifest.json").is_file() else None
    t0 = time.perf_counter()
    # re-hashes every split (whatever an earlier load recorded); writes nothing into the folder
    manifest = verify_release(folder, expected=expected, cache_dir=args.cache_dir, progress=not args.quiet)
    n = sum(1 for c in manifest["configs"].values() for _ in c["splits"])
    against = f"the shipped {manifest['version']} manifest" if expected else "its own manifest (custom spec)"
    print(f"OK: {folder}: {n} splits match {against} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    if args.path == "cemnist":
        manifest = load_manifest(args.version or LATEST_VERSION)
    else:
        manifest = resolve_release(args.path, cache_dir=args.cache_dir, configs=[]).manifest
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
        return 0
    spec = manifest["spec"]
    from .registry import display_version

    if shipped_manifest_for(manifest) is not None:
        print(f"CEMNIST {manifest['version']}  (Hub: {HUB_REPO_ID}, tag v{manifest['version']})")
    else:
        print(f"CEMNIST custom build {display_version(manifest)}  (not a release)")
    print(f"setting {spec['setting']}, class order {spec['class_order']}, seed {spec['seed']}")
    for t, digits in enumerate(manifest["tasks"]):
        print(f"  task {t}: digits {digits}")
    print(f"{'config':<16}{'train':>8}{'val':>8}{'test':>8}  test content sha256")
    for name in ordered_configs(manifest):
        sp = manifest["configs"][name]["splits"]
        print(f"{name:<16}{sp['train']['num_rows']:>8}{sp['validation']['num_rows']:>8}{sp['test']['num_rows']:>8}  {sp['test']['content_sha256']}")
    print(f"cache: {cache_root(args.cache_dir)}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from .card import render_readme

    if args.dir is not None:
        if args.version is not None or args.out is not None:
            raise ValueError("--dir writes DIR/README.md from DIR/manifest.json; it takes neither --version nor --out")
        from .fileio import atomic_write_text
        from .loader import _read_manifest

        from .card import EVAL_YAML, eval_yaml_text

        manifest = _read_manifest(Path(args.dir))[0]
        atomic_write_text(Path(args.dir) / "README.md", render_readme(manifest))
        atomic_write_text(Path(args.dir) / EVAL_YAML, eval_yaml_text(manifest))
        print(f"wrote {Path(args.dir) / 'README.md'} and {Path(args.dir) / EVAL_YAML}")
        return 0
    text = render_readme(load_manifest(args.version or LATEST_VERSION))
    if args.out:
        from .fileio import atomic_write_text

        atomic_write_text(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_cache_clean(args: argparse.Namespace) -> int:
    root = cache_root(args.cache_dir)
    items = clean_cache(root, dry_run=args.dry_run)
    for d in args.dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise NoSuchFolderError(f"no such folder: {folder}; pass the folders that hold your --out folders")
        items += clean_work_dirs_in(folder.resolve(), dry_run=args.dry_run)
    if args.dirs:
        root = ", ".join([str(root), *(str(Path(d).resolve()) for d in args.dirs)])
    if not items:
        print(f"nothing to clean in {root}")
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for item in items:
        print(f"{verb if item.remove else 'kept':<12} {item.bytes / 1e6:>9.1f} MB  {item.path}  ({item.reason})")
    freed = sum(i.bytes for i in items if i.remove)
    kept = sum(i.bytes for i in items if not i.remove)
    print(f"{'would free' if args.dry_run else 'freed'} {freed / 1e6:.1f} MB in {root}"
          + (f"; kept {kept / 1e6:.1f} MB (reasons above)" if kept else "")
          + ("; dry run: nothing was removed" if args.dry_run else ""))
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from . import publish

    p = publish.publish_release(args.dir, api=publish.default_api(), repo_id=args.repo_id, tag=args.tag,
                                private=True if args.private else None, dry_run=args.dry_run, progress=not args.quiet)
    what = "release" if p.release else "custom build"
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(p.files)} files of {what} {p.version} from {p.folder} to datasets/{p.repo_id}, tag {p.tag}"
          + (" (private)" if args.private else "") + (f", commit {p.commit}" if p.commit else ""))
    if p.hub_checked:
        state = "exists" + (" (private)" if p.repo_private else " (public)" if p.repo_private is False else "")
        print(f"datasets/{p.repo_id} {state if p.repo_exists else 'does not exist yet (it would be created)'}; "
              f"tag {p.tag} is free")
    for f in p.files:
        print(f"  {f}")
    return 0


def _cmd_download_mnist(args: argparse.Namespace) -> int:
    dest = download_mnist(args.dir)
    load_mnist(mnist_dir=dest)
    print(f"verified MNIST in {dest}")
    return 0


def _quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` (alias ``--no-progress``): the one name of the quiet flag in both commands."""
    parser.add_argument("--quiet", "--no-progress", dest="quiet", action="store_true",
                        help="no progress bar (also: TQDM_DISABLE=1, HF_DATASETS_DISABLE_PROGRESS_BARS=1)")


def verbosity_parent() -> argparse.ArgumentParser:
    """``-v`` / ``--verbose`` (repeatable), accepted before or after the subcommand (shared by both commands)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="show the cemnist logger's messages (-v: info, -vv: debug) on stderr")
    return parent


def setup_logging(verbose: int) -> None:
    """Send the ``cemnist`` logger to stderr at INFO (``verbose`` 1) or DEBUG (2+); 0 leaves Python's default
    (warnings and errors only)."""
    import logging

    if verbose <= 0:
        return
    logger = logging.getLogger("cemnist")
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    if not any(getattr(h, "_cemnist_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._cemnist_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def with_parent(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    """Give every subcommand made by ``sub.add_parser`` (the viz commands' too) the options of ``parent``."""
    add = sub.add_parser

    def add_parser(name: str, **kwargs: object) -> argparse.ArgumentParser:
        kwargs["parents"] = [parent, *kwargs.get("parents", [])]  # type: ignore[misc]
        return add(name, **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    verbose = verbosity_parent()
    p = argparse.ArgumentParser(prog="cemnist", description="CEMNIST: build, verify, inspect and publish releases.",
                                epilog=_EXIT_HELP, parents=[verbose])
    p.add_argument("--version", action="version", version=f"cemnist {__version__}",
                   help="print the package version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    with_parent(sub, verbose)

    b = sub.add_parser("build", help="render a release folder (parquet + card + manifest)")
    b.add_argument("--out", required=True, help="release folder to create")
    b.add_argument("--setting", help="'N-M' class-incremental setting (default 2-2)")
    b.add_argument("--seed", type=int, help="seed of every random choice (default 0, the release's)")
    b.add_argument("--class-order", type=int, nargs=10, metavar="D",
                   help="the ten digits in the order tasks learn them (default 0 1 ... 9)")
    b.add_argument("--train-per-task", type=int, help="train images rendered per task (default 2500)")
    b.add_argument("--validation-per-task", type=int, help="validation images rendered per task (default 500)")
    b.add_argument("--test-pool", type=int, help="images in the shared test pool (default 5000)")
    b.add_argument("--mnist-dir", help="folder with the MNIST IDX files (default: the copy inside the package)")
    b.add_argument("--workers", type=int, default=2, help="threads for PNG encoding (default 2)")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an existing release folder (or an empty folder); anything else is refused")
    b.add_argument("--max-images", type=int, default=MAX_BUILD_IMAGES,
                   help=f"refuse a build that renders more images than this (default {MAX_BUILD_IMAGES:,})")
    _quiet(b)
    b.set_defaults(func=_cmd_build)

    v = sub.add_parser("verify", help="re-hash a release folder's decoded content against the manifest")
    v.add_argument("dir", nargs="?", help="release folder (default: the cached latest release)")
    v.add_argument("--cache-dir", help="cache folder: where the verification is recorded, and the default "
                   "release's location (default: $CEMNIST_CACHE or ~/.cache/cemnist)")
    _quiet(v)
    v.set_defaults(func=_cmd_verify)

    i = sub.add_parser("info", help="settings, tasks, sizes and content hashes of a release")
    i.add_argument("path", nargs="?", default="cemnist", help="'cemnist' (shipped manifest) or a release folder")
    i.add_argument("--version", help="release version for 'cemnist' (default: the latest)")
    i.add_argument("--cache-dir", help="cache folder (default: $CEMNIST_CACHE or ~/.cache/cemnist)")
    i.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    i.set_defaults(func=_cmd_info)

    c = sub.add_parser("card", help="write the dataset card (README.md of a release) for the shipped manifest")
    c.add_argument("--version", help="release version (default: the latest)")
    c.add_argument("--out", help="file to write (default: stdout)")
    c.add_argument("--dir", help="instead: rewrite DIR/README.md and DIR/eval.yaml from the manifest of the release "
                   "folder DIR")
    c.set_defaults(func=_cmd_card)

    k = sub.add_parser("cache", help="look after the cache ($CEMNIST_CACHE)")
    ksub = k.add_subparsers(dest="cache_command", required=True)
    with_parent(ksub, verbose)
    kc = ksub.add_parser("clean", help="remove folders of killed builds/downloads and Arrow copies nothing reads")
    kc.add_argument("--dry-run", action="store_true", help="only say what would be removed and how much it frees")
    kc.add_argument("--cache-dir", help="cache folder (default: $CEMNIST_CACHE or ~/.cache/cemnist)")
    kc.add_argument("dirs", nargs="*", metavar="DIR",
                    help="also look in these folders for what killed `cemnist build --out DIR/NAME` left beside NAME "
                    "(.NAME.partial-*)")
    kc.set_defaults(func=_cmd_cache_clean)

    d = sub.add_parser("download-mnist", help="download MNIST from the mirrors into DIR, verified by the pinned hashes")
    d.add_argument("--dir", required=True, help="folder to download the four MNIST files into")
    d.set_defaults(func=_cmd_download_mnist)

    u = sub.add_parser("publish", help="upload a verified release folder (or a custom build) to the Hub and tag it")
    u.add_argument("dir", help="release folder (built with `cemnist build`)")
    u.add_argument("--repo-id", help=f"Hub dataset repo 'owner/name' (default {HUB_REPO_ID} for the release; "
                   "required for a custom build, which never goes there)")
    u.add_argument("--tag", help="tag to create (default v<version> for the release, v<version>-custom.<spec hash> "
                   "for a custom build)")
    u.add_argument("--private", action="store_true", help="create the repo as private (if it does not exist yet; "
                   "without it, a new repo gets the Hub's default visibility)")
    u.add_argument("--dry-run", action="store_true", help="verify, check the repo and the tag on the Hub (read-only) and "
                   "list what would be uploaded; upload nothing")
    _quiet(u)
    u.set_defaults(func=_cmd_publish)

    try:
        from .viz.cli import add_cli_subcommands
    except ImportError:  # the viz subpackage needs matplotlib: `pip install 'cemnist[viz]'`
        add_cli_subcommands = None
    if add_cli_subcommands is not None:
        add_cli_subcommands(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs (work folders, locks)."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` in the main thread (once; a second is ignored
    while cleaning up). A handler someone else installed is left alone."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupted(args: argparse.Namespace, exc: KeyboardInterrupt) -> int:
    """One line for Ctrl-C or SIGTERM; exit status 130 (SIGINT) or 143 (SIGTERM), as a shell reports them."""
    name, status = ("SIGTERM", 143) if isinstance(exc, Terminated) else ("Ctrl-C", 130)
    what = (f"; nothing was written to {args.out} and the build's work folder was removed"
            if args.command == "build" else "")
    print(f"cemnist {args.command}: interrupted ({name}){what}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cemnist`` console script (exit status: see the module docstring; 130 after Ctrl-C,
    143 after SIGTERM, each with one line on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors exit with 2
    setup_logging(getattr(args, "verbose", 0))
    try:
        with _sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(args, exc)
    except BrokenPipeError:  # `cemnist info | head`: the reader went away; not an error of ours
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second BrokenPipeError when Python flushes stdout at exit
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except NoSuchFolderError as exc:  # an input folder that does not exist: a usage error, as in cemnist-baselines
        print(f"cemnist {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CemnistIntegrityError, MnistIntegrityError) as exc:
        print(f"cemnist {args.command}: integrity error: {exc}", file=sys.stderr)
        return EXIT_INTEGRITY
    except (ValueError, FileExistsError) as exc:
        print(f"cemnist {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, RuntimeError) as exc:
        print(f"cemnist {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
