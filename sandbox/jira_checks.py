"""What the Jira stand-in refuses in a created issue, as Jira Cloud does: a malformed Atlassian Document
Format description, or a summary or label that is too long or of the wrong shape."""

from __future__ import annotations

from typing import Any

SUMMARY_MAX = 255
LABEL_MAX = 255
ADF_MAX_DEPTH = 32


def adf_problem(doc: Any) -> str | None:
    """Why `doc` is not an Atlassian Document Format document, or None when it is one."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        return "the top-level node must be {'type': 'doc'}"
    if doc.get("version") != 1:
        return "the document needs 'version': 1"
    content = doc.get("content")
    if not isinstance(content, list):
        return "the document needs a 'content' list"
    for node in content:
        if isinstance(node, dict) and node.get("type") == "text":
            return "text nodes cannot sit directly in the document"
        problem = _node_problem(node, 1)
        if problem:
            return problem
    return None


def _node_problem(node: Any, depth: int) -> str | None:
    if depth > ADF_MAX_DEPTH:
        return "the document is nested too deeply"
    if not isinstance(node, dict) or not isinstance(node.get("type"), str) or not node["type"]:
        return "every node needs a 'type'"
    if node["type"] == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return "text nodes need a non-empty 'text'"
        return _marks_problem(node.get("marks"))
    if "marks" in node:
        problem = _marks_problem(node["marks"])
        if problem:
            return problem
    content = node.get("content", [])
    if not isinstance(content, list):
        return f"'content' of a {node['type']} node must be a list"
    for child in content:
        problem = _node_problem(child, depth + 1)
        if problem:
            return problem
    return None


def _marks_problem(marks: Any) -> str | None:
    if marks is None:
        return None
    if not isinstance(marks, list):
        return "'marks' must be a list"
    for mark in marks:
        if not isinstance(mark, dict) or not isinstance(mark.get("type"), str):
            return "every mark needs a 'type'"
        if mark["type"] == "link":
            attrs = mark.get("attrs")
            if not isinstance(attrs, dict) or not isinstance(attrs.get("href"), str) or not attrs["href"]:
                return "link marks need 'attrs': {'href': ...}"
    return None


def label_problem(labels: Any) -> str | None:
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return "Labels must be a list of strings."
    for label in labels:
        if not label:
            return "A label cannot be empty."
        if any(ch.isspace() for ch in label):
            return f"The label '{label}' contains spaces, which is invalid."
        if len(label) > LABEL_MAX:
            return f"The label '{label[:40]}…' is longer than {LABEL_MAX} characters."
    return None


def summary_problem(summary: Any) -> str | None:
    if not isinstance(summary, str) or not summary.strip():
        return "You must specify a summary of the issue."
    if len(summary) > SUMMARY_MAX:
        return f"Summary must be less than {SUMMARY_MAX} characters."
    if "\n" in summary or "\r" in summary:
        return "The summary is invalid because it contains newline characters."
    return None
