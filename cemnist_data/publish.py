"""``cemnist publish``: put a verified release folder (or a custom build) on the Hub as a dataset repo.

Through ``huggingface_hub``, in an order that cannot half-publish:

1. the plan (also all a ``--dry-run`` does): verify the folder by content, check that its card and
   ``eval.yaml`` are the ones its manifest gives and that every file the card needs is there, then ask
   the Hub whether the repo exists, whether it is private and whether the tag already exists — an
   existing tag is an error before anything is uploaded;
2. ``create_repo`` (if needed; ``private=None`` leaves the Hub's default unless ``--private``);
3. one ``upload_folder`` commit, ``delete_patterns=["data/**"]`` so that no shard of an earlier upload
   survives beside the new ones;
4. ``create_tag`` at that commit's id (``revision=<oid>``), never at whatever ``main`` is by then.

The published release goes to ``cemnist/cemnist`` at tag ``v<version>``; a custom build goes only to a
repo id that the caller names (their own), tagged ``v<version>-custom.<spec hash>``, so that it cannot be
mistaken for the release. A Hub that cannot be reached, or that refuses a call, is a
:class:`HubError` with one line saying what happened and what was (not) uploaded.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .registry import HUB_REPO_ID, display_version, get_release, shipped_manifest_for

__all__ = ["HubApi", "HubError", "PublishPlan", "UPLOAD_PATTERNS", "DELETE_PATTERNS", "REQUIRED_FILES",
           "plan_publish", "publish_release", "default_api", "hub_error"]

UPLOAD_PATTERNS = ["README.md", "manifest.json", "id2label.json", "eval.yaml", ".gitattributes", "images/*.png",
                   "data/*/*.parquet"]
"""``allow_patterns`` of the upload: the files of a release folder, nothing else that may lie there."""
DELETE_PATTERNS = ["data/**"]
"""``delete_patterns`` of the upload: shards in the repo that the folder does not hold are deleted in the
same commit (a release's shards are replaced as a whole)."""
log = logging.getLogger("cemnist")
REQUIRED_FILES = ("README.md", "manifest.json", "id2label.json", "eval.yaml", ".gitattributes", "images/preview.png")
"""Files besides the parquet shards that a complete Hub repo of CEMNIST holds."""


class HubApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` that publishing uses."""

    def repo_info(self, repo_id: str, *, repo_type: str) -> Any: ...
    def list_repo_refs(self, repo_id: str, *, repo_type: str) -> Any: ...
    def create_repo(self, repo_id: str, *, repo_type: str, exist_ok: bool, private: bool | None) -> Any: ...
    def upload_folder(self, *, repo_id: str, repo_type: str, folder_path: str, commit_message: str,
                      allow_patterns: list[str], delete_patterns: list[str]) -> Any: ...
    def create_tag(self, repo_id: str, *, tag: str, repo_type: str, tag_message: str, revision: str) -> Any: ...


class HubError(RuntimeError):
    """The Hub could not be reached or refused a call; the message is one line and says what was uploaded."""


def default_api() -> HubApi:
    """``huggingface_hub.HfApi()`` (the token comes from ``HF_TOKEN`` or ``hf auth login``)."""
    from huggingface_hub import HfApi

    return HfApi()


def hub_error(exc: BaseException, *, doing: str, state: str) -> HubError | None:
    """A one-line :class:`HubError` for an exception of the network or the Hub, else None.

    Recognised: ``huggingface_hub``'s errors (offline mode, HTTP errors), the HTTP client's errors
    (``httpx`` / ``requests`` / ``urllib3``; httpx's connection errors are not ``OSError``) and the
    standard library's connection, timeout and name-resolution errors.
    ``doing``: the call that failed; ``state``: what is on the Hub now (e.g. "nothing was uploaded").
    """
    from huggingface_hub import utils  # re-exports the errors in every supported version (0.25 and later)

    offline, http = utils.OfflineModeIsEnabled, utils.HfHubHTTPError
    module = type(exc).__module__.split(".")[0]
    network = (ConnectionError, TimeoutError, socket.gaierror)  # not any OSError: a local file error is not the Hub's
    if not (isinstance(exc, (offline, http, *network)) or module.startswith(("httpx", "httpcore", "requests", "urllib3"))):
        return None
    if isinstance(exc, offline):
        why = "the Hub is offline (HF_HUB_OFFLINE=1); unset it to publish"
    elif isinstance(exc, http):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"the Hub refused it (HTTP {status}: {first})" if status else f"the Hub refused it ({first})"
        if status in (401, 403):
            why += "; check your token (HF_TOKEN or `hf auth login`) and its write access to the repo"
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = (f"cannot reach the Hub ({type(exc).__name__}{': ' + first if first else ''}); check the network "
               "connection (and HF_ENDPOINT if set)")
    return HubError(f"{doing} failed: {why}. {state}")


def call_hub(fn: Any, *args: Any, doing: str, state: str, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` (a Hub API call); a Hub failure becomes the one-line error of :func:`hub_error`
    (what was being done, what state the Hub is left in); anything else propagates unchanged."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001  classified below; anything else propagates unchanged
        err = hub_error(exc, doing=doing, state=state)
        if err is None:
            raise
        raise err from exc


@dataclass
class PublishPlan:
    """What a publication uploads and where, and what the Hub holds there now."""

    repo_id: str
    tag: str
    folder: Path
    release: bool  # the published spec (else a custom build)
    version: str  # display version: "1.0.0" or "1.0.0+custom.<hash>"
    files: list[str] = field(default_factory=list)
    hub_checked: bool = False  # the repo and its tags were looked up (False: a dry run that could not reach it)
    repo_exists: bool | None = None
    repo_private: bool | None = None
    warnings: list[str] = field(default_factory=list)
    commit: str | None = None  # the oid of the upload commit (after publishing)


def _default_tag(manifest: dict[str, Any], release: bool) -> str:
    if release:
        return get_release(manifest["version"]).tag
    return "v" + display_version(manifest).replace("+", "-")


def _warn(plan: PublishPlan, message: str) -> None:
    """Keep ``message`` in the plan and say it now, on the ``cemnist`` logger (before anything is uploaded)."""
    plan.warnings.append(message)
    log.warning("cemnist publish: warning: %s", message)


def _check_hub(plan: PublishPlan, api: HubApi, *, private: bool | None, dry_run: bool) -> None:
    """Fill in the repo's existence, visibility and tags; an existing tag is a ValueError."""
    from huggingface_hub.utils import RepositoryNotFoundError

    state = "nothing was uploaded"
    try:
        try:
            info = call_hub(api.repo_info, plan.repo_id, repo_type="dataset", doing=f"looking up datasets/{plan.repo_id}",
                         state=state)
        except HubError as exc:
            if isinstance(exc.__cause__, RepositoryNotFoundError):
                plan.repo_exists = False
            else:
                raise
        else:
            plan.repo_exists, plan.repo_private = True, getattr(info, "private", None)
        tags: dict[str, str] = {}
        if plan.repo_exists:
            refs = call_hub(api.list_repo_refs, plan.repo_id, repo_type="dataset",
                         doing=f"listing the tags of datasets/{plan.repo_id}", state=state)
            tags = {t.name: getattr(t, "target_commit", "") for t in getattr(refs, "tags", [])}
    except HubError as exc:
        if not dry_run:
            raise
        _warn(plan, f"the repo and its tags were not checked: {exc}")
        return
    plan.hub_checked = True
    if plan.tag in tags:
        raise ValueError(
            f"tag {plan.tag} already exists on datasets/{plan.repo_id} (commit {tags[plan.tag][:12] or '?'}): a published "
            "tag is never moved. Publish under another --tag, or delete that tag on the Hub first if it is wrong"
        )
    if private and plan.repo_exists and plan.repo_private is False:
        _warn(plan,
              f"datasets/{plan.repo_id} already exists and is public: --private does not change an existing repo, "
              "so this upload is public. Make the repo private on the Hub first (its settings page, or "
              "HfApi().update_repo_settings(..., private=True)) if it must not be public")


def plan_publish(
    folder: str | os.PathLike[str], *, repo_id: str | None = None, tag: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None, progress: bool = False, api: HubApi | None = None,
    private: bool | None = None, dry_run: bool = True,
) -> PublishPlan:
    """Verify ``folder``, list what would be uploaded where and (with ``api``) check the Hub.

    Raises ``ValueError`` for a wrong target, an edited card, a missing file or a tag that already
    exists; :class:`HubError` when the Hub cannot be reached (a ``dry_run`` only warns).
    """
    from .card import eval_yaml_text, render_readme
    from .loader import _read_manifest, verify_release

    folder = Path(folder).resolve()
    manifest, _ = _read_manifest(folder)
    shipped = shipped_manifest_for(manifest)
    release = shipped is not None
    verify_release(folder, expected=shipped, record=False, cache_dir=cache_dir, progress=progress)
    if repo_id is None:
        if not release:
            raise ValueError(
                f"{folder} is a custom build ({display_version(manifest)}), not the CEMNIST release: "
                "publish it under your own repo id with --repo-id OWNER/NAME"
            )
        repo_id = HUB_REPO_ID
    if not release and repo_id == HUB_REPO_ID:
        raise ValueError(f"{HUB_REPO_ID} holds the CEMNIST releases only; {folder} is a custom build "
                         f"({display_version(manifest)}): publish it under your own repo id")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo id must be 'owner/name', got {repo_id!r}")
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise ValueError(f"{folder} is not a complete release folder: {missing} missing. Rebuild it with "
                         f"`cemnist build --out {folder} --overwrite`, or write the card files with `cemnist card --dir {folder}`")
    from .fileio import MAX_JSON_BYTES, read_regular_file

    for name, want in (("README.md", render_readme(manifest)), ("eval.yaml", eval_yaml_text(manifest))):
        if read_regular_file(folder / name, max_bytes=MAX_JSON_BYTES) != want.encode("utf-8"):
            raise ValueError(f"{folder / name} is not the one that its manifest gives (edited, or written by another "
                             f"version of cemnist). Rewrite it with `cemnist card --dir {folder}`")
    from huggingface_hub.utils import filter_repo_objects

    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    files = list(filter_repo_objects(names, allow_patterns=UPLOAD_PATTERNS))
    plan = PublishPlan(repo_id=repo_id, tag=tag or _default_tag(manifest, release), folder=folder, release=release,
                       version=display_version(manifest), files=files)
    if api is not None:
        _check_hub(plan, api, private=private, dry_run=dry_run)
    return plan


def publish_release(
    folder: str | os.PathLike[str], *, api: HubApi | None = None, repo_id: str | None = None, tag: str | None = None,
    private: bool | None = None, dry_run: bool = False, cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> PublishPlan:
    """Plan (see :func:`plan_publish`), then create the repo if needed, upload the folder in one commit and tag
    that commit. ``dry_run``: the plan only (it still asks the Hub about the repo and the tag, read-only).
    ``private=None`` leaves the visibility of a new repo to the Hub's default; ``True`` makes it private."""
    api = api if api is not None else default_api()
    p = plan_publish(folder, repo_id=repo_id, tag=tag, cache_dir=cache_dir, progress=progress, api=api,
                     private=private, dry_run=dry_run)
    if dry_run:
        return p
    what = f"CEMNIST release {p.version}" if p.release else f"CEMNIST custom build {p.version} (not a release)"
    where = f"datasets/{p.repo_id}"
    call_hub(api.create_repo, p.repo_id, repo_type="dataset", exist_ok=True, private=private,
          doing=f"creating {where}", state="nothing was uploaded")
    info = call_hub(api.upload_folder, repo_id=p.repo_id, repo_type="dataset", folder_path=str(p.folder),
                 commit_message=what, allow_patterns=list(UPLOAD_PATTERNS), delete_patterns=list(DELETE_PATTERNS),
                 doing=f"uploading {p.folder} to {where}",
                 state=f"no commit was made (a commit is all or nothing); run the same command again")
    oid = getattr(info, "oid", None)
    if not oid:
        raise HubError(f"uploading to {where} returned no commit id ({info!r}); the tag {p.tag} was not created. "
                       f"Check the repo's history on the Hub, then tag the upload commit yourself")
    p.commit = oid
    call_hub(api.create_tag, p.repo_id, tag=p.tag, repo_type="dataset", tag_message=what, revision=oid,
          doing=f"tagging commit {oid[:12]} of {where} as {p.tag}",
          state=(f"The files are committed ({oid}) but not tagged: run the same command again (the upload is then "
                 f"empty), or tag it: HfApi().create_tag({p.repo_id!r}, repo_type='dataset', tag={p.tag!r}, "
                 f"revision={oid!r})"))
    return p
