"""A recording fake of ``huggingface_hub.HfApi`` for the tests: no network, a small in-memory Hub.

It records every call, keeps repos (visibility, files, commits, tags), applies ``allow_patterns`` and
``delete_patterns`` with huggingface_hub's own matcher, and raises the errors the real client raises
(``RepositoryNotFoundError`` with an HTTP response; the HTTP client's ``ConnectError``) so that error
handling is tested against the real exception types. Import it as ``from fake_hub import RecordingHfApi``
(``tests/`` is on ``sys.path`` through ``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def _http_module() -> Any:
    """The HTTP client huggingface_hub uses: httpx2 / httpx from 1.0 on, None (requests) before."""
    import huggingface_hub

    if int(huggingface_hub.__version__.split(".")[0]) < 1:
        return None
    for name in ("httpx2", "httpx"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def not_found_error(repo_id: str, repo_type: str = "dataset") -> Exception:
    """``RepositoryNotFoundError`` as the real client raises it (with a 404 response)."""
    from huggingface_hub.utils import RepositoryNotFoundError

    url = f"https://huggingface.co/api/{repo_type}s/{repo_id}"
    h = _http_module()
    if h is not None:
        response = h.Response(404, request=h.Request("GET", url))
    else:
        import requests

        response = requests.Response()
        response.status_code, response.url = 404, url
    return RepositoryNotFoundError(f"404 Client Error. Repository Not Found for url: {url}.", response=response)


def connect_error() -> Exception:
    """The HTTP client's error for an unreachable network (not an OSError in httpx)."""
    h = _http_module()
    if h is not None:
        return h.ConnectError("[Errno -3] Temporary failure in name resolution")
    import requests

    return requests.ConnectionError("Failed to resolve 'huggingface.co' ([Errno -3] Temporary failure in name resolution)")


class RecordingHfApi:
    """Records each call in ``calls`` and keeps ``repos[(repo_type, repo_id)]``; uploads nothing anywhere.

    ``fail={"upload_folder": exc}`` makes that method raise ``exc`` (after recording the call).
    """

    def __init__(self, *, fail: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.repos: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail = dict(fail or {})

    # --- helpers for tests
    def add_repo(self, repo_id: str, *, repo_type: str = "dataset", private: bool = False,
                 tags: dict[str, str] | None = None, files: dict[str, bytes] | None = None) -> None:
        self.repos[(repo_type, repo_id)] = {"private": private, "tags": dict(tags or {}), "files": dict(files or {}),
                                            "commits": []}

    def _record(self, name: str, kw: dict[str, Any]) -> None:
        self.calls.append((name, kw))
        if name in self.fail:
            raise self.fail[name]

    def _repo(self, repo_id: str, repo_type: str | None) -> dict[str, Any]:
        key = (repo_type or "model", repo_id)
        if key not in self.repos:
            raise not_found_error(repo_id, key[0])
        return self.repos[key]

    # --- the HfApi methods
    def repo_info(self, repo_id: str, *, repo_type: str | None = None, **kw: Any) -> Any:
        self._record("repo_info", {"repo_id": repo_id, "repo_type": repo_type, **kw})
        repo = self._repo(repo_id, repo_type)
        return SimpleNamespace(id=repo_id, private=repo["private"], sha=repo["commits"][-1] if repo["commits"] else None)

    def list_repo_refs(self, repo_id: str, *, repo_type: str | None = None, **kw: Any) -> Any:
        self._record("list_repo_refs", {"repo_id": repo_id, "repo_type": repo_type, **kw})
        repo = self._repo(repo_id, repo_type)
        return SimpleNamespace(branches=[], converts=[], pull_requests=None,
                               tags=[SimpleNamespace(name=n, ref=f"refs/tags/{n}", target_commit=c)
                                     for n, c in repo["tags"].items()])

    def create_repo(self, repo_id: str, **kw: Any) -> Any:
        self._record("create_repo", {"repo_id": repo_id, **kw})
        key = (kw.get("repo_type") or "model", repo_id)
        if key not in self.repos:
            self.add_repo(repo_id, repo_type=key[0], private=bool(kw.get("private")))
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, **kw: Any) -> Any:
        from huggingface_hub.utils import filter_repo_objects

        self._record("upload_folder", kw)
        repo = self._repo(kw["repo_id"], kw.get("repo_type"))
        root = Path(kw["folder_path"])
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        names = list(filter_repo_objects(names, allow_patterns=kw.get("allow_patterns"),
                                         ignore_patterns=kw.get("ignore_patterns")))
        delete = set(filter_repo_objects(list(repo["files"]), allow_patterns=kw.get("delete_patterns") or [])) - set(names)
        for name in delete:
            del repo["files"][name]
        for name in names:
            repo["files"][name] = (root / name).read_bytes()
        oid = hashlib.sha1(repr((len(repo["commits"]), sorted(names), kw.get("commit_message"))).encode()).hexdigest()
        repo["commits"].append(oid)
        return SimpleNamespace(oid=oid, commit_url=f"https://huggingface.co/{kw['repo_id']}/commit/{oid}")

    def create_tag(self, repo_id: str, **kw: Any) -> None:
        self._record("create_tag", {"repo_id": repo_id, **kw})
        repo = self._repo(repo_id, kw.get("repo_type"))
        if kw["tag"] in repo["tags"]:
            raise RuntimeError(f"fake Hub: tag {kw['tag']} exists (the real Hub answers 409)")
        repo["tags"][kw["tag"]] = kw.get("revision") or repo["commits"][-1]
