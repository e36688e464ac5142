"""Small pure pieces: git files, JSON codec, ids, URL parsing, privacy edge cases."""

import json
import math
import re

import pytest

from voight.client import git, ids, jsonlite, privacy, transport

from .conftest import SHA

pytestmark = []

SHA1 = "1" * 40
SHA2 = "2" * 40


def test_git_branch_and_sha_from_loose_ref(repo):
    assert git.info(str(repo / "src")) == {"branch": "feature/x", "sha": SHA}


def test_git_packed_refs_and_detached_head(tmp_path):
    root = tmp_path / "r"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / ".git" / "packed-refs").write_text(
        f"# pack-refs with: peeled fully-peeled sorted\n{SHA1} refs/heads/main\n^{SHA2}\n"
        f"{SHA2} refs/tags/v1\n"
    )
    assert git.info(str(root)) == {"branch": "main", "sha": SHA1}
    (root / ".git" / "HEAD").write_text(SHA2 + "\n")
    assert git.info(str(root)) == {"branch": None, "sha": SHA2}


def test_git_worktree_reads_refs_from_the_common_dir(tmp_path):
    main = tmp_path / "main"
    (main / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main / ".git" / "refs" / "heads").mkdir(parents=True)
    (main / ".git" / "refs" / "heads" / "topic").write_text(SHA1 + "\n")
    wt_git = main / ".git" / "worktrees" / "wt"
    (wt_git / "HEAD").write_text("ref: refs/heads/topic\n")
    (wt_git / "commondir").write_text("../..\n")
    wt = tmp_path / "wt"
    (wt / "deep" / "er").mkdir(parents=True)
    (wt / ".git").write_text(f"gitdir: {wt_git}\n")
    assert git.info(str(wt / "deep" / "er")) == {"branch": "topic", "sha": SHA1}


def test_git_unborn_branch_and_no_repo(tmp_path):
    (tmp_path / "r" / ".git").mkdir(parents=True)
    (tmp_path / "r" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert git.info(str(tmp_path / "r")) == {"branch": "main", "sha": None}
    assert git.info(None) is None


@pytest.mark.parametrize("obj", [
    {"a": [1, 2.5, None, True, False], "b": {"c": "quote \" and \\ and \n"}},
    ["é", "\u2028", "😀", "\ud800", ""], 1e300, -0.0, 12345678901234567890, "x", [], {},
])
def test_jsonlite_matches_the_json_module(obj):
    expected = json.dumps(obj, separators=(",", ":"))
    assert jsonlite.dumps(obj) == expected
    assert jsonlite.loads(expected.encode()) == json.loads(expected)


def test_jsonlite_rejects_what_json_rejects():
    for bad in (b"", b"{", b"{} x", b"nul", b"[1,]"):
        with pytest.raises(ValueError):
            jsonlite.loads(bad)
    assert math.isnan(jsonlite.loads(" [NaN] ")[0])
    assert jsonlite.loads(b"\xef\xbb\xbf{\"a\": 1}") == {"a": 1}
    with pytest.raises(TypeError):
        jsonlite.dumps({"a": object()})


def test_ids():
    assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                    ids.uuid4())
    assert ids.base36(0) == "0" and ids.base36(36 ** 2) == "100"
    assert int(ids.new_trace_id(1787400000.123).split("_")[1], 36) == 1787400000123
    assert ids.rfc3339(1787400000.123) == "2026-08-22T12:00:00.123Z"


def test_split_url():
    assert transport.split_url("http://h:81/prefix/") == ("http", "h", 81, "/prefix")
    assert transport.split_url("https://voight.example") == ("https", "voight.example", 443, "")
    assert transport.split_url("http://[::1]:9000") == ("http", "::1", 9000, "")
    with pytest.raises(transport.TransportError):
        transport.split_url("ftp://x")


def test_standard_privacy_on_a_post_tool_batch():
    payload = {"hook_event_name": "PostToolBatch", "tool_calls": [
        {"tool_name": "Read", "tool_use_id": "t1", "tool_input": {"file_path": "/a"},
         "tool_response": "z" * 3000},
    ]}
    out, truncated = privacy.apply(payload, "standard")
    assert truncated and out["tool_calls"][0]["tool_response"].endswith("[truncated 1000 chars]")
    assert payload["tool_calls"][0]["tool_response"] == "z" * 3000  # input not modified
    minimal, _ = privacy.apply(payload, "minimal")
    assert minimal == {"hook_event_name": "PostToolBatch",
                       "tool_calls": [{"tool_name": "Read", "tool_use_id": "t1"}]}
