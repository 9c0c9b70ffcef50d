"""S3's XML: the documents the door sends, and the few it reads (multipart completion, batch
delete, versioning, bucket configuration).

Documents are built as strings from :func:`element`, escaping every text; documents read are
parsed with namespaces dropped, at most :data:`MAX_XML_BYTES`, and a document of the wrong
shape is :class:`MalformedXML` naming what was wrong.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from urllib.parse import quote
from xml.sax.saxutils import escape

from gateway.s3.errors import MalformedXML

MAX_XML_BYTES = 1024 * 1024  # bytes of an XML request body
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
Node = str  # an element already rendered


def _clean(text: str) -> str:
    """Text XML 1.0 can carry: control characters (which keys may hold) become U+FFFD."""
    return "".join(c if c >= " " or c in "\t\n\r" else "\ufffd" for c in text)


def element(tag: str, *children: Node | str | int | bool | None, text: bool = False) -> Node:
    """``<tag>children</tag>``; with ``text=True`` the single child is escaped text."""
    if text:
        value = children[0]
        if isinstance(value, bool):
            body = "true" if value else "false"
        else:
            body = escape(_clean(str(value)))
        return f"<{tag}>{body}</{tag}>"
    return f"<{tag}>{''.join(c for c in children if isinstance(c, str))}</{tag}>"


def leaf(tag: str, value: str | int | bool) -> Node:
    return element(tag, value, text=True)


def document(tag: str, *children: Node | None) -> bytes:
    inner = "".join(c for c in children if c)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{tag} xmlns="{NAMESPACE}">{inner}</{tag}>'
    ).encode()


def timestamp(ns: int) -> str:
    """S3's ISO 8601 time with milliseconds, in UTC."""
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def http_date(ns: int) -> str:
    when = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def quoted_etag(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'


def encode_key(key: str, encoding: str) -> str:
    """A key in a listing: URL-encoded when the request asked for ``encoding-type=url``."""
    return quote(key, safe="/") if encoding == "url" else key


def optional(tag: str, value: str) -> Node | None:
    return leaf(tag, value) if value else None


# -- reading -----------------------------------------------------------------------------------


def parse(body: bytes, root: str) -> ET.Element:
    """Parse ``body`` whose root element must be ``root`` (namespaces dropped)."""
    if len(body) > MAX_XML_BYTES:
        raise MalformedXML(f"the XML body is over {MAX_XML_BYTES} bytes")
    try:
        tree = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedXML(f"the XML body does not parse: {exc}") from None
    for node in tree.iter():
        if isinstance(node.tag, str):
            node.tag = node.tag.rpartition("}")[2]
    if tree.tag != root:
        raise MalformedXML(f"the XML body's root is <{tree.tag}>, expected <{root}>")
    return tree


def child_text(node: ET.Element, tag: str, default: str | None = None) -> str:
    found = node.find(tag)
    if found is None:
        if default is None:
            raise MalformedXML(f"<{node.tag}> lacks <{tag}>")
        return default
    return found.text or ""


def delete_request(body: bytes) -> tuple[list[tuple[str, str]], bool]:
    """The (key, version id) pairs of a DeleteObjects body, and whether it asked to be quiet."""
    tree = parse(body, "Delete")
    items = [
        (child_text(obj, "Key"), child_text(obj, "VersionId", "")) for obj in tree.findall("Object")
    ]
    if not items or len(items) > 1000:
        raise MalformedXML(f"a Delete names 1 to 1000 objects, this one {len(items)}")
    return items, child_text(tree, "Quiet", "false").strip().lower() == "true"


def versioning_status(body: bytes) -> str:
    return child_text(parse(body, "VersioningConfiguration"), "Status", "").strip()


def location_constraint(body: bytes) -> str:
    if not body.strip():
        return ""
    return child_text(parse(body, "CreateBucketConfiguration"), "LocationConstraint", "")


def join(nodes: Iterable[Node]) -> Node:
    return "".join(nodes)
